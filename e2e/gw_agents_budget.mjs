// Spoken turns with @openai/agents-realtime over WebSocket through voicegate,
// on a $0.05 session budget, until the gateway stops the session. Server VAD
// (the SDK's default turn detection) drives every turn: the client only
// streams audio, a loud segment then silence, and never sends
// response.create or input_audio_buffer.commit.
// Env: VG_BASE_URL (http(s)://…/v1), VG_WS_URL (ws(s)://…/v1/realtime),
// VG_APP_KEY, DUMP_FILE (every received body/event, one JSON line each).
// Prints one JSON line: the responses (id, status, usage), every error event,
// SDK-level errors, the close code and reason, and how the loop ended.
import { RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { dump, env, hardTimeout, mint, speech } from './gw_common.mjs';

const BUDGET_USD = 0.05;
const MAX_TURNS = 60; // a cap far above what $0.05 buys: hitting it fails the test
const TURN_TIMEOUT_MS = 10000; // a deadline, not a synchronization: turns take milliseconds
const CLOSE_TIMEOUT_MS = 5000;

const timer = hardTimeout(50000);
// The gateway locks instructions, tracing and tools at mint; RealtimeSession
// repeats the agent's instructions, tracing ('auto') and tools ([]) in its
// session.update, so mint them identically.
const instructions = 'Answer briefly.';
const secret = await mint({ instructions, tracing: 'auto', tools: [] }, { limits: { budget_usd: BUDGET_USD } });
const model = secret.session.model;
const agent = new RealtimeAgent({ name: 'budget', instructions });
const session = new RealtimeSession(agent, { transport: 'websocket', model });

const responses = []; // every response.done: id, status, status_details, usage
const errors = []; // every server error event, with how many responses preceded it
const sdkErrors = []; // errors the SDK raised that are not server error events
let close = null; // { code, reason } of the socket's close
const waiters = new Set();
const notify = () => { for (const w of [...waiters]) w(); };

/** until resolves true once pred() holds (checked on every event), false after ms. */
function until(pred, ms) {
  return new Promise((resolve) => {
    const check = () => { if (pred()) { finish(); resolve(true); } };
    const t = setTimeout(() => { finish(); resolve(false); }, ms);
    const finish = () => { clearTimeout(t); waiters.delete(check); };
    waiters.add(check);
    check();
  });
}

const budgetExceeded = () => errors.some((e) => e.code === 'budget_exceeded');
const ended = () => close !== null || budgetExceeded() || sdkErrors.length > 0;

session.on('transport_event', (ev) => {
  dump('event', ev);
  if (ev.type === 'response.done') {
    const r = ev.response;
    responses.push({ id: r.id, status: r.status, statusDetails: r.status_details ?? null, usage: r.usage });
  } else if (ev.type === 'error') {
    errors.push({
      type: ev.error?.type ?? null, code: ev.error?.code ?? null, message: ev.error?.message ?? null,
      eventId: ev.error?.event_id ?? null, afterResponses: responses.length,
    });
  }
  notify();
});
session.on('error', (ev) => {
  // Server error events arrive here too ({error: <the event>}): recorded above.
  if (ev.error?.type === 'error' && ev.error?.error) return;
  sdkErrors.push(String(ev.error?.message ?? JSON.stringify(ev.error ?? ev)));
  notify();
});

await session.connect({ apiKey: secret.value, url: env('VG_WS_URL') });
// Observe the close of the SDK's socket (a ws WebSocket in Node).
session.transport.connectionState.websocket.addEventListener('close', (ev) => {
  close = { code: ev.code, reason: String(ev.reason ?? '') };
  notify();
});

const step = 24 * 50; // 50 ms appends
let turns = 0;
let stalled = '';
while (!ended() && turns < MAX_TURNS) {
  turns++;
  const before = responses.length;
  // Sent in one synchronous burst: no event (and so no close) can land
  // between two appends, and the loop stops appending once the session ended.
  for (const pcm of [speech(1000), new Int16Array(24 * 1000)]) {
    for (let i = 0; i < pcm.length && !ended(); i += step) session.sendAudio(pcm.slice(i, i + step).buffer);
  }
  if (!(await until(() => responses.length > before || ended(), TURN_TIMEOUT_MS))) {
    stalled = `turn ${turns}: neither response.done nor the end within ${TURN_TIMEOUT_MS} ms`;
    break;
  }
}
const capHit = !ended() && !stalled;
if (!stalled && !capHit && close === null) {
  // The gateway closes right after its budget_exceeded error event.
  if (!(await until(() => close !== null, CLOSE_TIMEOUT_MS))) stalled = `no close within ${CLOSE_TIMEOUT_MS} ms of the end`;
}
clearTimeout(timer);
if (close === null) session.close();
console.log(JSON.stringify({
  sessionId: secret.voicegate?.session_id ?? secret.session.id, model, turns, responses, errors, sdkErrors, close, capHit, stalled,
}));
