/**
 * The Company Portal landing page (seed: "a landing page that informs them
 * of progress retrieving the certificates"): plain HTML, one stylesheet and
 * one small script, no framework and no build step. The script opens
 * /events (server-sent events) and redraws the list from each `state`
 * snapshot, so the page follows retrieval live without reloading.
 *
 * Every text from the agent (labels, details, notification titles and
 * bodies) reaches the DOM through textContent, or through escapeHtml on the
 * server, never as markup; and the Content-Security-Policy allows only this
 * script and stylesheet (by hash), so even a missed escape could not run.
 */
import { createHash } from 'node:crypto';

/** The exact words the page shows once everything assigned is installed. */
export const READY_TEXT = 'Ready to use in Outlook';

export const PORTAL_PAGE_STYLE = `
:root { color-scheme: light dark; font-family: -apple-system, system-ui, sans-serif; }
body { margin: 0 auto; max-width: 40rem; padding: 1rem; line-height: 1.4; }
header h1 { font-size: 1.4rem; margin: 0; }
header p { margin: .2rem 0 1rem; opacity: .75; }
#kf-focus { border-left: 4px solid #0a64c8; padding: .5rem 1rem; margin-bottom: 1rem; background: rgba(10,100,200,.08); }
#kf-focus h2 { font-size: 1.1rem; margin: 0 0 .3rem; }
#kf-focus p { margin: 0; white-space: pre-wrap; }
#kf-status { font-size: 1.2rem; font-weight: 600; margin: .5rem 0; }
#kf-status.ready { color: #0a7d32; }
#kf-status.failed { color: #b4231b; }
progress { width: 100%; height: 1rem; }
#kf-items { list-style: none; padding: 0; }
#kf-items li { display: grid; grid-template-columns: 1fr auto; gap: .1rem 1rem; padding: .6rem 0; border-bottom: 1px solid rgba(128,128,128,.3); }
#kf-items .kind { grid-column: 1 / 3; font-size: .8rem; opacity: .7; }
#kf-items .label { overflow-wrap: anywhere; }
#kf-items .state { font-weight: 600; }
#kf-items li.installed .state { color: #0a7d32; }
#kf-items li.failed .state, #kf-items .detail { color: #b4231b; }
#kf-items li.removed { opacity: .5; }
#kf-items .detail { grid-column: 1 / 3; margin: 0; overflow-wrap: anywhere; }
#kf-notifications { padding-left: 1.2rem; }
#kf-notifications p { margin: .2rem 0 .6rem; white-space: pre-wrap; }
#kf-connection { font-size: .9rem; opacity: .75; }
`;

export const PORTAL_PAGE_SCRIPT = `
'use strict';
(() => {
  const KIND = { trustedRoot: 'Trusted root certificate', signingCertificate: 'Signing certificate', encryptionCertificate: 'Encryption certificate', configuration: 'Outlook configuration' };
  const STATE = { waiting: 'Waiting', retrieving: 'Retrieving\\u2026', installed: 'Installed', failed: 'Failed', removed: 'Removed' };
  const READY = ${JSON.stringify(READY_TEXT)};
  const byId = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = String(text);
    return e;
  };

  function statusOf(s) {
    if (s.summary.ready) return ['ready', READY];
    if (s.summary.failed > 0) return ['failed', 'Some items could not be retrieved'];
    if (s.summary.total === 0) return ['waiting', 'Waiting for your organisation\\u2019s settings\\u2026'];
    return ['retrieving', 'Retrieving your certificates\\u2026'];
  }

  function render(s) {
    byId('kf-device').textContent = s.deviceName ? 'S/MIME certificates for Outlook on ' + s.deviceName : 'S/MIME certificates for Outlook';
    const [cls, text] = statusOf(s);
    const status = byId('kf-status');
    status.className = cls;
    status.textContent = text;
    const progress = byId('kf-progress');
    progress.max = Math.max(s.summary.total, 1);
    progress.value = s.summary.installed;
    byId('kf-count').textContent = s.summary.installed + ' of ' + s.summary.total + ' installed';

    byId('kf-items').replaceChildren(...s.items.map((item) => {
      const li = el('li', item.state);
      li.dataset.id = item.id;
      li.dataset.state = item.state;
      li.append(el('span', 'kind', KIND[item.kind] || item.kind), el('span', 'label', item.label), el('span', 'state', STATE[item.state] || item.state));
      if (item.detail) li.append(el('p', 'detail', item.detail));
      return li;
    }));

    byId('kf-notifications-section').hidden = s.notifications.length === 0;
    byId('kf-notifications').replaceChildren(...s.notifications.map((n) => {
      const li = el('li');
      li.dataset.id = n.id;
      const when = new Date(n.createdAt);
      li.append(el('strong', '', n.title), el('span', 'when', ' \\u00b7 ' + (isNaN(when) ? '' : when.toLocaleString())), el('p', '', n.body));
      return li;
    }));
    document.body.dataset.version = String(s.version);
  }

  const events = new EventSource('/events');
  events.addEventListener('state', (e) => {
    byId('kf-connection').textContent = '';
    render(JSON.parse(e.data));
  });
  events.addEventListener('error', () => {
    byId('kf-connection').textContent = 'Connection to the Company Portal lost. Reconnecting\\u2026';
  });
})();
`;

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page's Content-Security-Policy: its own script and style by hash, /events and /state on this origin, nothing else. */
export const PORTAL_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${cspHash(PORTAL_PAGE_SCRIPT)}`,
  `style-src ${cspHash(PORTAL_PAGE_STYLE)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What /open/{id} puts at the top: the notification the user followed, or word that it is gone. */
export type PortalFocus = { readonly title: string; readonly body: string } | 'missing';

export function portalPageHtml(focus?: PortalFocus): string {
  let focusHtml = '';
  if (focus === 'missing') {
    focusHtml = '<section id="kf-focus" role="status"><h2>This notification is no longer available</h2><p>Your certificates are shown below.</p></section>';
  } else if (focus !== undefined) {
    focusHtml = `<section id="kf-focus" role="status"><h2>${escapeHtml(focus.title)}</h2><p>${escapeHtml(focus.body)}</p></section>`;
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Company Portal</title>
<style>${PORTAL_PAGE_STYLE}</style>
</head>
<body>
<header><h1>Company Portal</h1><p id="kf-device">S/MIME certificates for Outlook</p></header>
${focusHtml}
<main>
<p id="kf-status" role="status" aria-live="polite">Connecting to the Company Portal\u2026</p>
<progress id="kf-progress" max="1" value="0"></progress>
<p id="kf-count"></p>
<ul id="kf-items" aria-label="Certificates and settings"></ul>
<section id="kf-notifications-section" hidden><h2>Notifications</h2><ul id="kf-notifications"></ul></section>
<p id="kf-connection" aria-live="polite"></p>
<noscript>This page needs JavaScript to follow the retrieval live; <a href="/state">the current state</a> is available as JSON.</noscript>
</main>
<script>${PORTAL_PAGE_SCRIPT}</script>
</body>
</html>
`;
}
