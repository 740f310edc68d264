// The live status page served at GET / on the admin listener: one self-contained HTML document (no
// build step, no CDN) that polls status.json every second and draws its charts as inline SVG.
// Its parts: the style sheet (status-page-style.ts), the markup (status-page-body.ts) and the
// script (status-page-charts.ts, then status-page-render.ts).
//
// Every value from status.json is written with textContent or as an SVG path, never as markup: app ids
// come from request paths, so they are untrusted. The Content-Security-Policy allows exactly the one
// inline script and style below (by hash) and fetches to this origin only.

import { createHash } from 'node:crypto';
import { BODY } from './status-page-body.js';
import { CHARTS_SCRIPT } from './status-page-charts.js';
import { RENDER_SCRIPT } from './status-page-render.js';
import { STYLE } from './status-page-style.js';

const SCRIPT = CHARTS_SCRIPT + RENDER_SCRIPT;

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
