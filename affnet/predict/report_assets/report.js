// affnet predict report: the page's data (JSON in #affnet-data) drawn as one canvas chart per group
// (valence, arousal, expressions, AUs) beside the video. A cursor follows playback; a click on a chart
// seeks the video there; the face selector switches the traces. No network, no library.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("affnet-data").textContent);
  var video = document.getElementById("video");
  var select = document.getElementById("face");
  var holder = document.getElementById("charts");
  var statsTable = document.getElementById("stats");
  var PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#637939"];
  var PAD = {left: 34, right: 8, top: 6, bottom: 16};
  var times = data.times;
  var duration = data.duration > 0 ? data.duration : 1;
  var charts = [];

  function now() { return video ? video.currentTime : 0; }

  function groups(face) {
    var out = [];
    if (face.valence) { out.push({title: "valence", range: [-1, 1], series: [["valence", face.valence]]}); }
    if (face.arousal) { out.push({title: "arousal", range: [-1, 1], series: [["arousal", face.arousal]]}); }
    ["expressions", "aus"].forEach(function (key) {
      if (face[key]) {
        out.push({title: key === "aus" ? "action units (probability)" : "expressions (probability)", range: [0, 1],
                  series: Object.keys(face[key]).map(function (name) { return [name, face[key][name]]; })});
      }
    });
    return out;
  }

  function plotWidth(canvas) { return canvas.clientWidth - PAD.left - PAD.right; }

  function draw(chart) {
    var canvas = chart.canvas, ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth, height = chart.height;
    if (canvas.width !== Math.round(width * ratio)) { canvas.width = Math.round(width * ratio); }
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var w = width - PAD.left - PAD.right, h = height - PAD.top - PAD.bottom;
    var lo = chart.group.range[0], hi = chart.group.range[1];
    var x = function (t) { return PAD.left + w * t / duration; };
    var y = function (v) { return PAD.top + h * (hi - v) / (hi - lo); };
    ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#666"; ctx.font = "10px sans-serif"; ctx.lineWidth = 1;
    [lo, (lo + hi) / 2, hi].forEach(function (v) {
      ctx.beginPath(); ctx.moveTo(PAD.left, y(v)); ctx.lineTo(PAD.left + w, y(v)); ctx.stroke();
      ctx.fillText(String(v), 2, y(v) + 3);
    });
    ctx.fillText("0 s", PAD.left, height - 3);
    ctx.fillText(duration.toFixed(1) + " s", PAD.left + w - 30, height - 3);
    chart.group.series.forEach(function (item, k) {
      var values = item[1];
      ctx.strokeStyle = PALETTE[k % PALETTE.length]; ctx.lineWidth = 1.2; ctx.beginPath();
      var open = false;
      for (var i = 0; i < times.length; i++) {
        if (values[i] === null) { open = false; continue; }
        if (open) { ctx.lineTo(x(times[i]), y(values[i])); } else { ctx.moveTo(x(times[i]), y(values[i])); open = true; }
      }
      ctx.stroke();
    });
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5; ctx.beginPath();
    ctx.moveTo(x(now()), PAD.top); ctx.lineTo(x(now()), PAD.top + h); ctx.stroke();
  }

  function drawAll() { charts.forEach(draw); }

  function seek(event) {
    var canvas = event.currentTarget, rect = canvas.getBoundingClientRect();
    var t = (event.clientX - rect.left - PAD.left) / plotWidth(canvas) * duration;
    t = Math.max(0, Math.min(duration, t));
    if (video) { video.currentTime = t; }
    drawAll();
  }

  function legend(group) {
    var div = document.createElement("div");
    div.className = "legend";
    group.series.forEach(function (item, k) {
      var span = document.createElement("span"), swatch = document.createElement("i");
      swatch.style.background = PALETTE[k % PALETTE.length];
      span.appendChild(swatch); span.appendChild(document.createTextNode(item[0]));
      div.appendChild(span);
    });
    return div;
  }

  function fmt(v) { return v === null || v === undefined ? "" : Number(v).toFixed(3); }

  function showStats(faceId) {
    if (!statsTable) { return; }
    var stats = (data.statistics || {})[faceId];
    statsTable.innerHTML = "";
    if (!stats) { return; }
    var rows = [["frames with this face", stats.frames + " (" + (100 * (stats.coverage || 0)).toFixed(1) + " %)"]];
    ["valence", "arousal"].forEach(function (dim) {
      if (stats[dim]) {
        rows.push([dim + " mean / std", fmt(stats[dim].mean) + " / " + fmt(stats[dim].std)]);
        rows.push([dim + " q05 / q50 / q95", fmt(stats[dim].q05) + " / " + fmt(stats[dim].q50) + " / " + fmt(stats[dim].q95)]);
      }
    });
    Object.keys(stats.quadrants || {}).forEach(function (q) {
      rows.push(["quadrant " + q, (100 * (stats.quadrants[q] || 0)).toFixed(1) + " %"]);
    });
    rows.forEach(function (row) {
      var tr = statsTable.insertRow();
      tr.insertCell().textContent = row[0];
      tr.insertCell().textContent = row[1];
    });
  }

  function build(faceId) {
    holder.innerHTML = "";
    charts = [];
    var face = data.faces[faceId];
    if (!face) { holder.textContent = "No face was found in this input."; return; }
    groups(face).forEach(function (group) {
      var box = document.createElement("div"), title = document.createElement("h2");
      var canvas = document.createElement("canvas");
      box.className = "chart";
      box.dataset.chart = group.title;
      title.textContent = group.title;
      var height = group.series.length > 2 ? 150 : 110;
      canvas.style.height = height + "px";
      canvas.addEventListener("click", seek);
      box.appendChild(title); box.appendChild(canvas);
      if (group.series.length > 1) { box.appendChild(legend(group)); }
      holder.appendChild(box);
      charts.push({group: group, canvas: canvas, height: height});
    });
    showStats(faceId);
    drawAll();
  }

  var ids = Object.keys(data.faces);
  if (select) {
    ids.forEach(function (id) {
      var option = document.createElement("option");
      option.value = id; option.textContent = "face " + id;
      select.appendChild(option);
    });
    select.disabled = ids.length < 2;
    select.addEventListener("change", function () { build(select.value); });
  }
  if (video) {
    ["timeupdate", "seeked", "loadedmetadata"].forEach(function (name) { video.addEventListener(name, drawAll); });
    video.addEventListener("play", function tick() {
      drawAll();
      if (!video.paused && !video.ended) { window.requestAnimationFrame(tick); }
    });
  }
  window.addEventListener("resize", drawAll);
  build(ids.length ? ids[0] : null);
})();
