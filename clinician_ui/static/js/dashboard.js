// TeleKOL dashboard: patients with latest readings, alerts pushed live over Socket.IO.
// Everything shown is set with textContent (never innerHTML) so data cannot inject markup.
(function () {
  "use strict";
  const t = JSON.parse(document.getElementById("i18n").textContent);
  const lang = document.documentElement.lang || "da";
  const columns = ["spo2", "pulse", "weight", "bp", "fev1", "temperature"];
  const patients = new Map();
  const shownAlerts = new Set();
  let lastAlertId = 0;

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

  function addAlert(alert) {
    if (shownAlerts.has(alert.id)) return;
    shownAlerts.add(alert.id);
    lastAlertId = Math.max(lastAlertId, alert.id);
    const item = el("li", { class: `alert ${alert.severity}`, "data-alert": alert.id });
    item.appendChild(el("span", { class: "badge" }, t[alert.severity] || alert.severity));
    item.appendChild(el("strong", {}, alert.patient.display));
    item.appendChild(el("span", { class: "reason" }, alert.reason));
    item.appendChild(el("time", { datetime: alert.created_at }, formatTime(alert.created_at)));
    item.appendChild(el("span", { class: "state" }, t[alert.status] || alert.status));
    const list = document.getElementById("alerts");
    const after = Array.from(list.children).find((li) => Number(li.dataset.alert) < alert.id);
    list.insertBefore(item, after || null);
    document.getElementById("no-alerts").hidden = true;
    const p = patients.get(alert.patient.id);
    if (p && alert.status === "open") {
      p.open_alerts += 1;
      if (alert.severity === "red" || p.status === "green") p.status = alert.severity;
      renderPatient(p);
    }
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
    list.forEach((p) => patients.set(p.id, p));
    list.forEach(renderPatient);
    document.getElementById("no-patients").hidden = list.length > 0;
  }

  async function catchUp() {
    // Alerts are stored before they are pushed, so a (re)connecting screen asks for what it missed.
    const missed = await getJSON(`/api/alerts?since=${lastAlertId}`);
    missed.forEach(addAlert);
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
    socket.on("alert", addAlert);
    socket.on("observation", addObservation);
  }

  start().catch((error) => { console.error(error); setState("reconnecting"); });
})();
