// Draws the patient page's charts with plotly.js (installed from PyPI with the plotly package and
// served as a static file; no CDN). The figures come from the page's JSON (Django's json_script),
// the same structures the trends API returns; every chart has a table beside it.
(function () {
  "use strict";

  var INK = "#1a1a1a", CRAVING = "#0b4f8a", MOOD = "#1f6f43", USE = "#a4161a", SESSION = "#5b3b8c", GRID = "#d9d9d9";
  // No mode bar: its buttons would be focusable controls inside an image, and plotly's default
  // "share" button uploads the chart (patient data) to Plotly's cloud. Never that.
  var CONFIG = { displayModeBar: false, showSendToCloud: false, showLink: false, displaylogo: false, responsive: true };

  function layout(extra) {
    var base = {
      margin: { l: 56, r: 16, t: 8, b: 48 },
      font: { family: "system-ui, sans-serif", size: 13, color: INK },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff",
      legend: { orientation: "h", y: -0.3, yanchor: "top" },
      xaxis: { gridcolor: GRID }, yaxis: { gridcolor: GRID },
    };
    return Object.assign(base, extra);
  }

  function pluck(rows, key) { return rows.map(function (row) { return row[key]; }); }

  function draw(id, traces, extraLayout) {
    var element = document.getElementById(id);
    if (!element) { return; }
    window.Plotly.newPlot(element, traces, layout(extraLayout), CONFIG);
    element.setAttribute("data-drawn", "true");
  }

  function daily(data) {
    var dates = pluck(data.days, "date");
    var sessionShapes = data.sessions.map(function (s) {
      return { type: "line", xref: "x", yref: "paper", x0: s.local_date, x1: s.local_date, y0: 0, y1: 1,
               line: { color: SESSION, width: 1.5, dash: "dash" } };
    });
    draw("chart-daily", [
      { name: "Craving (daily mean)", x: dates, y: pluck(data.days, "craving_mean"), mode: "markers", type: "scatter",
        marker: { color: CRAVING, size: 5 } },
      { name: "Craving (7-day mean)", x: pluck(data.rolling_7d, "date"), y: pluck(data.rolling_7d, "craving_mean"),
        mode: "lines", type: "scatter", line: { color: CRAVING, width: 2.5 }, connectgaps: false },
      { name: "Mood (daily mean)", x: dates, y: pluck(data.days, "mood_mean"), mode: "markers", type: "scatter",
        marker: { color: MOOD, size: 5, symbol: "square" } },
      { name: "Mood (7-day mean)", x: pluck(data.rolling_7d, "date"), y: pluck(data.rolling_7d, "mood_mean"),
        mode: "lines", type: "scatter", line: { color: MOOD, width: 2.5, dash: "dot" }, connectgaps: false },
      { name: "Use", x: pluck(data.uses, "occurred_at"), y: data.uses.map(function () { return 10.4; }),
        text: pluck(data.uses, "substance"), mode: "markers", type: "scatter",
        marker: { color: USE, size: 10, symbol: "triangle-down" }, hovertemplate: "%{x}: %{text}<extra>use</extra>" },
    ], { yaxis: { range: [0, 10.8], gridcolor: GRID, title: { text: "0–10" } }, xaxis: { type: "date", gridcolor: GRID },
         shapes: sessionShapes });
  }

  function sessions(data) {
    var st = data.session_trends;
    if (!st.sessions.length) { return; }
    var traces = st.sessions.map(function (s) {
      return { name: "Session " + s.local_date, x: pluck(s.days, "offset"), y: pluck(s.days, "craving_mean"),
               mode: "lines+markers", type: "scatter", line: { width: 1 }, opacity: 0.55, connectgaps: true };
    });
    traces.push({ name: "Average", x: pluck(st.average.days, "offset"), y: pluck(st.average.days, "craving_mean"),
                  mode: "lines", type: "scatter", line: { color: INK, width: 4 }, connectgaps: true });
    draw("chart-sessions", traces, {
      xaxis: { title: { text: "Days from the session (day 0)" }, zeroline: true, zerolinecolor: SESSION, gridcolor: GRID },
      yaxis: { title: { text: "Craving" }, range: [0, 10], gridcolor: GRID },
    });
  }

  var BAND_FILLS = ["#eef5ee", "#f6f3e4", "#f8ebdd", "#f6e1dc", "#f1d6d6"];

  function assessments(data) {
    if (!data.assessments.length) { return; }
    var traces = [["phq9", "PHQ-9", CRAVING, "circle"], ["gad7", "GAD-7", SESSION, "diamond"]].map(function (spec) {
      var rows = data.assessments.filter(function (a) { return a.instrument === spec[0]; });
      return { name: spec[1], x: pluck(rows, "completed_at"), y: pluck(rows, "score"), text: pluck(rows, "severity"),
               mode: "lines+markers", type: "scatter", line: { color: spec[2] }, marker: { symbol: spec[3], size: 8 },
               hovertemplate: "%{x}: %{y} (%{text})<extra>" + spec[1] + "</extra>" };
    }).filter(function (trace) { return trace.x.length; });
    var shapes = data.bands.phq9.map(function (band, index) {
      return { type: "rect", xref: "paper", yref: "y", x0: 0, x1: 1, y0: band.min - 0.5, y1: band.max + 0.5,
               fillcolor: BAND_FILLS[index % BAND_FILLS.length], line: { width: 0 }, layer: "below" };
    });
    var annotations = data.bands.phq9.map(function (band) {
      return { xref: "paper", x: 1, xanchor: "right", y: (band.min + band.max) / 2, yref: "y", showarrow: false,
               text: "PHQ-9 " + band.label.toLowerCase(), font: { size: 11, color: "#4a4a4a" } };
    });
    draw("chart-assessments", traces, { shapes: shapes, annotations: annotations,
      yaxis: { range: [0, 27.5], title: { text: "Score" }, gridcolor: GRID }, xaxis: { type: "date", gridcolor: GRID } });
  }

  function hours(data) {
    if (!data.hours.length) { return; }
    draw("chart-hours", [
      { name: "Craving mean", x: pluck(data.hours, "hour"), y: pluck(data.hours, "craving_mean"), type: "bar",
        marker: { color: CRAVING }, customdata: pluck(data.hours, "entries"),
        hovertemplate: "%{x}:00 — craving %{y} (%{customdata} entries)<extra></extra>" },
    ], { xaxis: { title: { text: "Hour of day (patient's time)" }, dtick: 2, range: [-0.5, 23.5] },
         yaxis: { range: [0, 10], title: { text: "Craving" }, gridcolor: GRID } });
  }

  function triggers(data) {
    if (!data.triggers.length) { return; }
    var rows = data.triggers.slice().reverse();  // the most named at the top
    draw("chart-triggers", [
      { name: "Times named", y: pluck(rows, "trigger"), x: pluck(rows, "count"), type: "bar", orientation: "h",
        marker: { color: CRAVING }, customdata: pluck(rows, "craving_mean"),
        hovertemplate: "%{y}: %{x} times, craving %{customdata}<extra></extra>" },
    ], { margin: { l: 120, r: 16, t: 8, b: 40 }, xaxis: { title: { text: "Times named" }, gridcolor: GRID } });
  }

  function start() {
    var source = document.getElementById("chart-data");
    if (!source || !window.Plotly) { return; }
    var data = JSON.parse(source.textContent);
    daily(data); sessions(data); assessments(data); hours(data); triggers(data);
    document.body.setAttribute("data-charts-ready", "true");
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
