// TeleKOL main menu: the number of threshold proposals awaiting the user's decision
// (#nav-proposals). Refreshed on load, when the tab is shown again and when a page's live
// connection reports a proposal ("telekol:proposal", sent by care_plan.js).
(function () {
  "use strict";
  const badge = document.getElementById("nav-proposals");
  if (!badge) return;

  function refresh() {
    fetch("/api/threshold-proposals/count", {
      credentials: "same-origin", headers: { Accept: "application/json" },
    })
      .then((response) => (response.ok ? response.json() : { pending: 0 }))
      .then((body) => {
        const count = Number(body.pending) || 0;
        badge.textContent = count ? String(count) : "";
        badge.hidden = count === 0;
        badge.dataset.count = String(count);
      })
      .catch(() => {});
  }

  refresh();
  document.addEventListener("telekol:proposal", refresh);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
})();
