// Shared helpers of the e2e scripts (gw_*.mjs, sim_*.mjs): env parsing, the
// speech-like PCM16 generator, the hard timeout and the event dump.
import { appendFileSync } from 'node:fs';
import OpenAI from 'openai';

/** env returns the named environment variable or throws. */
export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(name + ' is required');
  return v;
}

/** speech returns ms milliseconds of speech-like PCM16 at 24 kHz. */
export function speech(ms) {
  const n = 24 * ms;
  const pcm = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / 24000;
    const e = 0.5 + 0.5 * Math.abs(Math.sin(2 * Math.PI * 2 * t));
    pcm[i] = Math.round(e * 0.4 * Math.sin(2 * Math.PI * 200 * t) * 32767);
  }
  return pcm;
}

/** hardTimeout exits the process with status 2 after ms. */
export function hardTimeout(ms = 20000) {
  return setTimeout(() => { console.error('timeout'); process.exit(2); }, ms);
}

/** dump appends one received body or event as a JSON line to DUMP_FILE. */
export function dump(kind, body) {
  const file = process.env.DUMP_FILE;
  if (file) appendFileSync(file, JSON.stringify({ kind, body }) + '\n');
}

/**
 * mint creates a client secret at the gateway with the app key (openai-node).
 * extra session fields are locked by the gateway for the session's life, so
 * a client that repeats them in session.update must mint them identically.
 * body adds top-level fields of the request: voicegate's extensions
 * (`limits`, `user`, `tier`).
 */
export async function mint(extra = {}, body = {}) {
  const client = new OpenAI({ apiKey: env('VG_APP_KEY'), baseURL: env('VG_BASE_URL') });
  const secret = await client.realtime.clientSecrets.create({
    expires_after: { anchor: 'created_at', seconds: 600 },
    session: { type: 'realtime', model: 'gpt-realtime', ...extra },
    ...body,
  });
  dump('mint', secret);
  if (!secret.value?.startsWith('ek_vg_')) throw new Error('unexpected client secret shape');
  return secret;
}
