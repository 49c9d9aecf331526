// Drives voicegate's own pages in headless Chromium (Debian's chromium,
// through playwright-core) against `voicegate dev` at VG_BASE, with a fake
// microphone fed WAV_FILE (spoken words, then silence):
//   1. / : sign in with a name, talk over WebSocket, then over WebRTC; each
//      turn shows the transcript and a non-zero cost;
//   2. /admin/ : with ADMIN_KEY, the live WebRTC session is listed; its
//      Revoke session button ends it, and the demo page says so; the audit
//      trail filters by kind and pages newest first;
//   3. screenshots of both pages at desktop (1280×800) and phone (390×844)
//      width into SHOTS.
// Prints one JSON line with what it saw. Env: VG_BASE, ADMIN_KEY, WAV_FILE,
// SHOTS, CHROMIUM (path).
import { chromium } from 'playwright-core';
import { env, hardTimeout } from './gw_common.mjs';

const timer = hardTimeout(100000);
const base = env('VG_BASE');
const shots = env('SHOTS');
const desktop = { width: 1280, height: 800 };
const phone = { width: 390, height: 844 };
const T = 30000; // one step's bound; the whole run is bounded by hardTimeout

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--use-file-for-fake-audio-capture=' + env('WAV_FILE'),
  ],
});
const result = { turns: {}, screenshots: [] };
const log = (...a) => console.error(new Date().toISOString().slice(11, 23), ...a);

async function shot(page, name, size) {
  await page.setViewportSize(size);
  const path = `${shots}/${name}.png`;
  await page.screenshot({ path, fullPage: true });
  result.screenshots.push(path);
}

// turn starts a conversation over transport and waits until the page shows
// the user's words, the assistant's answer and a non-zero cost for it.
async function turn(page, transport) {
  const before = await page.textContent('#m-id');
  await page.check(`input[name="transport"][value="${transport}"]`);
  await page.click('#start');
  await page.waitForSelector(`body[data-connected="${transport}"]`, { timeout: T });
  log(transport, 'connected');
  await page.waitForFunction((prev) => {
    const id = document.getElementById('m-id').textContent;
    const said = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent).filter((t) => t && t !== '…');
    return id !== prev && id.startsWith('vgs_') && said('#transcript li.user .said').length > 0 &&
      said('#transcript li.assistant .said').length > 0 && Number(document.getElementById('m-cost').dataset.nanousd) > 0;
  }, before, { timeout: T, polling: 100 });
  const seen = await page.evaluate(() => ({
    sessionId: document.getElementById('m-id').textContent,
    user: [...document.querySelectorAll('#transcript li.user .said')].map((e) => e.textContent),
    assistant: [...document.querySelectorAll('#transcript li.assistant .said')].map((e) => e.textContent),
    cost: document.getElementById('m-cost').textContent,
    costNanoUSD: Number(document.getElementById('m-cost').dataset.nanousd),
    budget: document.getElementById('m-budget').textContent,
    time: document.getElementById('m-time').textContent,
    state: document.getElementById('m-state').textContent,
    notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent,
  }));
  log(transport, JSON.stringify(seen));
  result.turns[transport] = seen;
  return seen;
}

try {
  const ctx = await browser.newContext({ viewport: desktop });
  const demo = await ctx.newPage();
  demo.on('console', (m) => log('demo:', m.text()));
  demo.on('pageerror', (e) => log('demo error:', e.message));
  await demo.goto(base + '/');
  await demo.waitForSelector('body[data-mode="dev"]', { timeout: T });
  await demo.fill('#name', 'alice');
  await demo.click('#signin-form button[type="submit"]');
  await demo.waitForSelector('#talk:not([hidden])', { timeout: T });
  result.who = await demo.textContent('#who');

  await turn(demo, 'websocket');
  await demo.click('#stop');
  await demo.waitForSelector('#start:not([disabled])', { timeout: T });
  const rtc = await turn(demo, 'webrtc');

  const admin = await ctx.newPage();
  admin.on('console', (m) => log('admin:', m.text()));
  admin.on('pageerror', (e) => log('admin error:', e.message));
  await admin.goto(base + '/admin');
  await admin.fill('#admin-key', env('ADMIN_KEY'));
  await admin.press('#admin-key', 'Enter');
  const row = `#sessions tr[data-session-id="${rtc.sessionId}"]`;
  await admin.waitForSelector(row, { timeout: T });
  await admin.waitForSelector('#audit tbody tr[data-seq]', { timeout: T });
  await admin.waitForFunction(() => [...document.querySelectorAll('#chart-day rect.bar, #chart-user rect.bar')]
    .filter((r) => Number(r.getAttribute('height')) > 0 && Number(r.getAttribute('width')) > 1).length >= 2, null, { timeout: T, polling: 100 });
  result.adminRow = await admin.$eval(row, (tr) => [...tr.cells].map((c) => c.textContent));
  await shot(admin, 'admin-desktop', desktop);
  await shot(admin, 'admin-phone', phone);
  await admin.setViewportSize(desktop);

  // One click ends the session; the demo page then says so.
  await admin.click(`${row} button[data-action="revoke-session"]`);
  await demo.waitForFunction(() => !document.getElementById('notice').hidden &&
    /operator ended this conversation/.test(document.getElementById('notice').textContent), null, { timeout: T, polling: 100 });
  result.revokedNotice = await demo.textContent('#notice');
  result.revokedState = await demo.textContent('#m-state');
  await admin.waitForSelector(row, { state: 'detached', timeout: T });
  result.adminStatus = await admin.textContent('#action-status');

  // The audit trail: a kind filter, then newest-first pages of five.
  const auditRows = () => admin.$$eval('#audit tbody tr[data-seq]', (trs) => trs.map((tr) => ({ seq: Number(tr.dataset.seq), kind: tr.cells[1].textContent })));
  await admin.selectOption('#f-kind', 'mint');
  await admin.click('#audit-filter button[type="submit"]');
  await admin.waitForFunction(() => {
    const kinds = [...document.querySelectorAll('#audit tbody tr[data-seq]')].map((tr) => tr.cells[1].textContent);
    return kinds.length === 2 && kinds.every((k) => k === 'mint');
  }, null, { timeout: T, polling: 100 });
  await admin.selectOption('#f-kind', '');
  await admin.selectOption('#f-limit', '5');
  await admin.click('#audit-filter button[type="submit"]');
  await admin.waitForFunction(() => document.querySelectorAll('#audit tbody tr[data-seq]').length === 5 &&
    !document.getElementById('audit-older').disabled, null, { timeout: T, polling: 100 });
  const page1 = await auditRows();
  await admin.click('#audit-older');
  await admin.waitForFunction((last) => /^Page 2/.test(document.getElementById('audit-page').textContent) &&
    Number(document.querySelector('#audit tbody tr[data-seq]')?.dataset.seq) < last, page1[4].seq, { timeout: T, polling: 100 });
  const page2 = await auditRows();
  await admin.click('#audit-newer');
  await admin.waitForFunction((first) => /^Page 1/.test(document.getElementById('audit-page').textContent) &&
    Number(document.querySelector('#audit tbody tr[data-seq]')?.dataset.seq) === first, page1[0].seq, { timeout: T, polling: 100 });
  result.audit = { page1: page1.map((r) => r.seq), page2: page2.map((r) => r.seq) };
  await shot(demo, 'demo-desktop', desktop);
  await shot(demo, 'demo-phone', phone);
  result.ok = true;
} catch (e) {
  result.ok = false;
  result.error = String(e?.stack ?? e);
} finally {
  await browser.close();
}
clearTimeout(timer);
console.log(JSON.stringify(result));
