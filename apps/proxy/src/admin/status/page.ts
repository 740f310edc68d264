// The live status page served at GET / on the admin listener: one self-contained HTML document (no
// build step, no CDN) that polls status.json every second and draws its charts as inline SVG.
// Its parts, each a file of its own beside this one: the markup (page.html), the style sheet
// (page.css) and the script (charts.js, then render.js), inlined here.
//
// Every value from status.json is written with textContent or as an SVG path, never as markup: app ids
// come from request paths, so they are untrusted. The Content-Security-Policy allows exactly the one
// inline script and style below (by hash) and fetches to this origin only.

import { createHash } from 'node:crypto';
import { asset } from './assets.js';

const STYLE = asset('./page.css');
const SCRIPT = asset('./charts.js') + asset('./render.js');

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** page.html with its empty `<style>` and `<script>` filled (a function: no `$` pattern applies). */
function fill(markup: string): string {
  const html = markup
    .replace('<style></style>', () => `<style>${STYLE}</style>`)
    .replace('<script></script>', () => `<script>${SCRIPT}</script>`);
  if (html.length !== markup.length + STYLE.length + SCRIPT.length)
    throw new Error('page.html must hold one empty <style></style> and one empty <script></script>');
  return html;
}

export const statusPage = {
  html: fill(asset('./page.html')),
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
