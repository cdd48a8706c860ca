// TeleKOL care plan and proposals pages: reload when the plan or a proposal changes (pushed
// live over Socket.IO), unless the user has started typing in a form; prefill the proposal
// form with the plan's current limits of the chosen measurement.
(function () {
  "use strict";
  const root = document.getElementById("care-plan") || document.getElementById("proposals-page");
  if (!root) return;
  const patient = root.dataset.patient || null;  // null: the proposals page (every patient)
  let typing = false;
  document.addEventListener("input", () => { typing = true; });

  function concerns(event) {
    return event && (patient === null || event.patient_id === patient);
  }

  function changed(event) {
    document.dispatchEvent(new CustomEvent("telekol:proposal", { detail: event }));
    if (!concerns(event)) return;
    if (typing) {
      const notice = document.getElementById("plan-changed");
      if (notice) notice.hidden = false;
      return;
    }
    window.location.reload();
  }

  if (typeof io === "function") {
    const socket = io("/live", { transports: ["websocket", "polling"] });
    socket.on("connect", () => { root.dataset.live = "live"; });
    socket.on("disconnect", () => { root.dataset.live = "reconnecting"; });
    socket.on("care_plan", changed);
    socket.on("proposal", changed);
  }

  const data = document.getElementById("plan-thresholds-data");
  const select = document.getElementById("propose-measurement");
  if (data && select) {
    const limits = JSON.parse(data.textContent);
    const fill = () => {
      const current = limits[select.value] || {};
      ["red_low", "yellow_low", "yellow_high", "red_high"].forEach((name) => {
        const input = document.getElementById(`propose-${name}`);
        const value = current[name];
        input.value = value === null || value === undefined ? "" : String(value);
      });
    };
    select.addEventListener("change", fill);
    const untouched = ["red_low", "yellow_low", "yellow_high", "red_high"]
      .every((name) => document.getElementById(`propose-${name}`).value === "");
    if (untouched) fill();
  }
})();
