'use strict';
var W = 300,
  H = 90;
var $ = (id) => document.getElementById(id);
var NS = 'http://www.w3.org/2000/svg';
var CHARTS = [
  {
    id: 'ops',
    title: 'calls answered / s',
    series: [
      { key: 'callsPerSec', color: '#2563eb', label: 'callers, every kind' },
      { key: 'opsPerSec', color: '#93c5fd', label: 'ops through the queue' },
    ],
  },
  {
    id: 'latency',
    title: 'caller latency (ms)',
    series: [
      { key: 'p50Ms', color: '#15803d', label: 'p50' },
      { key: 'p99Ms', color: '#b45309', label: 'p99' },
    ],
  },
  { id: 'batches', title: 'batch calls / s', series: [{ key: 'batchesPerSec', color: '#7c3aed' }] },
  {
    id: 'fill',
    title: 'batch fill (ops per batch)',
    series: [{ key: 'fill', color: '#15803d' }],
    fixedMax: 'maxOps',
  },
  { id: 'queue', title: 'queue depth (ops)', series: [{ key: 'queued', color: '#b45309' }] },
  { id: 'r429', title: 'upstream 429s / s', series: [{ key: 'upstream429PerSec', color: '#b91c1c' }] },
  {
    id: 'shed',
    title: 'shed by the proxy / s (429 queue full, 503 deadline or circuit)',
    series: [{ key: 'shedPerSec', color: '#6b7280' }],
  },
];
var charts = {};

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svgEl(tag, attrs) {
  var e = document.createElementNS(NS, tag);
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}
function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US');
}
function fmtRate(n) {
  return n >= 100 ? fmtInt(n) : (Math.round(n * 10) / 10).toString();
}
function fmtMs(ms) {
  if (ms === null) return '?';
  if (ms <= 0) return 'ready';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 100) / 10} s`;
}
function fmtLatency(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms >= 1000) return `${Math.round(ms / 100) / 10} s`;
  return `${ms < 10 ? Math.round(ms * 10) / 10 : Math.round(ms)} ms`;
}
function fmtDuration(ms) {
  var s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 360) / 10} h`;
}
function fmtLimit(l) {
  return l ? `${l.ratePerSec}/s, burst ${l.burst}` : 'not configured';
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  var p = 10 ** Math.floor(Math.log10(v));
  var steps = [1, 2, 2.5, 5, 10];
  for (let i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
  return 10 * p;
}

function buildCharts() {
  var box = $('charts');
  CHARTS.forEach((c) => {
    var card = el('div', 'chart');
    card.id = `chart-${c.id}`;
    var head = el('div', 'head');
    head.appendChild(el('span', 'label', c.title));
    var now = el('span', 'now', '-');
    head.appendChild(now);
    card.appendChild(head);
    var plot = el('div', 'plot');
    var svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
    svg.setAttribute('aria-label', c.title);
    [0.25, 0.5, 0.75].forEach((f) => {
      svg.appendChild(
        svgEl('line', {
          x1: 0,
          x2: W,
          y1: H * f,
          y2: H * f,
          stroke: '#e3e7ec',
          'vector-effect': 'non-scaling-stroke',
        }),
      );
    });
    var paths = c.series.map((s) => {
      var p = svgEl('path', {
        d: '',
        fill: 'none',
        stroke: s.color,
        'stroke-width': 1.6,
        'stroke-linejoin': 'round',
        'vector-effect': 'non-scaling-stroke',
      });
      svg.appendChild(p);
      return p;
    });
    plot.appendChild(svg);
    var max = el('span', 'max', '');
    plot.appendChild(max);
    card.appendChild(plot);
    var axis = el('div', 'axis');
    var from = el('span', '', '');
    axis.appendChild(from);
    axis.appendChild(el('span', '', 'now'));
    card.appendChild(axis);
    if (c.series.length > 1) {
      const legend = el('div', 'legend');
      c.series.forEach((s, i) => {
        var dot = el('span', '', '\u25A0 ');
        dot.style.color = s.color;
        legend.appendChild(dot);
        legend.appendChild(document.createTextNode(s.label + (i < c.series.length - 1 ? '   ' : '')));
      });
      card.appendChild(legend);
    }
    box.appendChild(card);
    charts[c.id] = { def: c, paths: paths, now: now, max: max, from: from };
  });
}

function drawCharts(s) {
  var h = s.history;
  // The last minute at first, widening with the history kept up to its full length.
  var span = Math.min(h.capacity, Math.max(60, h.t.length + 1)) * h.intervalMs;
  var start = s.now - span;
  CHARTS.forEach((c) => {
    var ch = charts[c.id];
    var top = 0;
    c.series.forEach((ser) => {
      h[ser.key].forEach((v) => {
        if (v !== null && v > top) top = v;
      });
    });
    top = c.fixedMax ? Math.max(s.config[c.fixedMax], top) : niceMax(top);
    c.series.forEach((ser, i) => {
      var d = '';
      var pen = false;
      h[ser.key].forEach((v, j) => {
        if (v === null) {
          pen = false;
          return;
        }
        var x = ((h.t[j] - start) / span) * W;
        var y = H - (v / top) * (H - 2) - 1;
        d += `${(pen ? 'L' : 'M') + x.toFixed(1)} ${y.toFixed(1)}`;
        pen = true;
      });
      ch.paths[i].setAttribute('d', d);
    });
    ch.max.textContent = fmtRate(top);
    ch.from.textContent =
      span < 120000 ? `-${Math.round(span / 1000)} s` : `-${Math.round(span / 60000)} min`;
    ch.now.textContent = c.series
      .map((ser) => {
        var values = h[ser.key];
        var v = values.length ? values[values.length - 1] : null;
        return v === null ? '-' : fmtRate(v);
      })
      .join(' / ');
  });
}
