// A voice turn with openai-node's OpenAIRealtimeWS over wss:// through
// voicegate (TLS trusted via NODE_EXTRA_CA_CERTS), with a token minted by
// client.realtime.clientSecrets.create using an app key.
// Env: VG_BASE_URL (https://…/v1), VG_APP_KEY, DUMP_FILE.
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { dump, env, hardTimeout, mint, speech } from './gw_common.mjs';

const timer = hardTimeout();
const secret = await mint();
const client = new OpenAI({ apiKey: secret.value, baseURL: env('VG_BASE_URL') });
const rt = await OpenAIRealtimeWS.create(client, { model: 'gpt-realtime' });
let audioBytes = 0;
let transcript = '';
const types = [];
const done = new Promise((resolve, reject) => {
  rt.on('error', (err) => reject(err));
  rt.on('event', (ev) => {
    dump('event', ev);
    types.push(ev.type);
    if (ev.type === 'response.output_audio.delta') audioBytes += Buffer.from(ev.delta, 'base64').length;
    if (ev.type === 'response.output_audio_transcript.delta') transcript += ev.delta;
    if (ev.type === 'response.done') resolve(ev.response);
  });
});
await new Promise((resolve, reject) => { rt.socket.once('open', resolve); rt.socket.once('error', reject); });
rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['audio'], audio: { output: { voice: 'marin' } } } });
const step = 24 * 100; // 100 ms appends
for (const pcm of [speech(1000), new Int16Array(24 * 1000)]) {
  for (let i = 0; i < pcm.length; i += step) {
    rt.send({ type: 'input_audio_buffer.append', audio: Buffer.from(pcm.slice(i, i + step).buffer).toString('base64') });
  }
}
const response = await done;
clearTimeout(timer);
rt.close();
console.log(JSON.stringify({
  status: response.status, usage: response.usage, responseId: response.id, audioBytes, transcript,
  sawSpeechStarted: types.includes('input_audio_buffer.speech_started'),
}));
