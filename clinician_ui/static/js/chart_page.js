// TeleKOL readings over time: one Chart.js line chart per measured type, with the
// patient's red and yellow limits as coloured bands behind the line. The data comes from
// the page itself (<script type="application/json" id="chart-data">); the table under
// each chart shows the same readings for anyone who cannot see the chart.
(function () {
  "use strict";
  const source = document.getElementById("chart-data");
  if (!source || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const lang = document.documentElement.lang || "da";
  const locale = lang === "da" ? "da-DK" : "en-GB";
  const COLOURS = { red: "#c62828", yellow: "#f9a825", green: "#2e7d32" };
  const BANDS = { red: "rgba(198, 40, 40, 0.10)", yellow: "rgba(249, 168, 37, 0.16)" };
  const DAY = 24 * 3600 * 1000;

  // Red below red_low, yellow up to yellow_low; the same upwards: as server/triage.py.
  function bands(limits) {
    const found = [];
    const edge = (key) => (typeof limits[key] === "number" ? limits[key] : null);
    const [redLow, yellowLow, yellowHigh, redHigh] =
      ["red_low", "yellow_low", "yellow_high", "red_high"].map(edge);
    if (redLow !== null) found.push({ from: -Infinity, to: redLow, colour: "red" });
    if (yellowLow !== null) found.push({ from: redLow ?? -Infinity, to: yellowLow, colour: "yellow" });
    if (yellowHigh !== null) found.push({ from: yellowHigh, to: redHigh ?? Infinity, colour: "yellow" });
    if (redHigh !== null) found.push({ from: redHigh, to: Infinity, colour: "red" });
    return found;
  }

  const bandPlugin = {
    id: "telekolBands",
    beforeDatasetsDraw(chart, _args, options) {
      const { ctx, chartArea, scales } = chart;
      if (!chartArea || !options.bands) return;
      ctx.save();
      options.bands.forEach((band) => {
        const top = Math.max(chartArea.top, scales.y.getPixelForValue(Math.min(band.to, scales.y.max)));
        const bottom = Math.min(chartArea.bottom, scales.y.getPixelForValue(Math.max(band.from, scales.y.min)));
        if (bottom <= top) return;
        ctx.fillStyle = BANDS[band.colour];
        ctx.fillRect(chartArea.left, top, chartArea.right - chartArea.left, bottom - top);
      });
      ctx.restore();
    },
  };

  function dataset(label, points, key, dashed) {
    return {
      label,
      data: points.filter((p) => p[key] !== null && p[key] !== undefined)
        .map((p) => ({ x: Date.parse(p.t), y: p[key], severity: p.severity })),
      borderColor: "#1d3557",
      borderWidth: 2,
      borderDash: dashed ? [6, 4] : [],
      pointRadius: 3,
      pointBackgroundColor: (ctx) => COLOURS[ctx.raw && ctx.raw.severity] || "#1d3557",
      pointBorderColor: (ctx) => COLOURS[ctx.raw && ctx.raw.severity] || "#1d3557",
      tension: 0,
    };
  }

  function range(chart) {
    // Keep the limits in view, so a reading near a band shows how near it is.
    const values = chart.points.flatMap((p) => [p.v, p.v2]).filter((v) => typeof v === "number");
    const limits = Object.values(chart.limits || {}).filter((v) => typeof v === "number");
    const all = values.concat(limits);
    if (!all.length) return {};
    const low = Math.min(...all);
    const high = Math.max(...all);
    const pad = Math.max((high - low) * 0.1, Math.abs(high) * 0.02, 1);
    return { suggestedMin: low - pad, suggestedMax: high + pad };
  }

  function draw(chart) {
    const canvas = document.querySelector(`canvas[data-chart="${CSS.escape(chart.code)}"]`);
    if (!canvas) return;
    const now = Date.now();
    const datasets = [dataset(chart.label, chart.points, "v", false)];
    if (chart.points.some((p) => typeof p.v2 === "number")) {
      datasets.push(dataset(`${chart.label} (2)`, chart.points, "v2", true));
    }
    const instance = new window.Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        plugins: {
          legend: { display: false },
          telekolBands: { bands: chart.code === "bp" ? [] : bands(chart.limits || {}) },
          tooltip: {
            callbacks: {
              title: (items) => new Date(items[0].raw.x).toLocaleString(locale,
                { dateStyle: "short", timeStyle: "short" }),
            },
          },
        },
        scales: {
          x: {
            type: "linear",
            min: now - data.days * DAY,
            max: now + data.days * DAY * 0.02,  // room for the newest point's dot
            ticks: {
              stepSize: DAY * (data.days <= 7 ? 1 : data.days <= 30 ? 5 : 15),
              callback: (value) => new Date(value).toLocaleDateString(locale,
                { day: "numeric", month: "short" }),
            },
          },
          y: range(chart),
        },
      },
      plugins: [bandPlugin],
    });
    canvas.dataset.drawn = String(instance.data.datasets[0].data.length);
  }

  data.charts.forEach(draw);
})();
