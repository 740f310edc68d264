// The status page's markup: empty tiles, chart box and tables with ids, filled by the page's script
// (status-page-render.ts) from status.json. Static text only: no value from status.json is in here.

const COOLDOWN_TITLE =
  'Time until the bucket grants again. Once a call emptied the bucket this includes its hold (up to ' +
  'UPSTREAM_TIMEOUT_MS + 1 s), lifted when every call in flight on it is answered.';

const FORECAST_TITLE =
  'When the burst runs out at the drain seen over the last 30 s (tokens read by this page, every ' +
  'replica sharing the bucket included). Spent: calls leave at the bucket rate and wait in the queue.';

const SHED_TITLE =
  'Calls the proxy answered itself without asking the upstream: 429 PROXY_QUEUE_FULL, ' +
  '503 PROXY_DEADLINE_EXCEEDED (MAX_WAIT_MS), 503 PROXY_CIRCUIT_OPEN. Not upstream 429s.';

const PACE_KEY_TITLE =
  'The bucket key (upstream, app, bucket) hashed: sha256, first 12 hex digits. The 20 heard from last.';

const PACE_DECREASE_TITLE =
  'How long ago this replica saw the learned rate cut after a 429 (another replica may have made a later one).';

export const BODY = `<header>
<h1>batch proxy</h1>
<span id="redis-mode" class="badge">-</span>
<span id="live" class="live">connecting...</span>
</header>
<main>
<section class="tiles">
<div class="tile"><div class="label">calls answered</div><div class="value" id="ops-total">-</div><div class="sub" id="ops-rate">-</div></div>
<div class="tile"><div class="label">caller latency, last minute</div><div class="value pair"><span id="latency-p50">-</span> / <span id="latency-p99">-</span></div><div class="sub" id="latency-sub">p50 / p99</div></div>
<div class="tile"><div class="label">batch fill</div><div class="value" id="fill">-</div><div class="sub" id="fill-sub">ops per batch</div><div class="bar"><span id="fill-bar"></span></div></div>
<div class="tile"><div class="label">batch calls / s</div><div class="value" id="batches-rate">-</div><div class="sub" id="batches-total">-</div></div>
<div class="tile"><div class="label">queued</div><div class="value" id="queued">-</div><div class="sub" id="inflight">-</div></div>
<div class="tile"><div class="label">upstream 429s, last minute</div><div class="value" id="upstream-429">-</div><div class="sub" id="upstream-429-sub">-</div></div>
<div class="tile" title="${SHED_TITLE}"><div class="label">shed by the proxy, last minute</div><div class="value" id="shed-minute">-</div><div class="sub" id="shed">-</div></div>
<div class="tile"><div class="label">limiter denials</div><div class="value" id="denials">-</div><div class="sub" id="denials-sub">-</div></div>
</section>
<section class="charts" id="charts"></section>
<section class="grid">
<div class="panel wide"><h2>Queues, limiter buckets and burst forecast, per app</h2>
<table><thead><tr><th>app</th><th>queued</th><th>in flight</th><th>batch tokens</th><th title="${COOLDOWN_TITLE}">batch cooldown</th><th title="${FORECAST_TITLE}">batch burst runs out</th><th>rest tokens</th><th title="${COOLDOWN_TITLE}">rest cooldown</th><th title="${FORECAST_TITLE}">rest burst runs out</th><th title="the worst breaker of the app's groups (one per credential). open: the upstream kept failing for that group, whose calls are answered 503 at once until a probe succeeds; whole app: several groups open together refuse every call">circuit</th><th title="the app's busiest groups (one per credential, named by a 12-hex digest of it): queued ops, breaker, how long each is paused by a 429 of its own or spaced by its own pace after one; the others summed">groups</th></tr></thead>
<tbody id="apps-body"></tbody></table><p class="note" id="apps-more"></p></div>
<div class="panel wide" id="pacing-panel" hidden><h2>Adaptive pacing: learned rate per paced bucket</h2>
<table><thead><tr><th title="${PACE_KEY_TITLE}">bucket</th><th>learned rate / s</th><th>bound / s</th><th title="${PACE_DECREASE_TITLE}">last decrease</th></tr></thead>
<tbody id="pacing-body"></tbody></table></div>
<div class="panel"><h2>Caller answers, last minute</h2>
<table><thead><tr><th>status</th><th title="proxy: the proxy's own answer (a shed, a refusal); upstream: the upstream's, relayed (an op's own status inside a batch)">by</th><th>batched</th><th>pass-through</th><th>client batch</th><th>refused</th></tr></thead><tbody id="callers-body"></tbody></table>
<p class="note">Each caller's own status: an op's 404 inside a batch call that was a 200 counts as a 404.</p></div>
<div class="panel"><h2>Upstream calls by status, last minute</h2>
<table><thead><tr><th>status</th><th>batch</th><th>single</th></tr></thead><tbody id="status-body"></tbody></table></div>
<div class="panel"><h2>Ops by lane</h2>
<table><thead><tr><th>lane</th><th>last minute</th><th>total</th></tr></thead><tbody id="lanes-body"></tbody></table>
<h2>Not batched, last minute: why</h2>
<table><thead><tr><th>reason</th><th>calls</th></tr></thead><tbody id="reasons-body"></tbody></table></div>
</section>
<footer id="config"></footer>
</main>`;
