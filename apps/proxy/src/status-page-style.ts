// The status page's style sheet, inline in the page and allowed by its hash (status-page.ts).

export const STYLE = `
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
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(136px, 1fr)); gap: 12px; }
.tile, .panel, .chart { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; }
.label { color: var(--muted); font-size: 12px; }
.value { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; }
.value.pair { font-size: 20px; line-height: 39px; }
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
.grid { display: grid; grid-template-columns: 3fr 2fr 2fr; gap: 12px; align-items: start; }
.grid .wide { grid-column: 1 / -1; }
.panel { overflow-x: auto; }
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
td.soon { color: var(--bad); font-weight: 600; } td.draining { color: var(--warn); }
td.spent { color: var(--bad); } td.proxy { color: var(--muted); font-style: italic; }
.panel h2 + table + h2 { margin-top: 14px; }
footer { color: var(--muted); font-size: 12px; }
`;
