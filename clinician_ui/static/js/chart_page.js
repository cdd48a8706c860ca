// TeleKOL readings over time: one Chart.js chart per measured type. Each line (blood
// pressure has two, systolic above diastolic, each on its own axis) is drawn over its red and
// yellow limit bands, with the personal baseline as a dashed line and the alerts raised
// (triangles) and acknowledged (diamonds) along its top. The data comes from the page itself
// (<script type="application/json" id="chart-data">); the words under each chart and the table
// say the same for anyone who cannot see the chart. What was drawn is written onto the canvas
// as data- attributes (data-drawn, data-lines, data-x-min, data-x-max) for tests and tools.
(function () {
  "use strict";
  const source = document.getElementById("chart-data");
  if (!source || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const lang = document.documentElement.lang || "da";
  const locale = lang === "da" ? "da-DK" : "en-GB";
  const COLOURS = { red: "#c62828", yellow: "#f9a825", green: "#2e7d32", blue: "#1565c0" };
  const BANDS = { red: "rgba(198, 40, 40, 0.10)", yellow: "rgba(249, 168, 37, 0.16)" };
  const RANK = ["blue", "yellow", "red"];
  const INK = "#1d3557";
  const BASELINE = "#5c6b7a";
  const HOUR = 3600 * 1000;
  const DAY = 24 * HOUR;
  const since = Date.parse(data.since);
  const until = Date.parse(data.until);
  const isNumber = (v) => typeof v === "number" && Number.isFinite(v);

  function formatter(places) {
    const format = new Intl.NumberFormat(locale,
      { minimumFractionDigits: places, maximumFractionDigits: Math.max(places, 1) });
    return (value) => format.format(value);
  }

  // Red below red_low, yellow up to yellow_low; the same upwards: as server/alerts/triage.py.
  function bands(limits) {
    const found = [];
    const edge = (key) => (isNumber(limits[key]) ? limits[key] : null);
    const [redLow, yellowLow, yellowHigh, redHigh] =
      ["red_low", "yellow_low", "yellow_high", "red_high"].map(edge);
    if (redLow !== null) found.push({ from: -Infinity, to: redLow, colour: "red" });
    if (yellowLow !== null) found.push({ from: redLow ?? -Infinity, to: yellowLow, colour: "yellow" });
    if (yellowHigh !== null) found.push({ from: yellowHigh, to: redHigh ?? Infinity, colour: "yellow" });
    if (redHigh !== null) found.push({ from: redHigh, to: Infinity, colour: "red" });
    return found;
  }

  // A round step giving about five gridlines: 1, 2 or 5 times a power of ten.
  function niceStep(span) {
    const raw = span / 5;
    const power = 10 ** Math.floor(Math.log10(raw));
    const factor = raw / power;
    return power * (factor <= 1 ? 1 : factor <= 2 ? 2 : factor <= 5 ? 5 : 10);
  }

  // The y-axis: the readings, baseline and limits in view with a margin, on round numbers,
  // never outside what the value can be (plausible range from fhir/codes.py, a score's range).
  function axisBounds(values, plausible) {
    const shown = values.length ? values : (plausible || [0, 1]);
    let low = Math.min(...shown);
    let high = Math.max(...shown);
    const span = high - low || Math.abs(high) * 0.1 || 1;
    low -= span * 0.1;
    high += span * 0.1;
    const step = niceStep(high - low);
    const digits = Math.max(0, 1 - Math.floor(Math.log10(step)));
    const round = (v) => Number(v.toFixed(digits));
    let min = round(Math.floor(low / step) * step);
    let max = round(Math.ceil(high / step) * step);
    if (plausible) {
      min = Math.max(min, round(Math.floor(plausible[0] / step) * step));
      max = Math.min(max, plausible[1]);
    }
    if (max <= min) max = round(min + step);
    return { min, max, step };
  }

  // Gridlines on local clock hours or midnights, whatever the period.
  function timeTicks(days) {
    const hours = days <= 1 ? 6 : days <= 3 ? 12 : 0;
    const everyDays = days <= 7 ? 1 : days <= 30 ? 5 : 15;
    const ticks = [];
    const at = new Date(since);
    at.setHours(hours ? at.getHours() - (at.getHours() % hours) : 0, 0, 0, 0);
    while (at.getTime() <= until) {
      if (at.getTime() >= since) ticks.push({ value: at.getTime() });
      if (hours) at.setHours(at.getHours() + hours);
      else at.setDate(at.getDate() + everyDays);
    }
    return ticks;
  }

  // Times read as in the tables: in the care team's time zone, whatever the browser's.
  const clock = new Intl.DateTimeFormat(locale, { timeZone: data.zone, hour: "2-digit", minute: "2-digit" });
  const calendar = new Intl.DateTimeFormat(locale, { timeZone: data.zone, day: "numeric", month: "short" });
  const instant = new Intl.DateTimeFormat(locale,
    { timeZone: data.zone, dateStyle: "short", timeStyle: "short" });

  function timeLabel(value) {
    const parts = clock.formatToParts(value);
    const midnight = parts.filter((p) => p.type === "hour" || p.type === "minute")
      .every((p) => Number(p.value) % 24 === 0);
    return data.days <= 3 && !midnight ? clock.format(value) : calendar.format(value);
  }

  function readingsSet(chart, line, format) {
    return {
      kind: "readings", label: line.label, yAxisID: line.axis,
      data: chart.points.filter((p) => isNumber(p[line.key]))
        .map((p) => ({ x: Date.parse(p.t), y: p[line.key], severity: p.severity })),
      borderColor: INK, borderWidth: 2, pointRadius: 3, tension: 0,
      pointBackgroundColor: (ctx) => COLOURS[ctx.raw && ctx.raw.severity] || INK,
      pointBorderColor: (ctx) => COLOURS[ctx.raw && ctx.raw.severity] || INK,
      text: (raw) => `${line.label}: ${format(raw.y)} ${chart.unit}`.trim(),
    };
  }

  function baselineSet(chart, line, format) {
    return {
      kind: "baseline", label: chart.baseline, yAxisID: line.axis,
      data: chart.points.filter((p) => isNumber(p.b)).map((p) => ({ x: Date.parse(p.t), y: p.b })),
      borderColor: BASELINE, borderWidth: 2, borderDash: [6, 4], pointRadius: 0,
      pointHitRadius: 4, tension: 0,
      text: (raw) => `${chart.baseline}: ${format(raw.y)} ${chart.unit}`.trim(),
    };
  }

  // Alerts raised in the period as triangles, acknowledgements as diamonds, along the top.
  function markSets(chart, line) {
    const top = line.bounds.max - (line.bounds.max - line.bounds.min) * 0.06;
    const mine = (chart.alerts || []).filter((a) => a.line === line.code);
    const raised = mine.filter((a) => a.raised).map((a) =>
      ({ x: Date.parse(a.raised), y: top, severity: a.severity, text: a.text }))
      .sort((a, b) => RANK.indexOf(a.severity) - RANK.indexOf(b.severity));  // red drawn last
    const acknowledged = mine.filter((a) => a.acknowledged).map((a) =>
      ({ x: Date.parse(a.acknowledged), y: top, text: a.ack_text }));
    const common = { yAxisID: line.axis, showLine: false, pointRadius: 7, pointHoverRadius: 8,
      borderWidth: 2, text: (raw) => raw.text };
    return [
      { ...common, kind: "alerts", label: "alerts", data: raised, pointStyle: "triangle",
        pointBackgroundColor: (ctx) => COLOURS[ctx.raw && ctx.raw.severity] || INK,
        pointBorderColor: INK },
      { ...common, kind: "acknowledged", label: "acknowledged", data: acknowledged,
        pointStyle: "rectRot", pointBackgroundColor: "#fff", pointBorderColor: INK },
    ];
  }

  // Stacked panels meet at one pixel row: the upper one's lowest label would cover the lower
  // one's highest, so the upper panel leaves its lowest label out.
  function yScale(line, stacked, format, upper) {
    const hidden = stacked && upper ? line.bounds.min : null;
    return {
      type: "linear", position: "left", min: line.bounds.min, max: line.bounds.max,
      ticks: { stepSize: line.bounds.step,
        callback: (value) => (value === hidden ? "" : format(value)) },
      ...(stacked ? { stack: "panels", stackWeight: 1,
        title: { display: true, text: line.label } } : {}),
    };
  }

  // Draws each line's limit bands within its own axis, and counts what it drew.
  function bandPlugin(lines, drawn) {
    return {
      id: "telekolBands",
      beforeDatasetsDraw(instance) {
        const { ctx, chartArea, scales } = instance;
        ctx.save();
        lines.forEach((line) => {
          const scale = scales[line.axis];
          drawn[line.code] = 0;
          bands(line.limits || {}).forEach((band) => {
            const top = Math.max(scale.top, scale.getPixelForValue(Math.min(band.to, scale.max)));
            const bottom = Math.min(scale.bottom,
              scale.getPixelForValue(Math.max(band.from, scale.min)));
            if (bottom - top < 1) return;
            ctx.fillStyle = BANDS[band.colour];
            ctx.fillRect(chartArea.left, top, chartArea.right - chartArea.left, bottom - top);
            drawn[line.code] += 1;
          });
        });
        ctx.restore();
      },
    };
  }

  // Writes what was drawn onto the canvas, after every draw (also after a resize).
  function summaryPlugin(lines, drawn) {
    return {
      id: "telekolSummary",
      afterDraw(instance) {
        const count = (axis, kind) => instance.data.datasets
          .filter((d) => d.yAxisID === axis && d.kind === kind)
          .reduce((n, d) => n + d.data.length, 0);
        const summary = {};
        lines.forEach((line) => {
          const scale = instance.scales[line.axis];
          summary[line.code] = {
            points: count(line.axis, "readings"), baseline: count(line.axis, "baseline"),
            alerts: count(line.axis, "alerts"), acknowledged: count(line.axis, "acknowledged"),
            bands: drawn[line.code] || 0, y_min: scale.min, y_max: scale.max,
            top: Math.round(scale.top), bottom: Math.round(scale.bottom),
          };
        });
        const canvas = instance.canvas;
        canvas.dataset.lines = JSON.stringify(summary);
        canvas.dataset.xMin = new Date(instance.scales.x.min).toISOString();
        canvas.dataset.xMax = new Date(instance.scales.x.max).toISOString();
        canvas.dataset.drawn = String(summary[lines[0].code].points);
      },
    };
  }

  function draw(chart) {
    const canvas = document.querySelector(`canvas[data-chart="${CSS.escape(chart.code)}"]`);
    if (!canvas) return;
    const stacked = chart.lines.length > 1;
    const format = formatter(chart.places);
    const formatBaseline = formatter(Math.max(chart.places, 1));
    const lines = chart.lines.map((line, i) => ({ ...line, axis: `y${i}` }));
    const datasets = [];
    const scales = {};
    lines.forEach((line, i) => {
      const values = chart.points.map((p) => p[line.key]);
      if (i === 0) values.push(...chart.points.map((p) => p.b));
      values.push(...Object.values(line.limits || {}));
      line.bounds = axisBounds(values.filter(isNumber), line.plausible);
      datasets.push(readingsSet(chart, line, format));
      if (i === 0 && chart.baseline) datasets.push(baselineSet(chart, line, formatBaseline));
      datasets.push(...markSets(chart, line));
    });
    // Chart.js stacks the axes of one stack bottom-up in the order given: the first line on top.
    lines.slice().reverse().forEach((line, i) => {
      scales[line.axis] = yScale(line, stacked, format, i > 0);
    });
    scales.x = {
      type: "linear", min: since, max: until + (until - since) * 0.02,  // room for the last dot
      afterBuildTicks: (scale) => { scale.ticks = timeTicks(data.days); },
      ticks: { callback: timeLabel, maxRotation: 0, autoSkipPadding: 12 },
    };
    const drawn = {};
    new window.Chart(canvas, {
      type: "line",
      data: { datasets },
      options: {
        animation: false, maintainAspectRatio: false, parsing: false, locale,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => instant.format(items[0].raw.x),
              label: (item) => item.dataset.text(item.raw),
            },
          },
        },
        scales,
      },
      plugins: [bandPlugin(lines, drawn), summaryPlugin(lines, drawn)],
    });
  }

  data.charts.forEach(draw);
})();
