// A voice turn with openai-node's OpenAIRealtimeWS over wss:// against the
// simulator serving TLS (trusted through NODE_EXTRA_CA_CERTS): audio in,
// audio and transcript out, response.done with usage. It also mints an
// ephemeral key with client.realtime.clientSecrets.create.
// Env: SIM_BASE_URL (https://…/v1), SIM_API_KEY.
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { env, hardTimeout, speech } from './gw_common.mjs';

const baseURL = env('SIM_BASE_URL');
const apiKey = env('SIM_API_KEY');

const timeout = hardTimeout();
const client = new OpenAI({ apiKey, baseURL });
const secret = await client.realtime.clientSecrets.create({
  expires_after: { anchor: 'created_at', seconds: 600 },
  session: { type: 'realtime', model: 'gpt-realtime' },
});
if (!secret.value.startsWith('ek_')) throw new Error('bad client secret: ' + JSON.stringify(secret));

const rt = await OpenAIRealtimeWS.create(client, { model: 'gpt-realtime' });
let audioBytes = 0;
let transcript = '';
const types = [];
const done = new Promise((resolve, reject) => {
  rt.on('error', (err) => reject(err));
  rt.on('event', (ev) => {
    types.push(ev.type);
    if (ev.type === 'response.output_audio.delta') audioBytes += Buffer.from(ev.delta, 'base64').length;
    if (ev.type === 'response.output_audio_transcript.delta') transcript += ev.delta;
    if (ev.type === 'response.done') resolve(ev.response);
  });
});
await new Promise((resolve, reject) => { rt.socket.once('open', resolve); rt.socket.once('error', reject); });
rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['audio'], audio: { output: { voice: 'marin' } } } });

const send = (pcm) => {
  const step = 24 * 100; // 100 ms appends
  for (let i = 0; i < pcm.length; i += step) {
    rt.send({ type: 'input_audio_buffer.append', audio: Buffer.from(pcm.slice(i, i + step).buffer).toString('base64') });
  }
};
send(speech(1000));
send(new Int16Array(24 * 1000));

const response = await done;
clearTimeout(timeout);
rt.close();
console.log(JSON.stringify({
  status: response.status,
  usage: response.usage,
  audioBytes,
  transcript,
  ephemeral: secret.value.slice(0, 3),
  sawSpeechStarted: types.includes('input_audio_buffer.speech_started'),
  sawSessionUpdated: types.includes('session.updated'),
  first: types[0],
}));
