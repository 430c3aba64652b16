// The Usage page: credits per day as a bar chart (uPlot, vendored in /static/vendor/uplot),
// from the JSON block the page carries. Without JavaScript the table below it says the same.
"use strict";

(function () {
  const box = document.getElementById("usage-chart");
  const source = document.getElementById("usage-chart-data");
  if (!box || !source || typeof uPlot === "undefined") {
    return;
  }
  const chart = JSON.parse(source.textContent);
  const ink = getComputedStyle(document.body).color || "#222";
  const xs = chart.credits.map(function (_, i) { return i; });
  function options(width) {
    return {
      width: width,
      height: 240,
      legend: {show: false},
      cursor: {drag: {x: false, y: false}},
      scales: {x: {time: false, range: [-0.5, Math.max(xs.length - 0.5, 0.5)]}},
      axes: [
        {stroke: ink, space: 90, incrs: [1, 2, 7, 14, 28, 56, 91],
         values: function (u, splits) {
           return splits.map(function (i) { return chart.labels[i] || ""; });
         }},
        {stroke: ink, size: 60}
      ],
      series: [
        {},
        {label: chart.series, stroke: "#2563eb", fill: "rgba(37, 99, 235, 0.55)",
         paths: uPlot.paths.bars({size: [0.7, 40]}), points: {show: false}}
      ]
    };
  }
  const plot = new uPlot(options(box.clientWidth || 600), [xs, chart.credits], box);
  box.dataset.drawn = "true";
  window.addEventListener("resize", function () {
    plot.setSize({width: box.clientWidth || 600, height: 240});
  });
})();
