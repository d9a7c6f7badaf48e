/**
 * The Company Portal landing page in a real browser (headless Chromium
 * driven by playwright-core): the test drives the agent's PortalProgress and
 * watches the open page follow it live (no reload), count installed items,
 * show a failure's detail and end on "Ready to use in Outlook"; labels,
 * details and notifications with markup in them are shown as text; and
 * /open/{id} puts the notification the user followed at the top. The HTTP
 * surface (JSON state, headers, refusals) is checked without the browser.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PortalProgress, startPortal, type PortalItem, type PortalServer, type PortalSnapshot } from '../../src/device/portal.ts';
import { READY_TEXT } from '../../src/device/portal-page.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}: the landing page cannot be tested in a browser here`;

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    })
      .on('error', reject)
      .end();
  });
}

/**
 * Waits until the element's text is exactly `text`. Through a locator, which
 * runs in Playwright's own world: a string predicate would be eval'd in the
 * page, which the page's CSP rightly forbids.
 */
async function waitText(page: Page, selector: string, text: string): Promise<void> {
  const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  await page.locator(selector).filter({ hasText: exact }).first().waitFor({ timeout: 10_000 });
}

async function itemRows(page: Page): Promise<{ id: string; state: string; kind: string; label: string; status: string; detail: string | null }[]> {
  return (await page.evaluate(`[...document.querySelectorAll('#kf-items li')].map((li) => ({
    id: li.dataset.id, state: li.dataset.state,
    kind: li.querySelector('.kind').textContent, label: li.querySelector('.label').textContent,
    status: li.querySelector('.state').textContent, detail: li.querySelector('.detail')?.textContent ?? null,
  }))`)) as { id: string; state: string; kind: string; label: string; status: string; detail: string | null }[];
}

const assignment: PortalItem[] = [
  { id: 'root', kind: 'trustedRoot', label: 'Contoso Root CA', state: 'waiting' },
  { id: 'cfg', kind: 'configuration', label: 'Outlook for iOS', state: 'waiting' },
  { id: 'sign', kind: 'signingCertificate', label: 'alice@contoso.example (signing)', state: 'waiting' },
  { id: 'enc-2023', kind: 'encryptionCertificate', label: 'alice@contoso.example (2023)', state: 'waiting' },
  { id: 'enc-2025', kind: 'encryptionCertificate', label: 'alice@contoso.example (2025)', state: 'waiting' },
];

describe('Company Portal landing page', { skip, timeout: 120_000 }, () => {
  let progress: PortalProgress;
  let portal: PortalServer;
  let profile: string;
  let context: BrowserContext;

  before(async () => {
    progress = new PortalProgress({ deviceName: 'Alice’s iPhone' });
    portal = await startPortal({ progress });
    profile = mkdtempSync(join(tmpdir(), 'kf-portal-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await context?.close();
    await portal?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  });

  it('serves the state as JSON, the page with a strict CSP, and refuses what it does not serve', async () => {
    const state = await get(`${portal.url}/state`);
    assert.equal(state.status, 200);
    assert.equal(state.headers['content-type'], 'application/json; charset=utf-8');
    const snapshot = JSON.parse(state.body) as PortalSnapshot;
    assert.equal(snapshot.deviceName, 'Alice’s iPhone');
    assert.deepEqual(snapshot.summary, { total: 0, installed: 0, failed: 0, ready: false });

    const page = await get(`${portal.url}/`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+=*'; /);
    assert.equal((await get(`${portal.url}/`, {}, 'POST')).status, 405);
    assert.equal((await get(`${portal.url}/nothing-here`)).status, 404);
    // DNS rebinding: a page on another origin that resolves to 127.0.0.1 sends its own Host.
    assert.equal((await get(`${portal.url}/state`, { host: `attacker.example:${portal.port}` })).status, 421);
  });

  it('follows retrieval live and ends on "Ready to use in Outlook"', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${portal.url}/`);
      await waitText(page, '#kf-status', 'Waiting for your organisation’s settings…');
      await waitText(page, '#kf-device', 'S/MIME certificates for Outlook on Alice’s iPhone');
      // A reload would lose this: the page must update in place.
      await page.evaluate('window.kfMarker = 42');

      progress.upsertItems(assignment);
      await waitText(page, '#kf-count', '0 of 5 installed');
      await waitText(page, '#kf-status', 'Retrieving your certificates…');
      const rows = await itemRows(page);
      assert.deepEqual(rows.map((r) => r.id), ['root', 'sign', 'enc-2023', 'enc-2025', 'cfg'], 'roots, signing, encryption, configuration');
      assert.deepEqual(rows[1], { id: 'sign', state: 'waiting', kind: 'Signing certificate', label: 'alice@contoso.example (signing)', status: 'Waiting', detail: null });

      const ids = ['root', 'sign', 'enc-2023', 'enc-2025', 'cfg'];
      for (const [n, id] of ids.entries()) {
        const item = assignment.find((i) => i.id === id)!;
        progress.upsertItem({ ...item, state: 'retrieving' });
        await page.waitForSelector(`#kf-items li[data-id="${id}"][data-state="retrieving"]`, { timeout: 10_000 });
        assert.equal((await itemRows(page)).find((r) => r.id === id)?.status, 'Retrieving…');
        assert.notEqual(await page.textContent('#kf-status'), READY_TEXT);
        progress.upsertItem({ ...item, state: 'installed' });
        await waitText(page, '#kf-count', `${n + 1} of 5 installed`);
        assert.equal(await page.evaluate(`document.getElementById('kf-progress').value`), n + 1);
      }
      await waitText(page, '#kf-status', READY_TEXT);
      assert.deepEqual((await itemRows(page)).map((r) => r.status), ['Installed', 'Installed', 'Installed', 'Installed', 'Installed']);
      assert.equal(await page.evaluate('window.kfMarker'), 42, 'the page was never reloaded');
    } finally {
      await page.close();
    }
  });

  it('a failure shows the item\'s detail; retrying it brings the page back to ready', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${portal.url}/`);
      await waitText(page, '#kf-status', READY_TEXT);
      progress.upsertItem({ id: 'enc-2025', kind: 'encryptionCertificate', label: 'alice@contoso.example (2025)', state: 'failed', detail: 'The delivery could not be opened with this device\'s key (KF_CMS_DECRYPT_FAILED)' });
      await waitText(page, '#kf-status', 'Some items could not be retrieved');
      await waitText(page, '#kf-items li[data-id="enc-2025"] .detail', 'The delivery could not be opened with this device\'s key (KF_CMS_DECRYPT_FAILED)');
      await waitText(page, '#kf-count', '4 of 5 installed');

      progress.upsertItem({ id: 'enc-2025', kind: 'encryptionCertificate', label: 'alice@contoso.example (2025)', state: 'installed' });
      await waitText(page, '#kf-status', READY_TEXT);
      assert.equal(await page.$('#kf-items .detail'), null);
    } finally {
      await page.close();
    }
  });

  it('shows labels, details and notifications that contain markup as text', async () => {
    const hostile = '<script>window.kfPwned = 1</script><img src=x onerror="window.kfPwned = 2">';
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      progress.addNotification({ id: 'ntf-evil', title: `Title ${hostile}`, body: `Body ${hostile}` });
      await page.goto(`${portal.url}/open/ntf-evil`);
      assert.equal(await page.textContent('#kf-focus h2'), `Title ${hostile}`);
      assert.equal(await page.textContent('#kf-focus p'), `Body ${hostile}`);

      progress.upsertItem({ id: 'evil', kind: 'signingCertificate', label: hostile, state: 'failed', detail: `<b>${hostile}</b>` });
      await waitText(page, '#kf-items li[data-id="evil"] .label', hostile);
      await waitText(page, '#kf-items li[data-id="evil"] .detail', `<b>${hostile}</b>`);
      await waitText(page, '#kf-notifications li[data-id="ntf-evil"] strong', `Title ${hostile}`);
      await page.waitForTimeout(200);
      assert.equal(await page.evaluate('window.kfPwned'), undefined);
      assert.equal(await page.evaluate(`document.querySelectorAll('main script, main img, main b, #kf-focus script, #kf-focus img').length`), 0);
      assert.deepEqual(errors, []);
    } finally {
      progress.removeItem('evil');
      await page.close();
    }
  });

  it('/open/{id} shows the notification the user followed at the top; an unknown one says so', async () => {
    progress.addNotification({
      id: 'ntf-1',
      title: 'Set up S/MIME for Outlook',
      body: 'Open the Company Portal to retrieve your S/MIME certificates.',
      createdAt: '2025-03-01T09:00:00.000Z',
    });
    const page = await context.newPage();
    try {
      const res = await page.goto(`${portal.url}/open/ntf-1`);
      assert.equal(res?.status(), 200);
      assert.equal(await page.textContent('#kf-focus h2'), 'Set up S/MIME for Outlook');
      assert.equal(await page.textContent('#kf-focus p'), 'Open the Company Portal to retrieve your S/MIME certificates.');
      assert.equal(await page.evaluate(`document.querySelector('#kf-focus').compareDocumentPosition(document.querySelector('main')) & Node.DOCUMENT_POSITION_FOLLOWING`), 4, 'the notification comes before the list');
      await waitText(page, '#kf-status', READY_TEXT);
      await waitText(page, '#kf-notifications li[data-id="ntf-1"] strong', 'Set up S/MIME for Outlook');

      const missing = await page.goto(`${portal.url}/open/ntf-gone`);
      assert.equal(missing?.status(), 404);
      assert.equal(await page.textContent('#kf-focus h2'), 'This notification is no longer available');
      await waitText(page, '#kf-status', READY_TEXT);
    } finally {
      await page.close();
    }
  });

  it('a page open while the server stops says it is reconnecting', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${portal.url}/`);
      await waitText(page, '#kf-status', READY_TEXT);
      await portal.close();
      await waitText(page, '#kf-connection', 'Connection to the Company Portal lost. Reconnecting…');
    } finally {
      await page.close();
    }
  });
});

describe('startPortal /events without a browser', { timeout: 30_000 }, () => {
  it('sends the state at once, each change, and heartbeats; a page that stops reading gets only the latest state', async () => {
    const progress = new PortalProgress();
    const portal = await startPortal({ progress, heartbeatMs: 30 });
    try {
      let text = '';
      let response: IncomingMessage | undefined;
      const req = request(`${portal.url}/events`, (res) => {
        response = res;
        res.setEncoding('utf8').on('data', (s: string) => (text += s));
      }).end();
      const until = async (what: string, check: () => boolean): Promise<void> => {
        for (const end = Date.now() + 5_000; !check(); await sleep(5)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      };
      const states = (): PortalSnapshot[] => [...text.matchAll(/^event: state\ndata: (.*)\n\n/gm)].map((m) => JSON.parse(m[1]!) as PortalSnapshot);
      await until('the first state', () => states().length === 1);
      assert.equal(response?.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(states()[0]!.version, 0);
      progress.upsertItems(assignment);
      await until('the change', () => states().length === 2);
      assert.equal(states()[1]!.summary.total, 5);
      await until('a heartbeat', () => text.includes(': heartbeat\n\n'));

      // Stop reading; make many large changes; read again: far fewer states than changes, the last one current.
      response!.pause();
      for (let i = 0; i < 300; i++) {
        progress.upsertItem({ id: 'big', kind: 'configuration', label: `${i} ${'x'.repeat(60_000)}`, state: 'waiting' });
        if (i % 30 === 0) await sleep(1);
      }
      const before = states().length;
      response!.resume();
      await until('the latest state', () => states().at(-1)?.version === progress.snapshot().version);
      assert.ok(states().length - before < 300, `a paused page got all ${states().length - before} states`);
      req.destroy();
    } finally {
      await portal.close();
    }
  });
});

describe('PortalProgress', () => {
  it('pushes each change once, with a growing version; an unchanged upsert pushes nothing', () => {
    const p = new PortalProgress();
    const seen: PortalSnapshot[] = [];
    const unsubscribe = p.subscribe((s) => seen.push(s));
    p.upsertItems(assignment);
    p.upsertItem(assignment[0]!);
    p.upsertItem({ ...assignment[0]!, state: 'installed' });
    assert.deepEqual(seen.map((s) => s.version), [1, 2]);
    assert.deepEqual(seen[1]!.summary, { total: 5, installed: 1, failed: 0, ready: false });
    p.upsertItems(assignment.map((i) => ({ ...i, state: 'installed' as const })));
    assert.equal(p.snapshot().summary.ready, true);
    p.upsertItem({ ...assignment[1]!, state: 'removed' });
    assert.deepEqual(p.snapshot().summary, { total: 4, installed: 4, failed: 0, ready: true }, 'removed items do not count');
    unsubscribe();
    p.removeItem('root');
    assert.equal(seen.length, 4);
  });

  it('keeps the newest notifications first, replaces by id, and bounds the list', () => {
    const p = new PortalProgress();
    for (let i = 0; i < 60; i++) p.addNotification({ id: `n${i}`, title: 't', body: 'b', createdAt: new Date(Date.UTC(2025, 0, 1, 0, i)) });
    p.addNotification({ id: 'n59', title: 'again', body: 'b', createdAt: '2025-01-01T00:59:00Z' });
    const ids = p.snapshot().notifications.map((n) => n.id);
    assert.equal(ids.length, 50);
    assert.deepEqual(ids.slice(0, 2), ['n59', 'n58']);
    assert.equal(p.getNotification('n59')?.title, 'again');
    assert.equal(p.getNotification('n0'), undefined);
  });
});
