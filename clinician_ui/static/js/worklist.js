// TeleKOL work list: the server renders the rows; live events only make the script ask for
// the rows they touched (/worklist/rows) and swap those in place, sorted. Alert actions post
// the row's own forms and swap the answer in. Red alerts the viewer's organisation must act
// on sound and notify; the GP's inbox lists red alerts. No innerHTML from event data: rows
// come from the server's templates, everything else is set with textContent.
(function () {
  "use strict";
  const table = document.getElementById("worklist");
  if (!table) return;
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const viewer = JSON.parse(document.getElementById("viewer").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const lang = document.documentElement.lang === "en" ? "en" : "da";
  const size = Number(table.dataset.size) || 50;
  const page = Number(table.dataset.page) || 1;
  const NOTIFY_KEY = "telekol.redAlertNotifications";
  const wanted = new Set();
  const redSeen = new Set(Array.from(table.querySelectorAll("li.alert-item.red"),
    (li) => li.dataset.alert));
  let timer = null;
  let connectedOnce = false;

  // ---- rows: ask for the ones that changed, swap them in sorted order ----

  function bodyOf(id) { return table.querySelector(`tbody[data-patient="${CSS.escape(id)}"]`); }
  function keyOf(body) { return JSON.parse(body.dataset.sort); }
  function before(a, b) {
    for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
      if (a[i] < b[i]) return true;
      if (a[i] > b[i]) return false;
    }
    return false;
  }
  function busy(body) {
    const active = document.activeElement;
    return Boolean(active && body.contains(active) && active.matches("input, textarea, select"));
  }

  function queue(id) {
    wanted.add(id);
    clearTimeout(timer);
    timer = setTimeout(flush, 250);  // events of one batch arrive together: one request
  }

  async function flush() {
    const ids = Array.from(wanted);
    wanted.clear();
    if (ids.length) await load(new URLSearchParams({ ids: ids.join(",") }), ids);
  }

  async function load(extra, ids) {
    const params = new URLSearchParams(location.search);
    extra.forEach((value, key) => params.set(key, value));
    const response = await fetch(`/worklist/rows?${params}`, { credentials: "same-origin" })
      .catch(() => null);
    if (response && response.ok) place(await response.text(), ids);
  }

  function place(html, asked) {
    const holder = document.createElement("template");
    holder.innerHTML = html;  // server-rendered rows (templates escape every value)
    const fresh = new Map(Array.from(holder.content.querySelectorAll("tbody[data-patient]"),
      (body) => [body.dataset.patient, body]));
    // No ids asked: the whole page came back; rows no longer on it go.
    const ids = asked || [...new Set([...Array.from(table.tBodies, (b) => b.dataset.patient),
      ...fresh.keys()])];
    ids.forEach((id) => {
      const old = bodyOf(id);
      const next = fresh.get(id);
      if (old && busy(old)) { queue(id); return; }  // someone is typing there: wait
      if (old && next && old.querySelector("details[open]")) {
        next.querySelector("details")?.setAttribute("open", "");
      }
      if (old) old.remove();
      if (next && next.dataset.match === "1") insert(next);
      if (next) notifyNew(next);
    });
    while (table.tBodies.length > size) table.tBodies[table.tBodies.length - 1].remove();
    const none = document.getElementById("no-patients");
    if (none) none.hidden = table.tBodies.length > 0;
    tick();
  }

  function insert(body) {
    const key = keyOf(body);
    const after = Array.from(table.tBodies).find((other) => before(key, keyOf(other)));
    if (after) { table.insertBefore(body, after); return; }
    // After every row shown: it belongs here only while the page has room (the last page).
    if (table.tBodies.length < size) table.appendChild(body);
  }

  // ---- acting on alerts: the row's forms, answered with the row redrawn ----

  // The page comes with light rows; opening a row's alerts fetches it whole, with its forms.
  table.addEventListener("toggle", (event) => {
    const details = event.target;
    const body = details.closest && details.closest("tbody[data-compact]");
    if (details.open && body) load(new URLSearchParams({ ids: body.dataset.patient }),
      [body.dataset.patient]).catch(console.error);
  }, true);

  table.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.act-form");
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const id = form.closest("tbody").dataset.patient;
    const response = await fetch(form.action, {
      method: "POST", credentials: "same-origin", body: new FormData(form),
      headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrf },
    }).catch(() => null);
    if (response && response.ok) {
      document.activeElement.blur();
      place(await response.text(), [id]);
      return;
    }
    button.disabled = false;
    window.alert(response && response.status === 403 ? t.forbidden : t.action_failed);
  });

  // ---- times: "12 min ago" stays true while the page is open ----

  const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "long" });
  function ago(iso) {
    const minutes = Math.round((Date.parse(iso) - Date.now()) / 60000);
    if (Math.abs(minutes) < 60) return relative.format(minutes, "minute");
    const hours = Math.round(minutes / 60);
    if (Math.abs(hours) < 48) return relative.format(hours, "hour");
    return relative.format(Math.round(hours / 24), "day");
  }
  function tick() {
    table.querySelectorAll("time[data-relative]").forEach((node) => {
      node.textContent = ago(node.getAttribute("datetime"));
    });
  }
  setInterval(tick, 30000);

  // ---- red alerts: sound and a browser notification, once per alert ----

  const toggle = document.getElementById("notify-toggle");
  const allow = document.getElementById("notify-allow");
  let audio = null;
  function notifyOn() {
    try { return window.localStorage.getItem(NOTIFY_KEY) !== "off"; } catch (e) { return true; }
  }
  function context() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!audio && Context) audio = new Context();
    return audio;
  }
  function beep() {
    const ctx = context();
    if (!ctx) return;
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    const start = ctx.currentTime + 0.05;
    [0, 0.3].forEach((offset) => {  // two short tones made here: no audio files
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.22);
    });
  }
  function notifyNew(body) {
    if (body.dataset.mine !== "true") return;
    body.querySelectorAll("li.alert-item.red.open").forEach((item) => {
      if (redSeen.has(item.dataset.alert)) return;
      redSeen.add(item.dataset.alert);
      if (!notifyOn()) return;
      const count = Number(document.documentElement.dataset.redNotified || 0) + 1;
      document.documentElement.dataset.redNotified = String(count);
      try { beep(); } catch (e) { console.error(e); }
      if ("Notification" in window && Notification.permission === "granted") {
        const name = body.querySelector(".wl-name a").textContent;
        const why = item.querySelector(".why").textContent.trim();
        const note = new Notification(`${t.red_alert}: ${name}`,
          { body: why, tag: `telekol-alert-${item.dataset.alert}` });
        note.onclick = () => { window.focus(); note.close(); };
      }
    });
  }
  function showAllow() {
    allow.hidden = !(toggle.checked && "Notification" in window &&
      Notification.permission === "default");
  }
  toggle.checked = notifyOn();
  toggle.addEventListener("change", () => {
    try { window.localStorage.setItem(NOTIFY_KEY, toggle.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    if (toggle.checked && "Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().then(showAllow, showAllow);
    }
    showAllow();
  });
  allow.addEventListener("click", () => {
    Notification.requestPermission().then(showAllow, showAllow);
    const ctx = context();  // audio may start only after a user gesture
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  });
  showAllow();

  // ---- the GP's inbox: red alerts for the treating organisation ----

  async function refreshInbox() {
    if (!viewer.inbox) return;
    const count = await fetch("/api/inbox/unread-count", { credentials: "same-origin" });
    if (!count.ok) return;
    const { unread } = await count.json();
    const badge = document.getElementById("inbox-badge");
    badge.hidden = false;
    badge.classList.toggle("unread", unread > 0);
    document.getElementById("inbox-count").textContent = String(unread);
    const items = await (await fetch("/api/inbox", { credentials: "same-origin" })).json();
    const list = document.getElementById("inbox-items");
    document.getElementById("inbox").hidden = false;
    list.replaceChildren(...items.map(inboxItem));
    document.getElementById("no-inbox").hidden = items.length > 0;
  }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function inboxItem(entry) {
    const alert = entry.alert || {};
    const item = el("li", `inbox-item ${entry.read ? "read" : "unread"} ${alert.severity || ""}`);
    item.dataset.item = entry.id;
    item.appendChild(el("strong", "", alert.patient ? alert.patient.display : ""));
    item.appendChild(el("span", "reason", alert.reason_text || alert.reason || ""));
    if (entry.read) item.appendChild(el("span", "state", t.read));
    else {
      const button = el("button", "act", t.mark_read);
      button.type = "button";
      button.addEventListener("click", async () => {
        button.disabled = true;
        const done = await fetch(`/api/inbox/${entry.id}/read`, {
          method: "POST", credentials: "same-origin", body: "{}",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        }).catch(() => null);
        if (done && done.ok) refreshInbox().catch(console.error);
        else button.disabled = false;
      });
      item.appendChild(button);
    }
    return item;
  }

  // ---- live: events name the patient; a reconnect redraws the page's rows ----

  function setState(state) {
    const badge = document.getElementById("live-state");
    badge.dataset.state = state;
    badge.textContent = t[state];
  }
  const socket = io("/live", { transports: ["websocket", "polling"] });
  socket.on("connect", () => {
    setState("live");
    if (connectedOnce) {  // missed events while away: the whole page as it is now
      load(new URLSearchParams({ page: String(page) }), null).catch(console.error);
    }
    connectedOnce = true;
  });
  socket.on("disconnect", () => setState("reconnecting"));
  socket.on("connect_error", () => setState("reconnecting"));
  socket.on("alert", (alert) => {
    queue(alert.patient.id);
    if (alert.severity === "red") refreshInbox().catch(console.error);
  });
  socket.on("observation", (obs) => queue(obs.patient.id));
  refreshInbox().catch(console.error);
})();
