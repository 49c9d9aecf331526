// An Agents SDK handoff through voicegate: a triage agent hands off to a
// billing agent (the SDK sends the billing agent's instructions and tools in
// a session.update); the mint pinned both agents, so the switch applies.
// Env: VG_WS_URL, VG_TOKEN, NODE_EXTRA_CA_CERTS.
import { RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';
import { env, hardTimeout } from './gw_common.mjs';

const timer = hardTimeout(30000);
const billing = new RealtimeAgent({ name: 'billing', instructions: 'You handle billing questions.' });
const triage = new RealtimeAgent({ name: 'triage', instructions: 'You triage the caller.', handoffs: [billing] });
const session = new RealtimeSession(triage);
const errors = [];
const dones = [];
let handedOff = '';
let waiter = null;
session.on('error', (e) => errors.push(JSON.stringify(e?.error?.error ?? e?.error ?? e)));
session.on('agent_handoff', (_ctx, _from, to) => { handedOff = to?.name ?? ''; });
session.on('transport_event', (ev) => {
  if (ev.type === 'response.done') {
    dones.push({ id: ev.response.id, output: ev.response.output?.map((o) => o.type) });
    if (waiter) waiter();
  }
});
const nextDone = (n) => new Promise((resolve) => {
  waiter = () => { if (dones.length >= n) { waiter = null; resolve(); } };
  waiter();
});
await session.connect({ apiKey: env('VG_TOKEN'), url: env('VG_WS_URL') });
session.sendMessage('Please transfer to billing.');
await nextDone(2);
clearTimeout(timer);
session.close();
console.log(JSON.stringify({ errors, dones, handedOff }));
