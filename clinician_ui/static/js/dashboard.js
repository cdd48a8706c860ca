// TeleKOL dashboard: patients with latest readings, a work list of alerts pushed live over
// Socket.IO, red-alert sound and notifications, and the GP's inbox.
// Everything shown is set with textContent (never innerHTML) so data cannot inject markup.
(function () {
  "use strict";
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const lang = document.documentElement.lang || "da";
  const columns = ["spo2", "pulse", "weight", "bp", "fev1", "temperature"];
  const viewer = JSON.parse(document.getElementById("viewer").textContent);
  const orgNames = JSON.parse(document.getElementById("org-names").textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const SEVERITY_RANK = { red: 0, yellow: 1, blue: 2 };
  const STATUS_RANK = { red: 0, yellow: 1, blue: 2, green: 3 };
  const RESOLVED_SHOWN = 20;
  const NOTIFY_KEY = "telekol.redAlertNotifications";
  const patients = new Map();
  const alerts = new Map();
  const nodes = new Map();  // alert id -> its list item
  const forms = new Map();  // alert id -> {kind, values} of an open acknowledge/snooze form
  let lastUpdate = "";
  let redNotified = 0;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatTime(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString(lang === "da" ? "da-DK" : "en-GB",
      { dateStyle: "short", timeStyle: "short" });
  }

  function reading(obs) {
    if (!obs) return "–";
    if (obs.code === "bp") return `${obs.systolic}/${obs.diastolic}`;
    const unit = obs.unit === "Cel" ? "°C" : obs.unit === "/min" ? "" : ` ${obs.unit}`;
    return `${obs.value}${unit}`;
  }

  // ---- patients: sorted by status (red, yellow, blue, green), then name ----

  function renderPatient(p) {
    let row = document.querySelector(`tr[data-patient="${CSS.escape(p.id)}"]`);
    if (!row) {
      row = el("tr", { "data-patient": p.id, class: "linked" });
      // The whole row opens the patient's page; the name is the link keyboards reach.
      row.addEventListener("click", (event) => {
        if (!event.target.closest("a, button")) row.querySelector("td.name a").click();
      });
      document.querySelector("#patients tbody").appendChild(row);
    }
    row.replaceChildren();
    const status = el("td", { class: "status" });
    status.appendChild(el("span", { class: `dot ${p.status}`, title: t[p.status] || p.status },
      t[p.status] || p.status));
    row.appendChild(status);
    const name = el("td", { class: "name" });
    name.appendChild(el("a", { href: `/patients/${encodeURIComponent(p.id)}` }, p.display));
    row.appendChild(name);
    columns.forEach((code) => {
      const obs = p.latest[code];
      const cell = el("td", { "data-code": code, class: obs && obs.severity ? obs.severity : "" },
        reading(obs));
      if (obs) cell.title = formatTime(obs.effective);
      row.appendChild(cell);
    });
    row.appendChild(el("td", { class: "count" }, p.open_alerts));
    row.dataset.status = p.status;
    document.getElementById("no-patients").hidden = patients.size > 0;
  }

  function sortPatients() {
    const tbody = document.querySelector("#patients tbody");
    const rank = (s) => (s in STATUS_RANK ? STATUS_RANK[s] : 9);
    const sorted = Array.from(patients.values()).sort((a, b) =>
      rank(a.status) - rank(b.status) || a.display.localeCompare(b.display, lang));
    const rows = sorted.map((p) => tbody.querySelector(`tr[data-patient="${CSS.escape(p.id)}"]`))
      .filter(Boolean);
    if (rows.some((row, i) => tbody.children[i] !== row)) tbody.replaceChildren(...rows);
  }

  // ---- alerts: who must act, and whether that is the viewer's organisation ----

  function orgRef(value) {
    if (!value) return null;
    if (typeof value === "object") return { id: value.id, name: value.name || orgNames[value.id] || value.id };
    return { id: value, name: orgNames[value] || value };
  }

  function responsibleOf(alert) {
    return orgRef(alert.responsible) || orgRef(alert.escalated_to);
  }

  function mine(alert) {
    // The server refuses (403) anyone else; this only decides which buttons to show.
    if (!viewer.can_act || !viewer.organization) return false;
    const owner = responsibleOf(alert);
    if (owner) return owner.id === viewer.organization;
    return (viewer.monitoring || []).includes(alert.patient.id);
  }

  function line(cls, text) { return el("span", { class: `line ${cls}` }, text); }

  function alertItem(alert) {
    const own = mine(alert);
    const item = el("li", { class: `alert ${alert.severity} ${alert.status}`, "data-alert": alert.id,
      "data-status": alert.status, "data-severity": alert.severity,
      "data-mine": own ? "true" : "false" });
    item.appendChild(el("span", { class: "badge" }, t[alert.severity] || alert.severity));
    const head = el("span", { class: "head" });
    head.appendChild(el("strong", {}, alert.patient.display));
    if (alert.count > 1) head.appendChild(el("span", { class: "repeats", title: String(alert.count) }, `×${alert.count}`));
    item.appendChild(head);
    item.appendChild(el("time", { datetime: alert.created_at }, formatTime(alert.created_at)));
    item.appendChild(el("span", { class: "reason" }, alert.reason));
    item.appendChild(el("span", { class: "state" }, t[alert.status] || alert.status));

    const owner = responsibleOf(alert);
    if (owner) {
      const who = line("responsible", `${t.responsible} ${owner.name}`);
      if (own && alert.status !== "resolved") {
        who.appendChild(document.createTextNode(" · "));
        who.appendChild(el("span", { class: "must-act" }, t.your_org));
      }
      item.appendChild(who);
    }
    const escalated = orgRef(alert.escalated_to);
    if (escalated) {
      const text = `${t.escalated_to} ${escalated.name}` +
        (alert.escalated_at ? ` (${formatTime(alert.escalated_at)})` : "");
      item.appendChild(line("escalation", text));
    }
    if (alert.status === "snoozed" && alert.snoozed_until) {
      const text = `${t.snoozed_until} ${formatTime(alert.snoozed_until)}` +
        (alert.snooze_reason ? `: ${alert.snooze_reason}` : "");
      item.appendChild(line("snooze", text));
    }
    if (alert.acknowledged_by && !(alert.status === "resolved" && alert.resolved_by === alert.acknowledged_by)) {
      item.appendChild(line("who acknowledged-by", `${t.acknowledged_by} ${alert.acknowledged_by}` +
        (alert.status !== "resolved" && alert.note ? `: ${alert.note}` : "")));
    }
    if (alert.status === "resolved") {
      const text = alert.resolution === "automatic" || !alert.resolved_by
        ? t.resolved_automatically : `${t.resolved_by} ${alert.resolved_by}`;
      item.appendChild(line("who resolved-by", alert.note ? `${text}: ${alert.note}` : text));
    }
    if (alert.patient_message) {
      item.appendChild(line("patient-message", `${t.patient_message_sent} ${alert.patient_message}`));
    }
    if (alert.status !== "resolved") {
      if (own) item.appendChild(actions(alert));
      else if (owner && viewer.can_act) item.appendChild(line("read-only", t.read_only));
    }
    return item;
  }

  function actions(alert) {
    const box = el("span", { class: "actions" });
    const form = forms.get(alert.id);
    if (form) {
      box.appendChild(form.kind === "snooze" ? snoozeForm(alert, form) : acknowledgeForm(alert, form));
      return box;
    }
    if (alert.status === "open" || alert.status === "snoozed") {
      box.appendChild(button("acknowledge", t.acknowledge, () => openForm(alert, "acknowledge")));
    }
    // Snoozing needs the server's snooze door; alerts from such a server carry the field.
    if ("snoozed_until" in alert && alert.status === "open") {
      box.appendChild(button("snooze", t.snooze, () => openForm(alert, "snooze")));
    }
    box.appendChild(button("resolve", t.resolve, (b) => send(alert, "resolve", {}, b)));
    return box;
  }

  function button(cls, label, onClick) {
    const b = el("button", { type: "button", class: `act ${cls}` }, label);
    b.addEventListener("click", () => onClick(b));
    return b;
  }

  function openForm(alert, kind) {
    forms.set(alert.id, { kind, values: {} });
    redraw(alert.id);
    const first = nodes.get(alert.id) && nodes.get(alert.id).querySelector("form textarea, form input");
    if (first) first.focus();
  }

  function closeForm(id) { forms.delete(id); redraw(id); }

  function field(form, state, name, label, control) {
    const wrap = el("label", { class: `field ${name}` }, label);
    control.name = name;
    if (state.values[name] !== undefined) control.value = state.values[name];
    control.addEventListener("input", () => { state.values[name] = control.value; });
    wrap.appendChild(control);
    form.appendChild(wrap);
    return control;
  }

  function formShell(alert, cls, submitLabel, onSubmit) {
    const form = el("form", { class: `alert-form ${cls}` });
    const footer = el("span", { class: "buttons" });
    footer.appendChild(el("button", { type: "submit", class: "act confirm" }, submitLabel));
    const cancel = el("button", { type: "button", class: "act cancel" }, t.cancel);
    cancel.addEventListener("click", () => closeForm(alert.id));
    footer.appendChild(cancel);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onSubmit(form.querySelector("button[type=submit]"));
    });
    return { form, footer };
  }

  function acknowledgeForm(alert, state) {
    const { form, footer } = formShell(alert, "acknowledge-form", t.confirm_acknowledge, (b) => {
      const body = { note: note.value };
      if (message.value.trim()) body.patient_message = message.value.trim();
      send(alert, "acknowledge", body, b);
    });
    const note = field(form, state, "note", t.note, el("textarea", { rows: "2", maxlength: "1000" }));
    const message = field(form, state, "patient_message", t.patient_message,
      el("textarea", { rows: "2", maxlength: "1000" }));
    form.appendChild(footer);
    return form;
  }

  function snoozeForm(alert, state) {
    const { form, footer } = formShell(alert, "snooze-form", t.confirm_snooze, (b) => {
      send(alert, "snooze", { minutes: Number(minutes.value), reason: reason.value.trim() }, b);
    });
    const minutes = field(form, state, "minutes", t.minutes,
      el("input", { type: "number", min: "1", max: "1440", step: "1", required: "" }));
    if (!minutes.value) minutes.value = "60";
    const reason = field(form, state, "reason", t.reason,
      el("input", { type: "text", maxlength: "500", required: "" }));
    form.appendChild(footer);
    return form;
  }

  async function send(alert, action, body, trigger) {
    if (trigger) trigger.disabled = true;
    const response = await fetch(`/api/alerts/${alert.id}/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    }).catch(() => null);
    if (response && response.ok) {
      forms.delete(alert.id);
      showAlert(await response.json());
      return;
    }
    if (trigger) trigger.disabled = false;
    window.alert(response && response.status === 403 ? t.forbidden : t.action_failed);
  }

  function redraw(id) {
    const alert = alerts.get(id);
    if (!alert) return;
    const item = alertItem(alert);
    const current = nodes.get(id);
    if (current && current.parentNode) current.replaceWith(item);
    nodes.set(id, item);
    placeAll();
  }

  function placeAll() {
    // The work list: unresolved alerts by severity, oldest first; resolved ones, newest first.
    const rank = (a) => (a.severity in SEVERITY_RANK ? SEVERITY_RANK[a.severity] : 9);
    const all = Array.from(alerts.values());
    const open = all.filter((a) => a.status !== "resolved").sort((a, b) =>
      rank(a) - rank(b) || a.created_at.localeCompare(b.created_at) || a.id - b.id);
    const done = all.filter((a) => a.status === "resolved").sort((a, b) =>
      (b.resolved_at || b.updated_at).localeCompare(a.resolved_at || a.updated_at) || b.id - a.id);
    place(document.getElementById("alerts"), open);
    place(document.getElementById("resolved-alerts"), done.slice(0, RESOLVED_SHOWN));
    done.slice(RESOLVED_SHOWN).forEach((a) => { const n = nodes.get(a.id); if (n) n.remove(); });
    document.getElementById("no-alerts").hidden = open.length > 0;
    document.getElementById("resolved").hidden = done.length === 0;
    document.getElementById("resolved-count").textContent = String(Math.min(done.length, RESOLVED_SHOWN));
  }

  function place(list, wanted) {
    const items = wanted.map((a) => nodes.get(a.id));
    // Move nodes only when the order changed, so a form being typed in keeps its focus.
    if (items.length !== list.children.length || items.some((n, i) => list.children[i] !== n)) {
      list.replaceChildren(...items);
    }
  }

  function showAlert(alert, live) {
    const known = alerts.get(alert.id);
    if (known && known.updated_at > alert.updated_at) return;  // an older copy arrived late
    const wasMine = known ? mine(known) : false;
    if (known && known.escalated_to && !("escalated_to" in alert)) {
      // Only the escalation event names where it went; later updates keep showing it.
      ["escalated_to", "escalated_at", "escalation_level", "escalation_reason"]
        .forEach((key) => { alert[key] = known[key]; });
    }
    alerts.set(alert.id, alert);
    if (alert.updated_at > lastUpdate) lastUpdate = alert.updated_at;
    redraw(alert.id);
    // New to this screen, or just escalated to the viewer's organisation.
    if (live && alert.severity === "red" && alert.status === "open" && mine(alert) &&
        (!known || !wasMine)) notifyRed(alert);
    refreshSoon();
  }

  // ---- sound and browser notification for new red alerts the viewer's organisation owns ----

  const toggle = document.getElementById("notify-toggle");
  let audio = null;

  function notifyOn() {
    try { return window.localStorage.getItem(NOTIFY_KEY) !== "off"; } catch (e) { return true; }
  }

  function audioContext() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!audio && Context) audio = new Context();
    return audio;
  }

  function beep() {
    const ctx = audioContext();
    if (!ctx) return;
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    const start = ctx.currentTime + 0.05;
    [0, 0.3].forEach((offset) => {  // two short tones, generated here: no audio files
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
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

  function notifyRed(alert) {
    if (!notifyOn()) return;
    redNotified += 1;
    document.documentElement.dataset.redNotified = String(redNotified);
    try { beep(); } catch (e) { console.error(e); }
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        const note = new Notification(`${t.red_alert}: ${alert.patient.display}`,
          { body: alert.reason, tag: `telekol-alert-${alert.id}` });
        note.onclick = () => { window.focus(); note.close(); };
      } catch (e) { console.error(e); }
    }
  }

  const allow = document.getElementById("notify-allow");

  function showAllow() {
    // Offer the permission prompt as a button: browsers ignore (or penalise) prompts on load.
    allow.hidden = !(toggle.checked && "Notification" in window &&
      Notification.permission === "default");
  }

  function askPermission() {
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().then(showAllow, showAllow);
    }
    unlockAudio();
  }

  function unlockAudio() {
    const ctx = audioContext();  // audio may start only after a user gesture
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  }

  toggle.checked = notifyOn();
  toggle.addEventListener("change", () => {
    try { window.localStorage.setItem(NOTIFY_KEY, toggle.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    if (toggle.checked) askPermission();
    showAllow();
  });
  allow.addEventListener("click", askPermission);
  document.addEventListener("click", function unlock() {
    if (notifyOn()) unlockAudio();
    document.removeEventListener("click", unlock);
  });
  showAllow();

  // ---- the GP's inbox ----

  async function refreshInbox() {
    if (!viewer.inbox) return;
    const response = await fetch("/api/inbox/unread-count", { credentials: "same-origin" });
    if (!response.ok) return;  // a server without an inbox: the badge stays hidden
    const { unread } = await response.json();
    const badge = document.getElementById("inbox-badge");
    badge.hidden = false;
    badge.dataset.unread = String(unread);
    badge.classList.toggle("unread", unread > 0);
    document.getElementById("inbox-count").textContent = String(unread);
    const items = await getJSON("/api/inbox");
    renderInbox(Array.isArray(items) ? items : items.items || []);
  }

  function renderInbox(items) {
    const list = document.getElementById("inbox-items");
    document.getElementById("inbox").hidden = false;
    list.replaceChildren(...items.map((entry) => {
      const alert = entry.alert || {};
      const item = el("li", { class: `inbox-item ${entry.read ? "read" : "unread"} ${alert.severity || ""}`,
        "data-item": entry.id, "data-alert": alert.id });
      item.appendChild(el("strong", {}, alert.patient ? alert.patient.display : ""));
      item.appendChild(el("time", { datetime: entry.created_at }, formatTime(entry.created_at)));
      item.appendChild(el("span", { class: "reason" }, alert.reason || ""));
      if (alert.status) item.appendChild(el("span", { class: "state" }, t[alert.status] || alert.status));
      if (entry.read) item.appendChild(el("span", { class: "state" }, t.read));
      else item.appendChild(button("mark-read", t.mark_read, (b) => markRead(entry.id, b)));
      return item;
    }));
    document.getElementById("no-inbox").hidden = items.length > 0;
  }

  async function markRead(id, trigger) {
    trigger.disabled = true;
    const response = await fetch(`/api/inbox/${id}/read`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken }, body: "{}",
    }).catch(() => null);
    if (response && response.ok) refreshInbox().catch(console.error);
    else { trigger.disabled = false; window.alert(t.action_failed); }
  }

  // ---- loading and live updates ----

  let refreshTimer = null;
  function refreshSoon() {
    // Alert counts, colours and the inbox come from the server, so one refresh covers all.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      loadPatients().catch(console.error);
      refreshInbox().catch(console.error);
    }, 300);
  }

  function addObservation(obs) {
    const p = patients.get(obs.patient.id);
    if (!p) return;
    const current = p.latest[obs.code];
    if (!current || new Date(obs.effective) >= new Date(current.effective)) {
      p.latest[obs.code] = obs;
      renderPatient(p);
    }
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  async function loadPatients() {
    const list = await getJSON("/api/patients");
    const ids = new Set(list.map((p) => p.id));
    patients.forEach((_, id) => {
      if (!ids.has(id)) {
        const row = document.querySelector(`tr[data-patient="${CSS.escape(id)}"]`);
        if (row) row.remove();
      }
    });
    patients.clear();
    list.forEach((p) => patients.set(p.id, p));
    list.forEach(renderPatient);
    sortPatients();
    document.getElementById("no-patients").hidden = list.length > 0;
  }

  async function catchUp() {
    // Alerts are stored before they are pushed, so a (re)connecting screen asks for what
    // changed while it was away (new, acknowledged or resolved), or the latest on first load.
    const reconnect = Boolean(lastUpdate);
    const url = reconnect ? `/api/alerts?since=${encodeURIComponent(lastUpdate)}` : "/api/alerts";
    (await getJSON(url)).forEach((alert) => showAlert(alert, reconnect));
  }

  function setState(state) {
    const badge = document.getElementById("live-state");
    badge.dataset.state = state;
    badge.textContent = t[state];
  }

  async function start() {
    await loadPatients();
    refreshInbox().catch(console.error);
    const socket = io("/live", { transports: ["websocket", "polling"] });
    socket.on("connect", () => { setState("live"); catchUp().catch(console.error); });
    socket.on("disconnect", () => setState("reconnecting"));
    socket.on("connect_error", () => setState("reconnecting"));
    socket.on("alert", (alert) => showAlert(alert, true));
    socket.on("observation", addObservation);
  }

  start().catch((error) => { console.error(error); setState("reconnecting"); });
})();
