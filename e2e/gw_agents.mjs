// A voice turn with @openai/agents-realtime over WebSocket through voicegate:
// openai-node mints a token with an app key, RealtimeSession connects with it.
// Env: VG_BASE_URL (http(s)://…/v1), VG_WS_URL (ws(s)://…/v1/realtime),
// VG_APP_KEY, DUMP_FILE (every received body/event, one JSON line each).
import { RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { dump, env, hardTimeout, mint, speech } from './gw_common.mjs';

const timer = hardTimeout();
// The gateway locks instructions at mint; RealtimeSession repeats the agent's
// instructions, tracing ('auto') and tools ([]) in its session.update, so mint
// them identically.
const instructions = 'Answer briefly.';
const secret = await mint({ instructions, tracing: 'auto', tools: [] });
const agent = new RealtimeAgent({ name: 'gw', instructions });
const session = new RealtimeSession(agent, { transport: 'websocket', model: 'gpt-realtime' });
let audioBytes = 0;
let transcript = '';
const types = [];
const done = new Promise((resolve, reject) => {
  session.on('audio', (ev) => { audioBytes += ev.data.byteLength; });
  session.on('error', (ev) => reject(new Error('session error: ' + JSON.stringify(ev.error?.error ?? ev.error ?? ev))));
  session.on('transport_event', (ev) => {
    dump('event', ev);
    types.push(ev.type);
    if (ev.type === 'response.output_audio_transcript.delta') transcript += ev.delta;
    if (ev.type === 'response.done') resolve(ev.response);
  });
});
await session.connect({ apiKey: secret.value, url: env('VG_WS_URL') });
const step = 24 * 50; // 50 ms appends
for (const pcm of [speech(1000), new Int16Array(24 * 1000)]) {
  for (let i = 0; i < pcm.length; i += step) session.sendAudio(pcm.slice(i, i + step).buffer);
}
const response = await done;
clearTimeout(timer);
session.close();
console.log(JSON.stringify({
  status: response.status, usage: response.usage, responseId: response.id, audioBytes, transcript,
  sawSpeechStarted: types.includes('input_audio_buffer.speech_started'),
}));
