// The page of the WebRTC browser test: the code a web app writes with
// @openai/agents-realtime, its default transport (WebRTC in a browser)
// pointed at voicegate. The test reads window.__result.
import { RealtimeAgent, RealtimeSession } from '@openai/agents-realtime';

const q = new URLSearchParams(location.search);
const types = [];
const errors = [];
const agent = new RealtimeAgent({ name: 'assistant', instructions: 'Be brief.' });
const session = new RealtimeSession(agent, { model: q.get('model') });
session.on('error', (e) => errors.push(JSON.stringify(e?.error ?? e)));
session.on('transport_event', (ev) => {
  types.push(ev.type);
  if (ev.type === 'response.done' && !window.__result) {
    const result = {
      ok: true, status: ev.response.status, responseId: ev.response.id, usage: ev.response.usage,
      transport: session.transport.constructor.name, callId: session.transport.callId, types, errors,
    };
    // Leave as an app would when the conversation is over.
    session.close();
    window.__result = result;
  }
});
try {
  await session.connect({ apiKey: q.get('token'), url: q.get('base') + '/v1/realtime/calls' });
} catch (e) {
  window.__result = { ok: false, error: String(e?.message ?? e), types, errors };
}
