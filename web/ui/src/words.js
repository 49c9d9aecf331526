// What the demo page says: refusals and errors as plain sentences, money
// and durations as people read them.

const SENTENCES = {
  budget_exceeded: 'This conversation has used up its budget, so voicegate ended it. Start a new one when your budget allows.',
  session_expiring: 'This conversation is about to reach its time limit and will end in a few seconds.',
  session_expired: 'This conversation reached its time limit, so voicegate ended it. Press Start talking for a new one.',
  session_revoked: 'An operator ended this conversation. Press Start talking to begin a new one, if you are still allowed to.',
  idle_timeout: 'This conversation ended because nothing was said for a while.',
  rate_limit_exceeded: 'Too many requests in a short time. Wait a moment and try again.',
  token_expired: 'This session token expired before it was used. Press Start talking for a new one.',
  session_ended: 'This conversation has already ended. Press Start talking for a new one.',
  session_in_use: 'This session is already connected somewhere else.',
  governance_unavailable: 'voicegate cannot check your limits right now, so it did not start the conversation. Try again in a moment.',
  upstream_unavailable: 'The voice service is unavailable right now. Try again in a moment.',
};

// refusalSentence returns the sentence for an in-stream or HTTP refusal
// code, or '' for codes that need no sentence (a client's own mistakes
// are logged to the console instead).
export function refusalSentence(code, message) {
  if (SENTENCES[code]) return SENTENCES[code];
  if (code) console.warn('voicegate:', code, message);
  return '';
}

// connectError turns a failed request (status, the OpenAI error envelope's
// error object) or a thrown message into a sentence.
export function connectError(status, err, thrown) {
  const code = err?.code ?? (thrown && /"code":\s*"([a-z_]+)"/.exec(thrown)?.[1]);
  if (code && SENTENCES[code]) return SENTENCES[code];
  if (status === 401 || code === 'invalid_api_key') return 'voicegate did not accept your sign-in. Check your login and try again.';
  if (status === 403) return err?.message ?? 'voicegate refused this request.';
  if (status === 429) return SENTENCES.rate_limit_exceeded;
  if (status >= 500) return 'voicegate could not start a session right now. Try again in a moment.';
  return err?.message ?? thrown ?? 'Something went wrong.';
}

// money formats US dollars with enough digits for sub-cent costs.
export function money(usd) {
  const v = Number(usd) || 0;
  return '$' + (v !== 0 && Math.abs(v) < 0.01 ? v.toFixed(6) : v.toFixed(4));
}

// duration formats seconds as m:ss.
export function duration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
