// TeleKOL main menu: the number of handovers waiting for the user's organisation
// (#nav-handovers). Refreshed on load and when the tab is shown again. Safe to include on
// every page: it does nothing where the badge is absent.
(function () {
  "use strict";
  const badge = document.getElementById("nav-handovers");
  if (!badge) return;

  function refresh() {
    fetch("/api/handovers/count", {
      credentials: "same-origin", headers: { Accept: "application/json" },
    })
      .then((response) => (response.ok ? response.json() : { incoming: 0 }))
      .then((body) => {
        const count = Number(body.incoming) || 0;
        badge.textContent = count ? String(count) : "";
        badge.hidden = count === 0;
        badge.dataset.count = String(count);
      })
      .catch(() => {});
  }

  refresh();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
})();
