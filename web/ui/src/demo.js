// The demo page at /: sign in, mint a session token through voicegate,
// talk to the model with the microphone over WebRTC or WebSocket with
// @openai/agents-realtime, and watch the session's usage, cost and what is
// left of its budget and time. web/ui/build.mjs bundles this file into
// web/static/demo.js, which voicegate embeds.
import { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebSocket } from '@openai/agents-realtime';
import { capture, Player } from './audio.js';
import { refusalSentence, connectError, money, duration } from './words.js';

const MODEL = 'gpt-realtime';
const INSTRUCTIONS = 'You are a friendly voice assistant. Answer briefly.';
const TRANSCRIBE = { model: 'gpt-4o-mini-transcribe' };
// What the page asks voicegate to pin at mint; the Agents SDK repeats the
// agent's instructions, its tools and tracing in its session.update, so the
// mint names the same values.
const SESSION = {
  type: 'realtime', model: MODEL, instructions: INSTRUCTIONS, tracing: 'auto', tools: [],
  audio: { input: { transcription: TRANSCRIBE } },
};

const $ = (id) => document.getElementById(id);
const ui = {
  signin: $('signin'), form: $('signin-form'), name: $('name'), budget: $('budget'), loginToken: $('login-token'),
  signinError: $('signin-error'), talk: $('talk'), who: $('who'), signout: $('signout'),
  start: $('start'), stop: $('stop'), status: $('status'), notice: $('notice'),
  transcript: $('transcript'), empty: $('transcript-empty'),
  cost: $('m-cost'), left: $('m-budget'), budgetBar: $('m-budget-bar'), time: $('m-time'),
  tokens: $('m-tokens'), responses: $('m-responses'), state: $('m-state'), id: $('m-id'),
};

const state = {
  dev: false,
  user: '',
  budget: null, // dev: the budget asked for each conversation
  login: '', // serve: an optional Bearer login token (JWT); otherwise cookies
  minted: null, // an unused mint answer, kept from sign-in for the first start
  token: '', // the current session's token
  session: null, // RealtimeSession
  mic: null, player: null,
  poll: 0, pollsAfterEnd: 0,
  ending: false, // the user pressed Stop
  notified: false, // a refusal sentence is shown for this session
};

function setStatus(text) { ui.status.textContent = text; }

function notify(text, kind = 'error') {
  ui.notice.textContent = text;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = !text;
}

function transport() {
  return document.querySelector('input[name="transport"]:checked').value;
}

async function detectMode() {
  try {
    const r = await fetch('/dev/v1/client_secrets', { cache: 'no-store' });
    state.dev = r.ok && (await r.json()).object === 'voicegate.dev_login';
  } catch { state.dev = false; }
  document.body.dataset.mode = state.dev ? 'dev' : 'serve';
  ui.name.required = state.dev;
  ui.form.querySelector('button').disabled = false;
}

// mint asks voicegate for a session token: in dev mode through dev's own
// sign-in route (any name); otherwise at the gateway's mint with the
// configured end-user login (a Bearer login token, or the site's cookies).
async function mint() {
  let r;
  if (state.dev) {
    r = await fetch('/dev/v1/client_secrets', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: state.user, session: SESSION, limits: state.budget == null ? undefined : { budget_usd: state.budget } }),
    });
  } else {
    const headers = { 'Content-Type': 'application/json' };
    if (state.login) headers.Authorization = 'Bearer ' + state.login;
    r = await fetch('/v1/realtime/client_secrets', {
      method: 'POST', headers, credentials: 'same-origin', body: JSON.stringify({ session: SESSION }),
    });
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(connectError(r.status, body?.error));
  return body;
}

async function signIn(ev) {
  ev.preventDefault();
  ui.signinError.textContent = '';
  state.user = ui.name.value.trim();
  state.login = ui.loginToken.value.trim();
  if (state.dev) {
    if (!state.user) { ui.signinError.textContent = 'Enter a name to sign in.'; ui.name.focus(); return; }
    const b = ui.budget.value.trim();
    state.budget = b === '' ? null : Number(b);
    if (b !== '' && !(state.budget > 0)) { ui.signinError.textContent = 'The budget must be a positive number of dollars, or empty.'; ui.budget.focus(); return; }
  }
  const btn = ui.form.querySelector('button');
  btn.disabled = true;
  try {
    state.minted = await mint();
    state.user = state.minted.voicegate?.user ?? state.user;
    ui.who.textContent = state.user;
    ui.signin.hidden = true;
    ui.talk.hidden = false;
    setStatus('Signed in. Choose a transport and press Start talking.');
    ui.start.focus();
  } catch (e) {
    ui.signinError.textContent = e.message;
  } finally {
    btn.disabled = false;
  }
}

function signOut() {
  stop();
  state.minted = null;
  state.login = '';
  ui.loginToken.value = '';
  ui.talk.hidden = true;
  ui.signin.hidden = false;
  notify('');
  ui.name.focus();
}

// renderTranscript shows the conversation's messages as the SDK keeps
// them: the user's transcribed speech and the assistant's spoken words.
function renderTranscript(history) {
  const lines = [];
  for (const item of history) {
    if (item.type !== 'message' || (item.role !== 'user' && item.role !== 'assistant')) continue;
    const text = item.content.map((c) => c.transcript ?? c.text ?? '').join(' ').trim();
    lines.push({ id: item.itemId, role: item.role, text, pending: item.status === 'in_progress' });
  }
  ui.transcript.replaceChildren(...lines.map((l) => {
    const li = document.createElement('li');
    li.className = l.role;
    li.dataset.itemId = l.id;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = l.role === 'user' ? 'You' : 'Assistant';
    const said = document.createElement('span');
    said.className = 'said';
    said.textContent = l.text || (l.pending ? '…' : (l.role === 'user' ? '(speech)' : ''));
    li.append(who, said);
    return li;
  }));
  ui.empty.hidden = lines.length > 0;
  ui.transcript.lastElementChild?.scrollIntoView({ block: 'nearest' });
}

function renderMeter(v) {
  ui.cost.textContent = money(v.cost_usd);
  ui.cost.dataset.nanousd = String(v.cost_nanousd);
  if (v.remaining_budget_usd == null) {
    ui.left.textContent = 'no limit';
    ui.budgetBar.hidden = true;
  } else {
    ui.left.textContent = `${money(v.remaining_budget_usd)} of ${money(v.limits.budget_usd)}`;
    ui.budgetBar.hidden = false;
    ui.budgetBar.max = v.limits.budget_usd;
    ui.budgetBar.value = v.remaining_budget_usd;
  }
  ui.time.textContent = v.remaining_seconds == null ? 'no limit' : `${duration(v.remaining_seconds)} of ${duration(v.limits.max_session_seconds)}`;
  ui.tokens.textContent = `${v.usage.input_tokens} in · ${v.usage.output_tokens} out`;
  ui.responses.textContent = String(v.responses);
  ui.state.textContent = v.state + (v.transport ? ` (${v.transport})` : '');
  ui.state.dataset.state = v.state;
  ui.id.textContent = v.id;
}

// pollSession reads the session's own view with its token once a second
// while it runs and a few times after it ended (the last cost settles).
function startPolling() {
  clearInterval(state.poll);
  state.pollsAfterEnd = 0;
  const token = state.token;
  const tick = async () => {
    if (token !== state.token) return;
    let v;
    try {
      const r = await fetch('/voicegate/v1/session', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
      if (!r.ok) return;
      v = await r.json();
    } catch { return; }
    if (token !== state.token) return;
    renderMeter(v);
    if (v.state === 'revoked' || v.refusal === 'revoked') {
      showRefusal('session_revoked');
    } else if (!state.session && v.end_reason && !state.ending) {
      showRefusal(v.end_reason);
    }
    if (!state.session && ++state.pollsAfterEnd > 5) clearInterval(state.poll);
  };
  tick();
  state.poll = setInterval(tick, 1000);
}

function showRefusal(code, message) {
  const sentence = refusalSentence(code, message);
  if (!sentence) return;
  if (code === 'session_expiring') { notify(sentence, 'warning'); return; }
  state.notified = true;
  notify(sentence);
  setStatus('Not connected.');
  teardown();
}

async function start() {
  notify('');
  state.notified = false;
  state.ending = false;
  ui.start.disabled = true;
  ui.transcript.replaceChildren();
  ui.empty.hidden = false;
  setStatus('Asking voicegate for a session…');
  try {
    const minted = state.minted ?? await mint();
    state.minted = null;
    state.token = minted.value;
    startPolling();
    const agent = new RealtimeAgent({ name: 'assistant', instructions: INSTRUCTIONS });
    const base = location.origin;
    const ws = transport() === 'websocket';
    const options = { model: MODEL, config: { audio: { input: { transcription: TRANSCRIBE } } } };
    if (ws) options.transport = new OpenAIRealtimeWebSocket();
    const session = new RealtimeSession(agent, options);
    state.session = session;
    session.on('history_updated', renderTranscript);
    session.on('error', (e) => {
      const err = e?.error?.error ?? e?.error ?? e;
      if (err?.code) showRefusal(err.code, err.message);
    });
    session.transport.on('connection_change', (status) => {
      if (status === 'disconnected' && state.session === session) {
        teardown();
        setStatus('Not connected.');
      }
    });
    setStatus(`Connecting over ${ws ? 'WebSocket' : 'WebRTC'}…`);
    if (ws) {
      const url = base.replace(/^http/, 'ws') + '/v1/realtime?model=' + encodeURIComponent(MODEL);
      await session.connect({ apiKey: state.token, url });
      state.player = new Player();
      session.on('audio', (ev) => state.player?.play(ev.data));
      session.on('audio_interrupted', () => state.player?.interrupt());
      state.mic = await capture((pcm) => { if (state.session === session) session.sendAudio(pcm); });
    } else {
      await session.connect({ apiKey: state.token, url: base + '/v1/realtime/calls' });
    }
    if (state.session !== session) return; // refused or stopped while connecting
    document.body.dataset.connected = ws ? 'websocket' : 'webrtc';
    setStatus(`Connected over ${ws ? 'WebSocket' : 'WebRTC'}. Speak now; the assistant answers when you pause.`);
    ui.stop.disabled = false;
    ui.stop.focus();
  } catch (e) {
    teardown();
    if (!state.notified) notify(e?.message ? connectError(0, null, e.message) : String(e));
    setStatus('Not connected.');
  }
}

function teardown() {
  const s = state.session;
  state.session = null;
  delete document.body.dataset.connected;
  state.mic?.stop(); state.mic = null;
  state.player?.close(); state.player = null;
  if (s) { try { s.close(); } catch { /* already closed */ } }
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

function stop() {
  state.ending = true;
  teardown();
  setStatus('Stopped. Press Start talking for a new conversation.');
}

ui.form.addEventListener('submit', signIn);
ui.signout.addEventListener('click', signOut);
ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', stop);
detectMode();
