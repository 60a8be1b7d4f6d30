// Charts of the hwlat dashboard. Data comes from JSON embedded in each page; Plotly is
// served by the service itself (/static/plotly-VERSION.min.js).
"use strict";
window.hwlat = (function () {
  const CONFIG = { displaylogo: false, responsive: true };
  const FONT = { family: "system-ui, sans-serif", size: 12 };

  // The cells of one state as scatter markers over the heatmap, so a person can tell
  // measured, predicted, flagged and missing cells apart (colour alone cannot).
  function markers(t, state, name, symbol, color, edge) {
    const x = [], y = [], text = [];
    t.state.forEach((row, i) => row.forEach((s, j) => {
      if (s === state) { x.push(t.candidates[j]); y.push(t.layers[i]); text.push(t.hover[i][j]); }
    }));
    return {
      type: "scatter", mode: "markers", name: name, x: x, y: y, text: text,
      hovertemplate: "%{text}<extra></extra>", cliponaxis: false, showlegend: x.length > 0,
      marker: { symbol: symbol, size: 8, color: color, line: { width: 1.5, color: edge } },
      meta: { state: state },
    };
  }

  function heatmap(t, i) {
    const traces = [
      {
        type: "heatmap", x: t.candidates, y: t.layers, z: t.z, text: t.hover,
        hovertemplate: "%{text}<extra></extra>", colorscale: "Viridis", hoverongaps: false,
        colorbar: { title: { text: "ms" } }, xgap: 1, ygap: 1,
      },
      markers(t, "predicted", "predicted", "circle", "rgba(255,255,255,0.9)", "#111"),
      markers(t, "flagged", "flagged (unstable / wide CI)", "x-thin-open", "#ff3b30", "#ff3b30"),
      markers(t, "missing", "missing", "circle", "#9a9a9a", "#9a9a9a"),
    ];
    const layout = {
      font: FONT, margin: { l: 150, r: 20, t: 10, b: 90 },
      height: 120 + 22 * t.layers.length,
      xaxis: { type: "category", tickangle: -35, title: { text: "candidate" } },
      yaxis: { type: "category", autorange: "reversed" },
      showlegend: true, legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
      plot_bgcolor: "#f1f1f1",
    };
    return Plotly.newPlot("heatmap-" + i, traces, layout, CONFIG);
  }

  function diagonal(lo, hi) {
    return [
      { type: "scatter", mode: "lines", x: [lo, hi], y: [lo, hi], name: "exact",
        line: { color: "#444", width: 1 }, hoverinfo: "skip" },
      { type: "scatter", mode: "lines", x: [lo, hi], y: [lo * 1.1, hi * 1.1], name: "±10%",
        line: { color: "#999", width: 1, dash: "dash" }, hoverinfo: "skip" },
      { type: "scatter", mode: "lines", x: [lo, hi], y: [lo * 0.9, hi * 0.9], showlegend: false,
        line: { color: "#999", width: 1, dash: "dash" }, hoverinfo: "skip" },
    ];
  }

  function scatter(div, points, title) {
    const all = points.flatMap((p) => p.x.concat(p.y)).filter((v) => v > 0);
    const lo = Math.min(...all) * 0.8, hi = Math.max(...all) * 1.25;
    const traces = diagonal(lo, hi).concat(points.map((p) => ({
      type: "scatter", mode: "markers", name: p.name, x: p.x, y: p.y, text: p.text,
      marker: { size: 7, opacity: 0.75 },
      hovertemplate: "measured %{x:.4f} ms<br>estimate %{y:.4f} ms<br>%{text}<extra></extra>",
    })));
    const layout = {
      font: FONT, height: 460, margin: { l: 70, r: 20, t: 10, b: 60 },
      xaxis: { type: "log", title: { text: "measured (ms)" } },
      yaxis: { type: "log", title: { text: title } },
      legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
    };
    return Plotly.newPlot(div, traces, layout, CONFIG);
  }

  // Keep the token as a cookie for this site's pages (SameSite=Strict: never sent from
  // another site), then open the devices page.
  function login(form, cookie) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = document.getElementById("token").value.trim();
      document.cookie = cookie + "=" + encodeURIComponent(token) + "; path=/; SameSite=Strict";
      window.location.assign("/");
    });
  }

  return {
    login: login,
    heatmaps: (tables) => Promise.all(tables.map(heatmap)),
    predictorScatters: (kinds) => Promise.all(kinds.map((k, i) => scatter("scatter-" + i,
      [{ name: k.kind + " (held out)", x: k.x, y: k.y, text: k.x.map(() => k.kind) }],
      "predicted (ms)"))),
    validationScatter: (rows) => {
      if (!rows.length) return Promise.resolve();
      const text = rows.map((r) => r.space + " " + r.arch_hash + " · " + r.ops + " ops");
      const series = [{ name: "raw table sum", x: rows.map((r) => r.measured_ms),
        y: rows.map((r) => r.table_sum_ms), text: text }];
      const cal = rows.filter((r) => r.calibrated_ms !== null);
      if (cal.length) {
        series.push({ name: "calibrated (leave-one-out)", x: cal.map((r) => r.measured_ms),
          y: cal.map((r) => r.calibrated_ms), text: cal.map((r) => r.space + " " + r.arch_hash) });
      }
      return scatter("validation-scatter", series, "estimate (ms)");
    },
  };
})();
