// Staff desk: log in, set presence, get rung (banner + ring tone), answer, talk, wrap up, back to
// the desk; the queues with their longest wait, and the call-back requests of the departments.
import {
  $, awayReasonText, clearError, connectNamespace, currentUser, departmentName, emitAck, fetchJSON,
  formatDuration, formatTime, initCallControls, initPage, loadDepartments, renderUserHeader,
  RoomSession, secondsSince, showError, showLoginScreen, showScreen, submitLogin, t, YzError,
} from './common.js';

const AWAY_REASONS = ['rest', 'meeting', 'other'];
const LONG_WAIT_S = 120;

const state = {
  user: null,
  departments: [],
  staff: null, // last staff:state
  presence: 'offline',
  queues: {},
  longest: {}, // department -> creation time of its longest-waiting ticket, or null
  reason: null, // why away: rest, meeting, other, or missed (paused by the server)
  wrapUpUntil: null,
  callbacks: [],
  offer: null, // call:incoming being shown
  room: null,
  busy: false,
};

let socket = null;
let noteTimer = null;
let expiryTimer = null;

// ---------------------------------------------------------------------------------------------
// Ring tone: a two-tone phone ring made with WebAudio, no audio file.
// ---------------------------------------------------------------------------------------------
const ring = {
  ctx: null,
  timer: null,

  start() {
    this.stop();
    try {
      this.ctx = this.ctx || new AudioContext();
      if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    } catch {
      return;
    }
    const burst = () => {
      const ctx = this.ctx;
      const now = ctx.currentTime;
      const gain = ctx.createGain();
      gain.gain.setValueAtTime(0, now);
      gain.connect(ctx.destination);
      for (const freq of [440, 480]) {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(now);
        osc.stop(now + 1.6);
      }
      // Two short rings, like a desk phone.
      for (const [on, off] of [[0, 0.6], [0.9, 1.5]]) {
        gain.gain.setTargetAtTime(0.15, now + on, 0.01);
        gain.gain.setTargetAtTime(0, now + off, 0.02);
      }
    };
    burst();
    this.timer = setInterval(burst, 3000);
  },

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  },
};

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------
function deptNames(ids) {
  return (ids || []).map((id) => departmentName(state.departments, id)).join('、');
}

function renderHeader() {
  renderUserHeader(state.user);
}

function renderDesk() {
  const staff = state.staff || {};
  const user = state.user || {};
  $('staff-name').textContent = staff.display_name || user.display_name || user.username || '';
  const depts = staff.departments || user.departments || [];
  $('staff-departments').textContent = t('staff_departments', { depts: deptNames(depts) });
  renderPresence();
  renderQueues(depts);
}

function renderPresence() {
  const badge = $('presence-state');
  badge.textContent = t(`presence_${state.presence}`);
  badge.dataset.state = state.presence;
  // Lock only for a ring or call this page holds; after a reload the server may still say
  // in_call, and the buttons then let the server answer (bad_state) rather than dead-end.
  const locked = Boolean(state.offer || state.room);
  for (const btn of document.querySelectorAll('[data-presence]')) {
    const on = btn.dataset.presence === state.presence;
    btn.classList.toggle('active', on);
    btn.setAttribute('aria-pressed', String(on));
    btn.disabled = locked || state.busy;
  }
  const away = state.presence === 'away';
  const reason = $('presence-reason');
  reason.hidden = !(away && state.reason);
  reason.dataset.reason = state.reason || '';
  reason.textContent = away && state.reason ? t('presence_reason', { reason: awayReasonText(state.reason) }) : '';
  const select = $('away-reason');
  if (away && AWAY_REASONS.includes(state.reason) && document.activeElement !== select) {
    select.value = state.reason;
  }
  select.disabled = locked || state.busy;
  $('wrap-up').hidden = state.presence !== 'wrap_up';
  $('wrap-up-done').disabled = state.busy;
  tickClocks();
}

// Once a second: the longest waits and the wrap-up countdown move with the clock.
function tickClocks() {
  for (const li of document.querySelectorAll('[data-testid="queue-list"] li')) {
    const el = li.querySelector('.longest');
    if (!el) continue;
    const waited = secondsSince(state.longest[li.dataset.department] ?? NaN);
    const busy = (state.queues[li.dataset.department] ?? 0) > 0 && waited !== null;
    el.textContent = busy ? t('queue_longest', { t: formatDuration(waited) }) : t('queue_longest_none');
    el.classList.toggle('long', busy && waited >= LONG_WAIT_S);
  }
  if (state.presence === 'wrap_up') {
    const left = Number.isFinite(state.wrapUpUntil)
      ? Math.max(0, Math.ceil(state.wrapUpUntil - Date.now() / 1000)) : 0;
    $('wrap-up-countdown').textContent = t('wrap_up_text', { s: left });
  }
}

function renderQueues(depts) {
  const list = $('queue-list');
  const ids = depts && depts.length ? depts : Object.keys(state.queues);
  list.replaceChildren();
  for (const id of ids) {
    const li = document.createElement('li');
    li.dataset.testid = `queue-count-${id}`;
    li.dataset.department = id;
    const name = document.createElement('span');
    name.className = 'queue-name';
    name.textContent = departmentName(state.departments, id);
    const count = document.createElement('strong');
    const waiting = state.queues[id] ?? 0;
    count.textContent = t('queue_waiting', { n: waiting });
    count.className = waiting > 0 ? 'count busy' : 'count';
    const longest = document.createElement('span');
    longest.className = 'longest';
    longest.dataset.testid = `queue-longest-${id}`;
    li.append(name, count, longest);
    list.append(li);
  }
  tickClocks();
}

// ---------------------------------------------------------------------------------------------
// Call-back requests (made at the kiosk out of hours or with a full queue), oldest first
// ---------------------------------------------------------------------------------------------
function renderCallbacks() {
  const list = $('callback-list');
  list.replaceChildren();
  for (const cb of state.callbacks) {
    const li = document.createElement('li');
    li.dataset.testid = 'callback-item';
    li.dataset.callbackId = cb.callback_id;
    const who = document.createElement('div');
    who.className = 'callback-who';
    const name = document.createElement('strong');
    name.textContent = cb.name || '';
    const phone = document.createElement('span');
    phone.className = 'callback-phone';
    phone.textContent = cb.phone || '';
    who.append(name, phone);
    const meta = document.createElement('div');
    meta.className = 'muted small';
    meta.textContent = t('callback_meta', {
      dept: departmentName(state.departments, cb.department), time: formatTime(cb.created_at),
    });
    const body = document.createElement('div');
    body.className = 'callback-body';
    body.append(who, meta);
    if (cb.note) {
      const note = document.createElement('p');
      note.className = 'callback-note';
      note.textContent = cb.note;
      body.append(note);
    }
    const done = document.createElement('button');
    done.type = 'button';
    done.className = 'btn btn-secondary btn-sm';
    done.dataset.testid = 'callback-done';
    done.textContent = t('callback_done_button');
    done.addEventListener('click', () => callbackDone(cb.callback_id, done));
    li.append(body, done);
    list.append(li);
  }
  const n = state.callbacks.length;
  $('callbacks-empty').hidden = n > 0;
  $('callback-count').hidden = n === 0;
  $('callback-count').textContent = String(n);
}

function setCallbacks(list) {
  const seen = new Map();
  for (const cb of list) if (cb && cb.callback_id) seen.set(cb.callback_id, cb);
  state.callbacks = [...seen.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
  renderCallbacks();
}

async function loadCallbacks() {
  if (!socket) return;
  try {
    const answer = await emitAck(socket, 'callback:list', {});
    setCallbacks(answer.callbacks || []);
  } catch (err) {
    showError(err);
  }
}

async function callbackDone(callbackId, btn) {
  btn.disabled = true;
  try {
    await emitAck(socket, 'callback:done', { callback_id: callbackId });
    setCallbacks(state.callbacks.filter((cb) => cb.callback_id !== callbackId));
  } catch (err) {
    btn.disabled = false;
    showError(err);
    if (err.code === 'not_found') loadCallbacks();
  }
}

function note(text) {
  const el = $('call-note');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(noteTimer);
  noteTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

// ---------------------------------------------------------------------------------------------
// Incoming call
// ---------------------------------------------------------------------------------------------
function showIncoming(offer) {
  state.offer = offer;
  state.presence = 'ringing';
  renderPresence();
  $('incoming-detail').textContent = t('incoming_detail', {
    number: offer.number || '', dept: departmentName(state.departments, offer.department),
  });
  $('accept-call').disabled = false;
  $('decline-call').disabled = false;
  $('incoming-call').hidden = false;
  ring.start();
  clearInterval(expiryTimer);
  const tick = () => {
    const left = Math.max(0, Math.ceil((offer.expires_at || 0) - Date.now() / 1000));
    $('incoming-expires').textContent = offer.expires_at ? t('incoming_expires', { s: left }) : '';
  };
  tick();
  expiryTimer = setInterval(tick, 500);
}

function hideIncoming() {
  state.offer = null;
  ring.stop();
  clearInterval(expiryTimer);
  $('incoming-call').hidden = true;
}

async function acceptCall() {
  const offer = state.offer;
  if (!offer || state.busy) return;
  state.busy = true;
  $('accept-call').disabled = true;
  $('decline-call').disabled = true;
  ring.stop();
  try {
    const answer = await emitAck(socket, 'call:accept', { ticket_id: offer.ticket_id });
    hideIncoming();
    enterRoom(answer.room, answer.ticket || offer);
  } catch (err) {
    hideIncoming();
    showError(err);
  } finally {
    state.busy = false;
    renderPresence();
  }
}

async function declineCall() {
  const offer = state.offer;
  if (!offer || state.busy) return;
  state.busy = true;
  hideIncoming();
  try {
    // The server passes the ticket on and pushes our new presence in staff:state.
    await emitAck(socket, 'call:decline', { ticket_id: offer.ticket_id });
  } catch (err) {
    showError(err);
  } finally {
    state.busy = false;
    renderPresence();
  }
}

function onWithdrawn(msg) {
  if (!state.offer || (msg && msg.ticket_id && msg.ticket_id !== state.offer.ticket_id)) return;
  hideIncoming();
  const reason = (msg && msg.reason) || 'cancelled';
  const key = { cancelled: 'withdrawn_cancelled', timeout: 'withdrawn_timeout', taken: 'withdrawn_taken' }[reason];
  note(t(key || 'withdrawn_cancelled'));
  // The presence that follows (away after a missed ring) arrives in staff:state.
  renderPresence();
}

// ---------------------------------------------------------------------------------------------
// Call
// ---------------------------------------------------------------------------------------------
function enterRoom(roomRef, ticket) {
  if (!roomRef || !roomRef.room_id) return;
  if (state.room) state.room.close();
  state.presence = 'in_call';
  const deptName = departmentName(state.departments, ticket.department);
  $('call-ticket').textContent = `${ticket.number || ''} · ${deptName}`;
  $('call-peer').textContent = t('call_applicant', { number: ticket.number || '' });
  $('call-status').hidden = false;
  showScreen('call');
  const room = new RoomSession({
    roomId: roomRef.room_id,
    token: roomRef.token,
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    extraRemotes: $('remote-extra'),
    chatLog: $('chat-log'),
    preferRole: 'applicant',
    onRemoteMedia: (main) => { $('call-status').hidden = Boolean(main); },
    onEnded: () => {
      if (state.room !== room) return;
      state.room = null;
      // The server's staff:state (wrap_up, then available) may already have come in.
      if (state.presence === 'in_call') state.presence = 'available';
      backToDesk();
      note(t('call_ended'));
    },
  });
  state.room = room;
  room.start().catch((err) => showError(err));
}

function backToDesk() {
  renderDesk();
  showScreen('desk');
}

async function hangup() {
  if (!state.room) {
    backToDesk();
    return;
  }
  try {
    await state.room.hangup();
  } catch (err) {
    showError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Presence
// ---------------------------------------------------------------------------------------------
async function setPresence(value) {
  if (state.busy || !socket) return;
  state.busy = true;
  renderPresence();
  const payload = { state: value };
  if (value === 'away') payload.reason = $('away-reason').value;
  try {
    const answer = await emitAck(socket, 'presence:set', payload);
    state.presence = answer.presence || value;
    if (value === 'away') state.reason = payload.reason;
  } catch (err) {
    showError(err);
  } finally {
    state.busy = false;
    renderPresence();
  }
}

// ---------------------------------------------------------------------------------------------
// Session: login, socket, logout
// ---------------------------------------------------------------------------------------------
function showLogin(errorText = '') {
  state.user = null;
  showLoginScreen(errorText);
}

function startDesk() {
  renderHeader();
  renderDesk();
  showScreen('desk');
  if (socket) socket.disconnect();
  socket = connectNamespace('/staff');
  socket.on('connect_error', (err) => {
    const data = (err && err.data) || {};
    if (socket.active) return; // a network problem: the client retries by itself
    socket.disconnect();
    hideIncoming();
    const text = data.code === 'unauthenticated' || data.code === 'forbidden'
      ? new YzError(data.code, data.message || t('staff_only'), data.message_en).display
      : t('err_network');
    showLogin(text);
  });
  socket.on('connect', loadCallbacks);
  socket.on('staff:state', (msg) => {
    state.staff = msg || {};
    state.presence = (msg && msg.presence) || 'offline';
    state.queues = { ...((msg && msg.queues) || {}) };
    state.longest = { ...((msg && msg.longest) || {}) };
    state.reason = (msg && msg.reason) || null;
    state.wrapUpUntil = msg && Number.isFinite(msg.wrap_up_until) ? msg.wrap_up_until : null;
    // A count that disagrees with the list means a callback:new was lost: re-read the list.
    if (msg && Number.isFinite(msg.callbacks) && msg.callbacks !== state.callbacks.length) {
      loadCallbacks();
    }
    if (state.presence !== 'ringing' && state.offer) hideIncoming();
    if (document.body.dataset.current !== 'call') backToDesk();
    else renderPresence();
  });
  socket.on('queue:update', (msg) => {
    if (!msg || !msg.department) return;
    state.queues[msg.department] = msg.waiting ?? 0;
    if ('longest_since' in msg) state.longest[msg.department] = msg.longest_since;
    renderQueues((state.staff && state.staff.departments) || (state.user && state.user.departments));
  });
  socket.on('callback:new', (cb) => {
    if (cb && cb.callback_id) setCallbacks([...state.callbacks, cb]);
  });
  socket.on('call:incoming', showIncoming);
  socket.on('call:withdrawn', onWithdrawn);
}

async function login(event) {
  const user = await submitLogin(event);
  if (!user) return;
  state.user = user;
  // Unlock audio while we have a user gesture, so the ring tone can play later.
  try {
    ring.ctx = ring.ctx || new AudioContext();
    ring.ctx.resume().catch(() => {});
  } catch { /* no WebAudio: the banner still shows */ }
  clearError();
  startDesk();
}


async function logout() {
  if (state.room) state.room.close();
  state.room = null;
  hideIncoming();
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
    socket = null;
  }
  try {
    await fetchJSON('/api/logout', { method: 'POST', body: {} });
  } catch { /* the session is gone either way */ }
  state.staff = null;
  setCallbacks([]);
  showLogin();
}

async function main() {
  initPage('title_staff');
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('presence-available').addEventListener('click', () => setPresence('available'));
  $('presence-away').addEventListener('click', () => setPresence('away'));
  // Changing the reason while away tells the server the new reason.
  $('away-reason').addEventListener('change', () => {
    if (state.presence === 'away') setPresence('away');
  });
  $('wrap-up-done').addEventListener('click', () => setPresence('available'));
  setInterval(tickClocks, 1000);
  $('accept-call').addEventListener('click', acceptCall);
  $('decline-call').addEventListener('click', declineCall);
  $('hangup').addEventListener('click', hangup);
  initCallControls(() => state.room);
  try {
    state.departments = await loadDepartments();
  } catch (err) {
    showError(err);
  }
  state.user = await currentUser();
  if (state.user) startDesk();
  else showLogin();
}

main();
