// TeleKOL dashboard: patients with latest readings, alerts pushed live over Socket.IO.
// Everything shown is set with textContent (never innerHTML) so data cannot inject markup.
(function () {
  "use strict";
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const lang = document.documentElement.lang || "da";
  const columns = ["spo2", "pulse", "weight", "bp", "fev1", "temperature"];
  const viewer = JSON.parse(document.getElementById("viewer").textContent);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const patients = new Map();
  const alerts = new Map();
  let lastUpdate = "";

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

  function renderPatient(p) {
    let row = document.querySelector(`tr[data-patient="${CSS.escape(p.id)}"]`);
    if (!row) {
      row = el("tr", { "data-patient": p.id });
      document.querySelector("#patients tbody").appendChild(row);
    }
    row.replaceChildren();
    const status = el("td", { class: "status" });
    status.appendChild(el("span", { class: `dot ${p.status}`, title: t[p.status] || p.status },
      t[p.status] || p.status));
    row.appendChild(status);
    row.appendChild(el("td", { class: "name" }, p.display));
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

  function alertItem(alert) {
    const item = el("li", { class: `alert ${alert.severity} ${alert.status}`, "data-alert": alert.id,
      "data-status": alert.status });
    item.appendChild(el("span", { class: "badge" }, t[alert.severity] || alert.severity));
    item.appendChild(el("strong", {}, alert.patient.display));
    item.appendChild(el("span", { class: "reason" }, alert.reason));
    item.appendChild(el("time", { datetime: alert.created_at }, formatTime(alert.created_at)));
    item.appendChild(el("span", { class: "state" }, t[alert.status] || alert.status));
    if (alert.acknowledged_by) {
      const who = alert.status === "resolved" && alert.resolved_by
        ? `${t.resolved_by} ${alert.resolved_by}` : `${t.acknowledged_by} ${alert.acknowledged_by}`;
      item.appendChild(el("span", { class: "who" }, alert.note ? `${who}: ${alert.note}` : who));
    }
    if (viewer.can_act && alert.status !== "resolved") {
      const actions = el("span", { class: "actions" });
      if (alert.status === "open") actions.appendChild(actionButton(alert, "acknowledge"));
      actions.appendChild(actionButton(alert, "resolve"));
      item.appendChild(actions);
    }
    return item;
  }

  function actionButton(alert, action) {
    const button = el("button", { type: "button", class: `act ${action}` }, t[action]);
    button.addEventListener("click", async () => {
      button.disabled = true;
      const response = await fetch(`/api/alerts/${alert.id}/${action}`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
        body: "{}",
      }).catch(() => null);
      if (response && response.ok) showAlert(await response.json());
      else { button.disabled = false; window.alert(t.action_failed); }
    });
    return button;
  }

  function showAlert(alert) {
    const known = alerts.get(alert.id);
    if (known && known.updated_at > alert.updated_at) return;  // an older copy arrived late
    alerts.set(alert.id, alert);
    if (alert.updated_at > lastUpdate) lastUpdate = alert.updated_at;
    const list = document.getElementById("alerts");
    const item = alertItem(alert);
    const current = list.querySelector(`li[data-alert="${alert.id}"]`);
    if (current) current.replaceWith(item);
    else {
      const after = Array.from(list.children).find((li) => Number(li.dataset.alert) < alert.id);
      list.insertBefore(item, after || null);
    }
    document.getElementById("no-alerts").hidden = true;
    refreshPatientsSoon();
  }

  let refreshTimer = null;
  function refreshPatientsSoon() {
    // Alert counts and colours come from the server, so one refresh covers every change.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => loadPatients().catch(console.error), 300);
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
    patients.clear();
    list.forEach((p) => patients.set(p.id, p));
    list.forEach(renderPatient);
    document.getElementById("no-patients").hidden = list.length > 0;
  }

  async function catchUp() {
    // Alerts are stored before they are pushed, so a (re)connecting screen asks for what
    // changed while it was away (new, acknowledged or resolved), or the latest on first load.
    const url = lastUpdate ? `/api/alerts?since=${encodeURIComponent(lastUpdate)}` : "/api/alerts";
    (await getJSON(url)).forEach(showAlert);
  }

  function setState(state) {
    const badge = document.getElementById("live-state");
    badge.dataset.state = state;
    badge.textContent = t[state];
  }

  async function start() {
    await loadPatients();
    const socket = io("/live", { transports: ["websocket", "polling"] });
    socket.on("connect", () => { setState("live"); catchUp().catch(console.error); });
    socket.on("disconnect", () => setState("reconnecting"));
    socket.on("connect_error", () => setState("reconnecting"));
    socket.on("alert", showAlert);
    socket.on("observation", addObservation);
  }

  start().catch((error) => { console.error(error); setState("reconnecting"); });
})();
