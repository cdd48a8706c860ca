// TeleKOL messages: the nav badge #nav-unread on every page, and live threads.
// A `message` event on Socket.IO /live appends to an open thread (which then counts as
// read), updates the inbox's row, and refreshes the badge. Messages are stored before they
// are pushed, so a (re)connecting page fetches what it missed. Text is set with
// textContent only, so a message can never inject markup.
(function () {
  "use strict";
  const badge = document.getElementById("nav-unread");
  if (!badge) return;  // not signed in, or an administrator (no threads)
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = meta ? meta.content : "";
  const contextNode = document.getElementById("messages-context");
  const context = contextNode ? JSON.parse(contextNode.textContent) : {};
  const timeFormat = new Intl.DateTimeFormat("da-DK", { timeZone: "Europe/Copenhagen",
    day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23" });

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function localTime(iso) {
    const parts = {};
    timeFormat.formatToParts(new Date(iso)).forEach((p) => { parts[p.type] = p.value; });
    return `${parts.day}.${parts.month}.${parts.year} ${parts.hour}:${parts.minute}`;
  }

  async function fetchJSON(url, body) {
    const options = body === undefined ? { credentials: "same-origin" } : {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken } };
    const response = await fetch(url, options);
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  // ---- the badge ----

  function showTotal(total) {
    badge.textContent = String(total);
    badge.hidden = !total;
    badge.dataset.count = String(total);
  }

  async function refreshBadge() {
    showTotal((await fetchJSON("/api/messages/unread-count")).total);
  }

  // ---- an open thread ----

  function threadOf(message) {
    return document.querySelector(`[data-thread][data-patient="${CSS.escape(message.patient.id)}"]` +
      `[data-channel="${CSS.escape(message.channel)}"]`);
  }

  function authorLine(author) {
    const org = author.organization ? author.organization.name : context.patient_label;
    return `${author.name} · ${org}`;
  }

  function bodyNode(text) {
    const span = el("span", { class: "reason body" });
    text.split("\n").forEach((line, i) => {
      if (i) span.appendChild(el("br"));
      span.appendChild(document.createTextNode(line));
    });
    return span;
  }

  function append(thread, message) {
    const list = thread.querySelector("[data-messages]");
    if (list.querySelector(`[data-message="${message.id}"]`)) return false;
    const mine = message.author.id === context.user;
    const item = el("li", { class: `inbox-item message${mine ? " mine" : ""}`,
      "data-message": message.id });
    item.appendChild(el("strong", { class: "author" }, authorLine(message.author)));
    item.appendChild(el("time", { datetime: message.created_at }, localTime(message.created_at)));
    item.appendChild(bodyNode(message.body));
    list.appendChild(item);
    thread.querySelector("[data-empty]").hidden = true;
    return true;
  }

  function lastId(thread) {
    const items = thread.querySelectorAll("[data-message]");
    return items.length ? Number(items[items.length - 1].dataset.message) : 0;
  }

  function threadUrl(thread) {
    // Patients use the same door for their own thread; the server decides who reads what.
    return `/api/patients/${encodeURIComponent(thread.dataset.patient)}/messages`;
  }

  async function markRead(thread) {
    const upTo = lastId(thread);
    if (!upTo) return;
    await fetchJSON(`${threadUrl(thread)}/read`, { channel: thread.dataset.channel, up_to: upTo });
  }

  async function catchUp(thread) {
    const query = `channel=${encodeURIComponent(thread.dataset.channel)}&after=${lastId(thread)}&limit=500`;
    const page = await fetchJSON(`${threadUrl(thread)}?${query}`);
    const added = page.messages.filter((message) => append(thread, message));
    if (added.length) await markRead(thread);
  }

  // ---- the inbox (clinicians) ----

  function inboxRow(message) {
    const tbody = document.querySelector("[data-inbox]");
    if (!tbody) return;
    let row = tbody.querySelector(`tr[data-patient="${CSS.escape(message.patient.id)}"]`);
    if (!row) {
      row = el("tr", { "data-patient": message.patient.id });
      const name = el("td");
      name.appendChild(el("a", { href: `/patients/${encodeURIComponent(message.patient.id)}/messages` },
        message.patient.display));
      row.appendChild(name);
      row.appendChild(el("td", { "data-count": "team" }, 0));
      row.appendChild(el("td", { "data-count": "patient" }, 0));
      const newest = el("td", { class: "newest" });
      newest.appendChild(el("time"));
      newest.appendChild(el("span", { class: "preview" }));
      row.appendChild(newest);
    }
    const time = row.querySelector("time");
    time.setAttribute("datetime", message.created_at);
    time.textContent = localTime(message.created_at);
    const text = message.body.split(/\s+/).join(" ").trim();
    row.querySelector(".preview").textContent = `${message.author.name}: ${text.length > 120 ? `${text.slice(0, 119)}…` : text}`;
    if (message.author.id !== context.user) {
      const cell = row.querySelector(`[data-count="${CSS.escape(message.channel)}"]`);
      cell.textContent = String(Number(cell.textContent) + 1);
    }
    tbody.prepend(row);
    const empty = document.querySelector("#message-inbox [data-empty]");
    if (empty) empty.hidden = true;
  }

  // ---- live ----

  async function onMessage(message) {
    const thread = threadOf(message);
    if (thread && append(thread, message)) await markRead(thread);
    inboxRow(message);
    await refreshBadge();
  }

  function connect() {
    const socket = io("/live", { transports: ["websocket", "polling"] });
    socket.on("connect", async () => {
      try {
        await Promise.all(Array.from(document.querySelectorAll("[data-thread]"), catchUp));
        await refreshBadge();
        document.documentElement.dataset.messages = "live";
      } catch (error) { console.error(error); }
    });
    socket.on("disconnect", () => { document.documentElement.dataset.messages = "reconnecting"; });
    socket.on("message", (message) => { onMessage(message).catch(console.error); });
  }

  function withSocketIo(then) {
    if (typeof io !== "undefined") { then(); return; }
    const script = el("script", { src: "/static/vendor/socket.io.min.js" });
    script.addEventListener("load", then);
    document.head.appendChild(script);
  }

  refreshBadge().catch(console.error);
  withSocketIo(connect);
}());
