// Drives headless Chromium (Debian's chromium, through playwright-core) with
// a fake microphone fed WAV_FILE to a page served on PAGE_PORT — another
// origin than voicegate's VG_BASE — that talks to voicegate over WebRTC with
// @openai/agents-realtime. Prints the page's result as one JSON line.
// Env: VG_BASE, VG_TOKEN, VG_MODEL, WAV_FILE, PAGE_PORT, CHROMIUM (path).
import http from 'node:http';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { env, hardTimeout } from './gw_common.mjs';

const timer = hardTimeout(60000);
const out = await build({
  entryPoints: [new URL('./browser/webrtc_page.js', import.meta.url).pathname],
  bundle: true, write: false, format: 'esm', platform: 'browser', logLevel: 'error',
});
const js = out.outputFiles[0].text;
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/app.js')) {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(js);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><html><head><meta charset="utf-8"><title>voicegate webrtc</title></head><body><script type="module" src="/app.js"></script></body></html>');
});
await new Promise((resolve) => server.listen(Number(env('PAGE_PORT')), '127.0.0.1', resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--use-file-for-fake-audio-capture=' + env('WAV_FILE'),
  ],
});
let result;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error('page:', m.text()));
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const url = new URL(`http://127.0.0.1:${env('PAGE_PORT')}/`);
  url.searchParams.set('base', env('VG_BASE'));
  url.searchParams.set('token', env('VG_TOKEN'));
  url.searchParams.set('model', env('VG_MODEL'));
  await page.goto(url.toString());
  const handle = await page.waitForFunction(() => window.__result, null, { timeout: 45000 });
  result = await handle.jsonValue();
} finally {
  await browser.close();
  server.close();
}
clearTimeout(timer);
console.log(JSON.stringify(result));
