function mini(bucket) {
  var wrap = el('span', 'mini');
  var fill = el('span');
  if (bucket.tokens !== null) {
    const f = bucket.tokens / bucket.burst;
    fill.style.width = `${Math.max(0, Math.min(1, f)) * 100}%`;
    if (bucket.tokens === 0) wrap.className = 'mini empty';
    else if (f < 0.1) wrap.className = 'mini low';
  }
  wrap.appendChild(fill);
  return wrap;
}
function forecastCell(b) {
  var f = b.forecast;
  if (f.state === 'draining') {
    return el(
      'td',
      f.emptyInMs < 60000 ? 'forecast soon' : 'forecast draining',
      `in ${fmtDuration(f.emptyInMs)} (-${fmtRate(f.drainPerSec)}/s)`,
    );
  }
  if (f.state === 'empty') return el('td', 'forecast spent', `spent: paced at ${b.ratePerSec}/s`);
  if (f.state === 'not-draining') return el('td', 'forecast', 'not draining');
  if (f.state === 'measuring') return el('td', 'forecast', 'measuring');
  return el('td', 'forecast', '?');
}
function groupsText(a) {
  var parts = (a.groups || [])
    .filter((g) => g.circuit !== 'closed' || g.pausedMs > 0 || g.paceMs > 0 || g.queued > 0)
    .map((g) => {
      var t = `${g.group} ${fmtInt(g.queued)} queued`;
      if (g.circuit !== 'closed') t += `, ${g.circuit}`;
      if (g.pausedMs > 0) t += `, paused ${fmtMs(g.pausedMs)}`;
      if (g.paceMs > 0) t += `, pace ${fmtMs(g.paceMs)}`;
      return t;
    });
  var other = a.otherGroups || { groups: 0, queued: 0 };
  if (other.groups > 0) parts.push(`_other: ${fmtInt(other.groups)} groups, ${fmtInt(other.queued)} queued`);
  return parts.length === 0 ? '' : parts.join('; ');
}

function bucketCells(row, b) {
  if (!b) {
    row.appendChild(el('td', '', '-'));
    row.appendChild(el('td', '', '-'));
    row.appendChild(el('td', 'forecast', '-'));
    return;
  }
  var tokens = el('td');
  tokens.appendChild(
    document.createTextNode(b.tokens === null ? '?' : `${fmtInt(b.tokens)} / ${fmtInt(b.burst)}`),
  );
  tokens.appendChild(mini(b));
  row.appendChild(tokens);
  row.appendChild(el('td', 'cooldown', fmtMs(b.cooldownMs)));
  row.appendChild(forecastCell(b));
}
function fillTable(id, rows, columns) {
  var body = $(id);
  body.replaceChildren();
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', 'empty', 'nothing yet');
    td.colSpan = columns;
    tr.appendChild(td);
    body.appendChild(tr);
  }
  rows.forEach((r) => {
    body.appendChild(r);
  });
}
function cells(values, cls) {
  var tr = el('tr', cls);
  values.forEach((v) => {
    tr.appendChild(el('td', '', v));
  });
  return tr;
}

function renderCallers(s) {
  var total = s.totals.callers,
    minute = s.lastMinute.callers;
  $('ops-total').textContent = fmtInt(total ? total.total : s.totals.ops);
  $('ops-rate').textContent = `${
    s.current.callsPerSec === null ? fmtRate(s.current.opsPerSec) : fmtRate(s.current.callsPerSec)
  } / s now${
    total
      ? '; ' +
        fmtInt(total.byKind.batched) +
        ' batched, ' +
        fmtInt(total.byKind.passthrough + total.byKind['client-batch']) +
        ' passed through, ' +
        fmtInt(total.byKind.rejected) +
        ' refused'
      : ''
  }`;
  var lat = minute ? minute.latency : null;
  $('latency-p50').textContent = lat ? fmtLatency(lat.all.p50Ms) : '-';
  $('latency-p99').textContent = lat ? fmtLatency(lat.all.p99Ms) : '-';
  $('latency-sub').textContent = !lat
    ? 'p50 / p99: no caller figures'
    : 'p50 / p99 of ' +
      fmtInt(lat.all.count) +
      ' calls; batched ' +
      fmtLatency(lat.byKind.batched.p50Ms) +
      ' / ' +
      fmtLatency(lat.byKind.batched.p99Ms) +
      ', pass-through ' +
      fmtLatency(lat.byKind.passthrough.p50Ms) +
      ' / ' +
      fmtLatency(lat.byKind.passthrough.p99Ms);
  fillTable(
    'callers-body',
    (minute ? minute.statuses : []).map((r) =>
      cells(
        [
          r.status,
          r.source,
          fmtInt(r.batched),
          fmtInt(r.passthrough),
          fmtInt(r.clientBatch),
          fmtInt(r.rejected),
        ],
        r.source === 'proxy' ? 'proxy' : '',
      ),
    ),
    6,
  );
  fillTable(
    'reasons-body',
    (minute ? minute.passthroughReasons : []).map((r) => cells([r.reason, fmtInt(r.count)])),
    2,
  );
}

function render(s) {
  var mode = $('redis-mode');
  mode.textContent =
    s.redis === 'none'
      ? 'no Redis (in-process limiter)'
      : s.redis === 'shared'
        ? 'Redis: shared'
        : 'Redis: FALLBACK (in-process share)';
  mode.className = `badge ${s.redis}`;
  renderCallers(s);
  $('fill').textContent = s.current.fill === null ? '-' : s.current.fill.toFixed(1);
  $('fill-sub').textContent =
    'ops per batch, last second (max ' +
    s.config.maxOps +
    '); last minute ' +
    (s.current.fillMinute === null ? '-' : s.current.fillMinute.toFixed(1));
  $('fill-bar').style.width = `${((s.current.fill || 0) / s.config.maxOps) * 100}%`;
  $('batches-rate').textContent = fmtRate(s.current.batchesPerSec);
  $('batches-total').textContent =
    `${fmtInt(s.totals.batches)} batch calls, ${fmtInt(s.totals.singles)} single`;
  $('queued').textContent = fmtInt(s.current.queued);
  $('inflight').textContent = `${fmtInt(s.current.inflight)} in flight`;
  var minute429 = 0;
  s.lastMinute.upstreamStatus.forEach((r) => {
    if (r.status === '429') minute429 += r.batch + r.single;
  });
  $('upstream-429').textContent = fmtInt(minute429);
  $('upstream-429-sub').textContent = `answered by the upstream; ${fmtInt(s.totals.upstream429)} since start`;
  var shed = s.lastMinute.shed;
  $('shed-minute').textContent = fmtInt(shed.queueFull + shed.deadline + shed.circuitOpen);
  $('shed').textContent =
    'queue full (429) ' +
    fmtInt(shed.queueFull) +
    ', deadline (503) ' +
    fmtInt(shed.deadline) +
    ', circuit open (503) ' +
    fmtInt(shed.circuitOpen) +
    '; since start ' +
    fmtInt(s.totals.shed.queueFull + s.totals.shed.deadline + s.totals.shed.circuitOpen);
  $('denials').textContent = fmtInt(s.totals.limiterDenials.batch + s.totals.limiterDenials.rest);
  $('denials-sub').textContent =
    'batch ' +
    fmtInt(s.totals.limiterDenials.batch) +
    ', rest ' +
    fmtInt(s.totals.limiterDenials.rest) +
    '; requeued ' +
    fmtInt(s.totals.requeued);

  fillTable(
    'apps-body',
    s.apps.map((a) => {
      var tr = el('tr');
      tr.appendChild(el('td', 'app', a.appId));
      tr.appendChild(el('td', 'queued', fmtInt(a.queued)));
      tr.appendChild(el('td', 'inflight', fmtInt(a.inflight)));
      bucketCells(tr, a.batch);
      bucketCells(tr, a.rest);
      tr.appendChild(
        el(
          'td',
          'circuit',
          a.circuit === 'closed'
            ? a.circuit
            : a.circuit +
                ' (' +
                a.openGroups +
                (a.openGroups === 1 ? ' group' : ' groups') +
                (a.appWide ? ', whole app' : '') +
                ')',
        ),
      );
      tr.appendChild(el('td', 'groups', groupsText(a)));
      return tr;
    }),
    10,
  );
  $('apps-more').textContent =
    s.appsTotal > s.apps.length ? `${s.appsTotal - s.apps.length} quieter apps not listed` : '';

  $('pacing-panel').hidden = !s.pacing;
  if (s.pacing) {
    fillTable(
      'pacing-body',
      s.pacing.buckets.map((b) =>
        cells([
          b.key,
          fmtRate(b.ratePerSec),
          fmtRate(s.pacing.maxRatePerSec),
          b.lastDecreaseAgoMs === null
            ? 'none seen'
            : b.lastDecreaseAgoMs <= 0
              ? 'just now'
              : `${fmtMs(b.lastDecreaseAgoMs)} ago`,
        ]),
      ),
      4,
    );
  }

  fillTable(
    'status-body',
    s.lastMinute.upstreamStatus.map((r) => cells([r.status, fmtInt(r.batch), fmtInt(r.single)])),
    3,
  );

  fillTable(
    'lanes-body',
    ['batch', 'single', 'none'].map((lane) =>
      cells([
        lane === 'none' ? 'none (not sent)' : lane,
        fmtInt(s.lastMinute.opsByLane[lane]),
        fmtInt(s.totals.opsByLane[lane]),
      ]),
    ),
    3,
  );

  $('config').textContent =
    'window ' +
    s.config.windowMs +
    ' ms, up to ' +
    s.config.maxOps +
    ' ops per batch; batch budget ' +
    fmtLimit(s.config.batch) +
    '; single-call budget ' +
    fmtLimit(s.config.rest) +
    '; up since ' +
    new Date(s.startedAt).toISOString();
  drawCharts(s);
}

var lastOk = 0;
function setLive(ok, why) {
  var live = $('live');
  if (ok) lastOk = Date.now();
  var stale = Date.now() - lastOk > 3000;
  live.className = stale ? 'live stale' : 'live';
  live.textContent = stale
    ? `no update: ${why || 'stale'}`
    : `updated ${new Date(lastOk).toLocaleTimeString()}`;
}

function poll() {
  fetch('status.json', { cache: 'no-store' })
    .then((r) => {
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      return r.json();
    })
    .then((s) => {
      render(s);
      setLive(true);
    })
    .catch((e) => {
      setLive(false, e?.message);
    })
    .finally(() => {
      setTimeout(poll, 1000);
    });
}

buildCharts();
poll();
