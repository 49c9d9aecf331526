// A voice turn with @openai/agents-realtime over WebSocket against the
// simulator: audio in, audio and transcript out, response.done with usage.
// Env: SIM_WS_URL (ws://…/v1/realtime), SIM_API_KEY.
import { RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { env, hardTimeout, speech } from './gw_common.mjs';

const url = env('SIM_WS_URL');
const apiKey = env('SIM_API_KEY');

const timeout = hardTimeout();
const agent = new RealtimeAgent({ name: 'sim', instructions: 'Answer briefly.' });
const session = new RealtimeSession(agent, { transport: 'websocket', model: 'gpt-realtime' });

let audioBytes = 0;
let transcript = '';
const types = [];
const done = new Promise((resolve, reject) => {
  session.on('audio', (ev) => { audioBytes += ev.data.byteLength; });
  session.on('error', (ev) => reject(new Error('session error: ' + JSON.stringify(ev.error?.error ?? ev.error ?? ev))));
  session.on('transport_event', (ev) => {
    types.push(ev.type);
    if (ev.type === 'response.output_audio_transcript.delta') transcript += ev.delta;
    if (ev.type === 'response.done') resolve(ev.response);
  });
});

await session.connect({ apiKey, url });
const pcm = speech(1000);
const step = 24 * 50; // 50 ms appends
for (let i = 0; i < pcm.length; i += step) session.sendAudio(pcm.slice(i, i + step).buffer);
const quiet = new Int16Array(24 * 1000);
for (let i = 0; i < quiet.length; i += step) session.sendAudio(quiet.slice(i, i + step).buffer);

const response = await done;
clearTimeout(timeout);
session.close();
const result = {
  status: response.status,
  usage: response.usage,
  audioBytes,
  transcript,
  sawSpeechStarted: types.includes('input_audio_buffer.speech_started'),
  sawCommitted: types.includes('input_audio_buffer.committed'),
};
console.log(JSON.stringify(result));
