// The live status page served at GET / on the admin listener: one self-contained HTML document (no
// build step, no CDN) that polls status.json every second and draws its charts as inline SVG.
//
// Every value from status.json is written with textContent or as an SVG path, never as markup: app ids
// come from request paths, so they are untrusted. The Content-Security-Policy allows exactly the one
// inline script and style below (by hash) and fetches to this origin only.

import { createHash } from 'node:crypto';

const STYLE = `
:root { --bg: #f6f7f9; --panel: #fff; --ink: #1b1f24; --muted: #5f6b7a; --line: #e3e7ec;
  --ok: #15803d; --warn: #b45309; --bad: #b91c1c; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: 12px; padding: 12px 20px; background: var(--panel);
  border-bottom: 1px solid var(--line); }
h1 { font-size: 17px; margin: 0; font-weight: 600; }
h2 { font-size: 13px; margin: 0 0 8px; color: var(--muted); font-weight: 600; text-transform: uppercase;
  letter-spacing: .04em; }
.badge { padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; color: #fff;
  background: var(--muted); }
.badge.shared { background: var(--ok); } .badge.fallback { background: var(--bad); }
.live { margin-left: auto; color: var(--muted); font-size: 12px; }
.live.stale { color: var(--bad); font-weight: 600; }
main { padding: 16px 20px; display: grid; gap: 16px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
.tile, .panel, .chart { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; }
.label { color: var(--muted); font-size: 12px; }
.value { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; }
.sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.bar { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin-top: 6px; }
.bar span { display: block; height: 100%; width: 0; background: var(--accent); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; }
.chart .head { display: flex; justify-content: space-between; align-items: baseline; }
.chart .now { font-weight: 600; font-variant-numeric: tabular-nums; }
.chart .plot { position: relative; margin-top: 4px; }
.chart svg { display: block; width: 100%; height: 90px; }
.chart .max { position: absolute; top: 0; left: 2px; font-size: 11px; color: var(--muted); }
.chart .axis { display: flex; justify-content: space-between; font-size: 11px; color: var(--muted); }
.chart .legend { font-size: 11px; color: var(--muted); }
.grid { display: grid; grid-template-columns: 2fr 1fr 1fr; gap: 12px; align-items: start; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 4px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.empty { text-align: center; color: var(--muted); }
.mini { display: inline-block; width: 60px; height: 6px; background: var(--line); border-radius: 3px;
  overflow: hidden; vertical-align: middle; margin-left: 6px; }
.mini span { display: block; height: 100%; background: var(--ok); }
.mini.low span { background: var(--warn); } .mini.empty span { background: var(--bad); }
.note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
footer { color: var(--muted); font-size: 12px; }
`;

// Plain ES2020 for the browser. No backticks or dollar-brace in here: this text sits in a template.
const SCRIPT = `
'use strict';
var W = 300, H = 90;
var $ = function (id) { return document.getElementById(id); };
var NS = 'http://www.w3.org/2000/svg';
var CHARTS = [
  { id: 'ops', title: 'calls answered / s', series: [{ key: 'opsPerSec', color: '#2563eb' }] },
  { id: 'batches', title: 'batch calls / s', series: [{ key: 'batchesPerSec', color: '#7c3aed' }] },
  { id: 'fill', title: 'batch fill (ops per batch)', series: [{ key: 'fill', color: '#15803d' }], fixedMax: 'maxOps' },
  { id: 'queue', title: 'queue depth (ops)', series: [{ key: 'queued', color: '#b45309' }] },
  { id: 'r429', title: '429s / s', series: [{ key: 'upstream429PerSec', color: '#b91c1c', label: 'upstream' },
    { key: 'shedPerSec', color: '#6b7280', label: 'shed by proxy' }] },
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
function fmtInt(n) { return Math.round(n).toLocaleString('en-US'); }
function fmtRate(n) { return n >= 100 ? fmtInt(n) : (Math.round(n * 10) / 10).toString(); }
function fmtMs(ms) {
  if (ms === null) return '?';
  if (ms <= 0) return 'ready';
  return ms < 1000 ? Math.round(ms) + ' ms' : (Math.round(ms / 100) / 10) + ' s';
}
function fmtLimit(l) { return l ? l.ratePerSec + '/s, burst ' + l.burst : 'not configured'; }
function niceMax(v) {
  if (!(v > 0)) return 1;
  var p = Math.pow(10, Math.floor(Math.log10(v)));
  var steps = [1, 2, 2.5, 5, 10];
  for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
  return 10 * p;
}

function buildCharts() {
  var box = $('charts');
  CHARTS.forEach(function (c) {
    var card = el('div', 'chart');
    card.id = 'chart-' + c.id;
    var head = el('div', 'head');
    head.appendChild(el('span', 'label', c.title));
    var now = el('span', 'now', '-');
    head.appendChild(now);
    card.appendChild(head);
    var plot = el('div', 'plot');
    var svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img' });
    svg.setAttribute('aria-label', c.title);
    [0.25, 0.5, 0.75].forEach(function (f) {
      svg.appendChild(svgEl('line', { x1: 0, x2: W, y1: H * f, y2: H * f, stroke: '#e3e7ec',
        'vector-effect': 'non-scaling-stroke' }));
    });
    var paths = c.series.map(function (s) {
      var p = svgEl('path', { d: '', fill: 'none', stroke: s.color, 'stroke-width': 1.6,
        'stroke-linejoin': 'round', 'vector-effect': 'non-scaling-stroke' });
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
      var legend = el('div', 'legend');
      c.series.forEach(function (s, i) {
        var dot = el('span', '', '\\u25A0 ');
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
  CHARTS.forEach(function (c) {
    var ch = charts[c.id];
    var top = 0;
    c.series.forEach(function (ser) {
      h[ser.key].forEach(function (v) { if (v !== null && v > top) top = v; });
    });
    top = c.fixedMax ? Math.max(s.config[c.fixedMax], top) : niceMax(top);
    c.series.forEach(function (ser, i) {
      var d = '';
      var pen = false;
      h[ser.key].forEach(function (v, j) {
        if (v === null) { pen = false; return; }
        var x = ((h.t[j] - start) / span) * W;
        var y = H - (v / top) * (H - 2) - 1;
        d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1);
        pen = true;
      });
      ch.paths[i].setAttribute('d', d);
    });
    ch.max.textContent = fmtRate(top);
    ch.from.textContent = span < 120000 ? '-' + Math.round(span / 1000) + ' s' : '-' + Math.round(span / 60000) + ' min';
    ch.now.textContent = c.series.map(function (ser) {
      var values = h[ser.key];
      var v = values.length ? values[values.length - 1] : null;
      return v === null ? '-' : fmtRate(v);
    }).join(' / ');
  });
}

function mini(bucket) {
  var wrap = el('span', 'mini');
  var fill = el('span');
  if (bucket.tokens !== null) {
    var f = bucket.tokens / bucket.burst;
    fill.style.width = Math.max(0, Math.min(1, f)) * 100 + '%';
    if (bucket.tokens === 0) wrap.className = 'mini empty';
    else if (f < 0.1) wrap.className = 'mini low';
  }
  wrap.appendChild(fill);
  return wrap;
}
function bucketCells(row, b) {
  if (!b) {
    row.appendChild(el('td', '', '-'));
    row.appendChild(el('td', '', '-'));
    return;
  }
  var tokens = el('td');
  tokens.appendChild(document.createTextNode(b.tokens === null ? '?' : fmtInt(b.tokens) + ' / ' + fmtInt(b.burst)));
  tokens.appendChild(mini(b));
  row.appendChild(tokens);
  row.appendChild(el('td', 'cooldown', fmtMs(b.cooldownMs)));
}
function fillTable(id, rows, columns) {
  var body = $(id);
  body.replaceChildren();
  if (!rows.length) {
    var tr = el('tr');
    var td = el('td', 'empty', 'nothing yet');
    td.colSpan = columns;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  rows.forEach(function (r) { body.appendChild(r); });
}

function render(s) {
  var mode = $('redis-mode');
  mode.textContent = s.redis === 'none' ? 'no Redis (in-process limiter)' :
    s.redis === 'shared' ? 'Redis: shared' : 'Redis: FALLBACK (in-process share)';
  mode.className = 'badge ' + s.redis;
  $('ops-total').textContent = fmtInt(s.totals.ops);
  $('ops-rate').textContent = fmtRate(s.current.opsPerSec) + ' / s now';
  $('fill').textContent = s.current.fill === null ? '-' : s.current.fill.toFixed(1);
  $('fill-sub').textContent = 'ops per batch, last second (max ' + s.config.maxOps + '); last minute ' +
    (s.current.fillMinute === null ? '-' : s.current.fillMinute.toFixed(1));
  $('fill-bar').style.width = ((s.current.fill || 0) / s.config.maxOps) * 100 + '%';
  $('batches-rate').textContent = fmtRate(s.current.batchesPerSec);
  $('batches-total').textContent = fmtInt(s.totals.batches) + ' batch calls, ' + fmtInt(s.totals.singles) + ' single';
  $('queued').textContent = fmtInt(s.current.queued);
  $('inflight').textContent = fmtInt(s.current.inflight) + ' in flight';
  var minute429 = 0;
  s.lastMinute.upstreamStatus.forEach(function (r) { if (r.status === '429') minute429 += r.batch + r.single; });
  $('upstream-429').textContent = fmtInt(minute429);
  $('shed').textContent = 'shed: ' + fmtInt(s.totals.shed.queueFull) + ' queue full, ' +
    fmtInt(s.totals.shed.deadline) + ' deadline, ' + fmtInt(s.totals.shed.circuitOpen) + ' circuit open';
  $('denials').textContent = fmtInt(s.totals.limiterDenials.batch + s.totals.limiterDenials.rest);
  $('denials-sub').textContent = 'batch ' + fmtInt(s.totals.limiterDenials.batch) + ', rest ' +
    fmtInt(s.totals.limiterDenials.rest) + '; requeued ' + fmtInt(s.totals.requeued);

  fillTable('apps-body', s.apps.map(function (a) {
    var tr = el('tr');
    tr.appendChild(el('td', 'app', a.appId));
    tr.appendChild(el('td', 'queued', fmtInt(a.queued)));
    tr.appendChild(el('td', 'inflight', fmtInt(a.inflight)));
    bucketCells(tr, a.batch);
    bucketCells(tr, a.rest);
    tr.appendChild(el('td', 'circuit', a.circuit));
    return tr;
  }), 8);
  $('apps-more').textContent = s.appsTotal > s.apps.length ?
    (s.appsTotal - s.apps.length) + ' quieter apps not listed' : '';

  fillTable('status-body', s.lastMinute.upstreamStatus.map(function (r) {
    var tr = el('tr');
    tr.appendChild(el('td', '', r.status));
    tr.appendChild(el('td', '', fmtInt(r.batch)));
    tr.appendChild(el('td', '', fmtInt(r.single)));
    return tr;
  }), 3);

  fillTable('lanes-body', ['batch', 'single', 'none'].map(function (lane) {
    var tr = el('tr');
    tr.appendChild(el('td', '', lane === 'none' ? 'none (not sent)' : lane));
    tr.appendChild(el('td', '', fmtInt(s.lastMinute.opsByLane[lane])));
    tr.appendChild(el('td', '', fmtInt(s.totals.opsByLane[lane])));
    return tr;
  }), 3);

  $('config').textContent = 'window ' + s.config.windowMs + ' ms, up to ' + s.config.maxOps +
    ' ops per batch; batch budget ' + fmtLimit(s.config.batch) + '; single-call budget ' +
    fmtLimit(s.config.rest) + '; up since ' + new Date(s.startedAt).toISOString();
  drawCharts(s);
}

var lastOk = 0;
function setLive(ok, why) {
  var live = $('live');
  if (ok) lastOk = Date.now();
  var stale = Date.now() - lastOk > 3000;
  live.className = stale ? 'live stale' : 'live';
  live.textContent = stale ? 'no update: ' + (why || 'stale') :
    'updated ' + new Date(lastOk).toLocaleTimeString();
}

function poll() {
  fetch('status.json', { cache: 'no-store' })
    .then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    })
    .then(function (s) { render(s); setLive(true); })
    .catch(function (e) { setLive(false, e && e.message); })
    .finally(function () { setTimeout(poll, 1000); });
}

buildCharts();
poll();
`;

const COOLDOWN_TITLE =
  'Time until the bucket grants again. Once a call emptied the bucket this includes its hold (up to ' +
  'UPSTREAM_TIMEOUT_MS + 1 s), lifted when every call in flight on it is answered.';

const BODY = `<header>
<h1>batch proxy</h1>
<span id="redis-mode" class="badge">-</span>
<span id="live" class="live">connecting...</span>
</header>
<main>
<section class="tiles">
<div class="tile"><div class="label">calls answered</div><div class="value" id="ops-total">-</div><div class="sub" id="ops-rate">-</div></div>
<div class="tile"><div class="label">batch fill</div><div class="value" id="fill">-</div><div class="sub" id="fill-sub">ops per batch</div><div class="bar"><span id="fill-bar"></span></div></div>
<div class="tile"><div class="label">batch calls / s</div><div class="value" id="batches-rate">-</div><div class="sub" id="batches-total">-</div></div>
<div class="tile"><div class="label">queued</div><div class="value" id="queued">-</div><div class="sub" id="inflight">-</div></div>
<div class="tile"><div class="label">upstream 429s, last minute</div><div class="value" id="upstream-429">-</div><div class="sub" id="shed">-</div></div>
<div class="tile"><div class="label">limiter denials</div><div class="value" id="denials">-</div><div class="sub" id="denials-sub">-</div></div>
</section>
<section class="charts" id="charts"></section>
<section class="grid">
<div class="panel"><h2>Queues and limiter buckets, per app</h2>
<table><thead><tr><th>app</th><th>queued</th><th>in flight</th><th>batch tokens</th><th title="${COOLDOWN_TITLE}">batch cooldown</th><th>rest tokens</th><th title="${COOLDOWN_TITLE}">rest cooldown</th><th title="open: the upstream kept failing; calls are answered 503 at once until a probe succeeds">circuit</th></tr></thead>
<tbody id="apps-body"></tbody></table><p class="note" id="apps-more"></p></div>
<div class="panel"><h2>Upstream status, last minute</h2>
<table><thead><tr><th>status</th><th>batch</th><th>single</th></tr></thead><tbody id="status-body"></tbody></table></div>
<div class="panel"><h2>Calls by lane</h2>
<table><thead><tr><th>lane</th><th>last minute</th><th>total</th></tr></thead><tbody id="lanes-body"></tbody></table></div>
</section>
<footer id="config"></footer>
</main>`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const statusPage = {
  html: `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>batch proxy status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`,
  /** Allows the page's own inline script and style (by hash) and fetches to this origin only. */
  csp: [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
} as const;
