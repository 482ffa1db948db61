// Line charts on the vendored Chart.js (vendor/chart.min.js, see vendor/VENDORED.md), updated in place as
// points arrive; no animation, so a chart shows what was last received at once.

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

export function lineChart(canvasId, xTitle) {
  const chart = new window.Chart(document.getElementById(canvasId), {
    type: "line",
    data: { datasets: [] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      scales: { x: { type: "linear", title: { display: true, text: xTitle } }, y: { beginAtZero: false } },
      plugins: { legend: { position: "bottom" } },
      elements: { point: { radius: 2 } },
    },
  });
  return {
    // series: {name: [{x, y}, ...]}; replaces what the chart shows.
    set(series) {
      const names = Object.keys(series);
      chart.data.datasets = names.map((name, i) => ({
        label: name, data: series[name], borderColor: COLOURS[i % COLOURS.length],
        backgroundColor: COLOURS[i % COLOURS.length], borderWidth: 2, tension: 0,
      }));
      chart.update("none");
    },
    points() { return chart.data.datasets.reduce((n, d) => n + d.data.length, 0); },
  };
}
