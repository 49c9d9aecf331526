// The operator console at /admin: live sessions (revoke a session or a
// user in one click), usage by day and by user as inline SVG charts, and
// the audit trail with filters and newest-first paging. It calls the
// operator API (/voicegate/v1/*) with the admin key, which it keeps in this
// tab's sessionStorage only. Plain JavaScript, no build step, no CDN.

const KEY = 'voicegate.adminKey';
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem(KEY) || '';
let timer = 0;
const audit = { cursors: [], before: '', next: '' }; // cursors: the pages above this one

class APIError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path) {
  const r = await fetch('/voicegate/v1' + path, { method, headers: { Authorization: 'Bearer ' + key }, cache: 'no-store' });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new APIError(r.status, body);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

const money = (usd) => '$' + (usd !== 0 && Math.abs(usd) < 0.01 ? usd.toFixed(6) : usd.toFixed(4));
function age(since) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
const utc = (t) => t.replace('T', ' ').replace(/\.\d+/, '').replace('Z', '');

function say(text) { $('action-status').textContent = text; }

// ---- sign-in ----------------------------------------------------------

async function open(candidate) {
  key = candidate;
  try {
    await api('GET', '/sessions?limit=1');
  } catch (e) {
    key = '';
    sessionStorage.removeItem(KEY);
    $('login-error').textContent = e.status === 401 || e.status === 403
      ? 'That is not this gateway\'s admin key.' : `The operator API did not answer: ${e.message}`;
    $('login').hidden = false;
    $('console').hidden = true;
    return;
  }
  sessionStorage.setItem(KEY, key);
  $('login-error').textContent = '';
  $('login').hidden = true;
  $('console').hidden = false;
  refreshLive();
  refreshUsage();
  loadAudit('');
  schedule();
}

function forget() {
  clearInterval(timer);
  key = '';
  sessionStorage.removeItem(KEY);
  $('admin-key').value = '';
  $('console').hidden = true;
  $('login').hidden = false;
  $('admin-key').focus();
}

function schedule() {
  clearInterval(timer);
  let n = 0;
  // Live sessions every 2 s; usage every 10 s.
  if ($('auto').checked) timer = setInterval(() => { refreshLive(); if (++n % 5 === 0) refreshUsage(); }, 2000);
}

// ---- live sessions ----------------------------------------------------

async function refreshLive() {
  let list;
  try {
    list = await api('GET', '/sessions?state=live&limit=100');
  } catch (e) {
    if (e.status === 401) { forget(); $('login-error').textContent = 'The admin key is no longer accepted.'; }
    $('updated').textContent = `Could not update: ${e.message}`;
    return;
  }
  const rows = list.data.map((s) => el('tr', { 'data-session-id': s.id, 'data-user': s.user },
    el('td', { 'data-label': 'User' }, s.user || '—'),
    el('td', { 'data-label': 'Tier' }, s.tier),
    el('td', { 'data-label': 'Model' }, s.model),
    el('td', { 'data-label': 'Transport' }, s.transport || '—'),
    el('td', { 'data-label': 'Age', class: 'num' }, age(s.started_at || s.created_at)),
    el('td', { 'data-label': 'Cost', class: 'num' }, money(s.cost_usd)),
    el('td', { 'data-label': 'Actions' }, el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'danger small', 'data-action': 'revoke-session',
        'aria-label': `Revoke session ${s.id} of ${s.user}`, onclick: () => revokeSession(s) }, 'Revoke session'),
      el('button', { type: 'button', class: 'danger small', 'data-action': 'revoke-user',
        'aria-label': `Revoke every session of ${s.user}`, onclick: () => revokeUser(s.user, s.app_key_id) }, 'Revoke user'))),
  ));
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: '7', class: 'empty empty-row' }, 'No live sessions.')));
  // Keep keyboard focus on the same button across a refresh.
  const focused = document.activeElement?.closest?.('#sessions tr');
  const focusKey = focused && [focused.dataset.sessionId, document.activeElement.dataset.action];
  $('sessions').tBodies[0].replaceChildren(...rows);
  if (focusKey) document.querySelector(`#sessions tr[data-session-id="${CSS.escape(focusKey[0])}"] [data-action="${focusKey[1]}"]`)?.focus();
  $('live-count').textContent = String(list.data.length) + (list.has_more ? '+' : '');
  $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}${$('auto').checked ? ', every 2 seconds' : ''}.`;
}

async function revokeSession(s) {
  try {
    await api('DELETE', '/sessions/' + encodeURIComponent(s.id));
    say(`Revoked session ${s.id} of ${s.user}.`);
  } catch (e) {
    say(`Could not revoke session ${s.id}: ${e.message}`);
  }
  refreshLive();
  loadAudit(audit.before);
}

// revokeUser revokes user in the namespace of the app key that minted the
// session (users are namespaced by app key), or the bare name for a
// session the admin key or a login minted.
async function revokeUser(user, appKeyID) {
  try {
    const q = appKeyID ? '?app_key=' + encodeURIComponent(appKeyID) : '';
    await api('POST', '/users/' + encodeURIComponent(user) + '/revoke' + q);
    say(`Revoked every session of ${user}; tokens minted for ${user} before now no longer connect.`);
  } catch (e) {
    say(`Could not revoke ${user}: ${e.message}`);
  }
  refreshLive();
  loadAudit(audit.before);
}

// ---- usage ------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// barChart draws labelled bars (rows of {label, value, title}) into an
// <svg>: vertical for days, horizontal for users.
function barChart(node, rows, { horizontal = false, alt = false } = {}) {
  const desc = node.querySelector('desc');
  node.replaceChildren(desc);
  const max = Math.max(...rows.map((r) => r.value), 0);
  if (rows.length === 0 || max === 0) {
    node.setAttribute('viewBox', '0 0 320 60');
    node.append(svg('text', { x: 8, y: 34 }, 'No usage in this period.'));
    desc.textContent = 'No usage in this period.';
    return;
  }
  desc.textContent = rows.map((r) => `${r.label}: ${r.title}`).join('; ');
  if (horizontal) {
    const rowH = 22, labelW = 110, w = 320, h = rows.length * rowH + 8;
    node.setAttribute('viewBox', `0 0 ${w} ${h}`);
    rows.forEach((r, i) => {
      const y = 4 + i * rowH;
      const bw = Math.max(1, (w - labelW - 70) * r.value / max);
      node.append(svg('text', { x: 0, y: y + 14 }, r.label.length > 16 ? r.label.slice(0, 15) + '…' : r.label));
      const bar = svg('rect', { x: labelW, y: y + 3, width: bw, height: rowH - 8, rx: 2, class: 'bar' + (alt ? ' alt' : '') });
      bar.append(svg('title', {}, `${r.label}: ${r.title}`));
      node.append(bar, svg('text', { x: labelW + bw + 4, y: y + 14 }, r.title));
    });
    return;
  }
  const w = 320, h = 160, top = 16, bottom = 22, slot = w / rows.length;
  node.setAttribute('viewBox', `0 0 ${w} ${h}`);
  node.append(svg('line', { x1: 0, x2: w, y1: h - bottom, y2: h - bottom, class: 'axis' }));
  node.append(svg('text', { x: 0, y: 11 }, 'max ' + money(max)));
  rows.forEach((r, i) => {
    const bh = r.value === 0 ? 0 : Math.max(1, (h - top - bottom) * r.value / max);
    const bar = svg('rect', { x: i * slot + slot * 0.15, y: h - bottom - bh, width: slot * 0.7, height: bh, rx: 2, class: 'bar' });
    bar.append(svg('title', {}, `${r.label}: ${r.title}`));
    node.append(bar);
    // The day of the month under the bars (the caption names the dates).
    const step = Math.ceil(rows.length / 14);
    if (i % step === 0) {
      const day = r.label.slice(8);
      node.append(svg('text', { x: i * slot + slot / 2, y: h - 6, 'text-anchor': 'middle' }, day));
    }
  });
}

async function refreshUsage() {
  const days = Number($('usage-days').value);
  const since = new Date(Date.now() - (days - 1) * 86400e3).toISOString().slice(0, 10);
  let byDay, byUser;
  try {
    [byDay, byUser] = await Promise.all([
      api('GET', `/usage?group_by=day&since=${since}`),
      api('GET', `/usage?group_by=user&since=${since}`),
    ]);
  } catch (e) {
    $('chart-day-desc').textContent = `Could not load usage: ${e.message}`;
    return;
  }
  const cost = new Map(byDay.data.map((r) => [r.key, r.cost_usd]));
  const dayRows = [];
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(Date.now() - i * 86400e3).toISOString().slice(0, 10);
    dayRows.push({ label: d, value: cost.get(d) || 0, title: money(cost.get(d) || 0) });
  }
  $('chart-day-cap').textContent = `Cost by day (UTC), ${dayRows[0].label} to ${dayRows[dayRows.length - 1].label}`;
  barChart($('chart-day'), dayRows);
  const users = [...byUser.data].sort((a, b) => b.cost_usd - a.cost_usd);
  barChart($('chart-user'), users.slice(0, 10).map((r) => ({ label: r.key || '(none)', value: r.cost_usd, title: money(r.cost_usd) })),
    { horizontal: true, alt: true });
  const body = users.map((r) => el('tr', {},
    el('td', { 'data-label': 'User' }, r.key || '(none)'),
    el('td', { 'data-label': 'Responses', class: 'num' }, String(r.responses)),
    el('td', { 'data-label': 'Tokens', class: 'num' }, String(r.usage.total_tokens)),
    el('td', { 'data-label': 'Cost', class: 'num' }, money(r.cost_usd))));
  if (body.length === 0) body.push(el('tr', {}, el('td', { colspan: '4', class: 'empty empty-row' }, 'No usage in this period.')));
  $('usage-table').tBodies[0].replaceChildren(...body);
}

// ---- audit ------------------------------------------------------------

function detail(d) {
  if (!d) return '';
  return Object.entries(d).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
}

// loadAudit shows the page of entries older than the cursor before (''
// for the newest).
async function loadAudit(before) {
  const q = new URLSearchParams();
  for (const [param, id] of [['kind', 'f-kind'], ['user', 'f-user'], ['session_id', 'f-session']]) {
    const v = $(id).value.trim();
    if (v) q.set(param, v);
  }
  q.set('limit', $('f-limit').value);
  if (before) q.set('before', before);
  let page;
  try {
    page = await api('GET', '/audit?' + q);
  } catch (e) {
    $('audit-page').textContent = `Could not load the audit trail: ${e.message}`;
    return;
  }
  audit.before = before;
  audit.next = page.has_more && page.data.length ? String(page.data[page.data.length - 1].seq) : '';
  const rows = page.data.map((a) => el('tr', { 'data-seq': String(a.seq) },
    el('td', { 'data-label': 'Time' }, utc(a.at)),
    el('td', { 'data-label': 'Kind' }, a.kind),
    el('td', { 'data-label': 'User' }, a.user || '—'),
    el('td', { 'data-label': 'Session' }, a.session_id ? el('code', {}, a.session_id) : '—'),
    el('td', { 'data-label': 'Detail', class: 'detail' }, detail(a.detail))));
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: '5', class: 'empty empty-row' }, 'No audit entries match.')));
  $('audit').tBodies[0].replaceChildren(...rows);
  $('audit-newer').disabled = audit.cursors.length === 0;
  $('audit-older').disabled = !audit.next;
  $('audit-page').textContent = `Page ${audit.cursors.length + 1}, ${page.data.length} entries${page.has_more ? ', more below' : ''}.`;
}

// ---- wiring -----------------------------------------------------------

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const v = $('admin-key').value.trim();
  if (!v) { $('login-error').textContent = 'Enter the admin key.'; return; }
  open(v);
});
$('forget').addEventListener('click', forget);
$('auto').addEventListener('change', () => { schedule(); if ($('auto').checked) refreshLive(); });
$('usage-days').addEventListener('change', refreshUsage);
$('audit-filter').addEventListener('submit', (e) => { e.preventDefault(); audit.cursors = []; loadAudit(''); });
$('audit-filter').addEventListener('reset', () => { audit.cursors = []; setTimeout(() => loadAudit(''), 0); });
$('audit-older').addEventListener('click', () => { audit.cursors.push(audit.before); loadAudit(audit.next); });
$('audit-newer').addEventListener('click', () => loadAudit(audit.cursors.pop() ?? ''));

if (key) open(key);
else $('admin-key').focus();
