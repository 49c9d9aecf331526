// The code anyone writes with @openai/agents-realtime — an agent with
// instructions and a tool, a RealtimeSession with its defaults — against
// voicegate, unchanged but for the URL and the key. The Go test mints (plain,
// or with pinned instructions) and passes the token.
// Env: VG_WS_URL (wss://…/v1/realtime), VG_TOKEN, DUMP_FILE.
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents-realtime';
import { z } from 'zod';
import { dump, env, hardTimeout, speech } from './gw_common.mjs';

const timer = hardTimeout(30000);
const toolCalls = [];
const getWeather = tool({
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => { toolCalls.push(city); return `Sunny in ${city}.`; },
});
const agent = new RealtimeAgent({
  name: 'assistant',
  instructions: 'You are a helpful weather assistant. Answer briefly.',
  tools: [getWeather],
});
const session = new RealtimeSession(agent);

const errors = [];
const events = [];
const dones = [];
let waiter = null;
session.on('error', (e) => errors.push(JSON.stringify(e?.error?.error ?? e?.error ?? e)));
session.on('transport_event', (ev) => {
  dump('event', ev);
  events.push(JSON.stringify(ev));
  if (ev.type === 'response.done') {
    dones.push({ id: ev.response.id, status: ev.response.status, output: ev.response.output?.map((o) => o.type) });
    if (waiter) waiter();
  }
});
const nextDone = (n) => new Promise((resolve) => {
  waiter = () => { if (dones.length >= n) { waiter = null; resolve(); } };
  waiter();
});

await session.connect({ apiKey: env('VG_TOKEN'), url: env('VG_WS_URL') });

// A spoken turn: server turn detection (the SDK's default) answers it.
const step = 24 * 50;
for (const pcm of [speech(1000), new Int16Array(24 * 1000)]) {
  for (let i = 0; i < pcm.length; i += step) session.sendAudio(pcm.slice(i, i + step).buffer);
}
await nextDone(1);

// A tool call: the model calls get_weather, the SDK runs it and asks for
// the answer.
session.sendMessage('What is the weather in Paris? Use get_weather.');
await nextDone(3);
clearTimeout(timer);
session.close();
console.log(JSON.stringify({ errors, toolCalls, dones, sawText: events.join('\n') }));
