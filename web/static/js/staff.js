// Staff desk: log in, set presence, get rung (banner + ring tone), answer, talk, wrap up, back to
// the desk; the queues with their longest wait, and the call-back requests of the departments.
// 会商: invite another department during a call; join a call one's department is invited to.
// A hall guide who logs in here gets the list of the consultations they started, to join them.
import {
  $, clearError, connectNamespace, el, emitAck, fetchJSON, formatDuration, formatTime,
  loadDesk, renderUserHeader, secondsSince, sessionEndedText, showError, showLoginScreen,
  showScreen, stopSessionWatch, submitLogin, watchSession, YzError,
} from './common.js';
import { awayReasonText, departmentName, initPage, listJoin, t } from './i18n.js';
import { ChecklistPanel, initChecklistControls } from './checklist.js';
import { initCallControls, RoomSession } from './room.js';
import { startDeskBookings } from './desk_bookings.js';
import { AwayReason, Presence, Role } from './states.js';

// The reasons a staff member may choose (the away-reason select).
const AWAY_REASONS = [AwayReason.REST, AwayReason.MEETING, AwayReason.OTHER];
const LONG_WAIT_S = 120;

const state = {
  user: null,
  departments: [],
  staff: null, // last staff:state
  presence: Presence.OFFLINE,
  queues: {},
  longest: {}, // department -> creation time of its longest-waiting ticket, or null
  reason: null, // why away: rest, meeting, other, or missed (paused by the server)
  wrapUpUntil: null,
  callbacks: [],
  offer: null, // call:incoming being shown
  room: null,
  checklist: null,
  busy: false,
  invites: [], // pending 会商 invitations to our departments (room:invite)
  call: null, // {roomId, department, guest}: the call we are in; guest = joined by invitation
  guidePoll: null,
};

const GUIDE_POLL_MS = 3000;

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
  return listJoin((ids || []).map((id) => departmentName(state.departments, id)));
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
  const away = state.presence === Presence.AWAY;
  const reason = $('presence-reason');
  reason.hidden = !(away && state.reason);
  reason.dataset.reason = state.reason || '';
  reason.textContent = away && state.reason ? t('presence_reason', { reason: awayReasonText(state.reason) }) : '';
  const select = $('away-reason');
  if (away && AWAY_REASONS.includes(state.reason) && document.activeElement !== select) {
    select.value = state.reason;
  }
  select.disabled = locked || state.busy;
  $('wrap-up').hidden = state.presence !== Presence.WRAP_UP;
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
  if (state.presence === Presence.WRAP_UP) {
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
    const body = el('div', { className: 'callback-body' },
      el('div', { className: 'callback-who' },
        el('strong', { text: cb.name || '' }),
        el('span', { className: 'callback-phone', text: cb.phone || '' })),
      el('div', {
        className: 'muted small',
        text: t('callback_meta', {
          dept: departmentName(state.departments, cb.department), time: formatTime(cb.created_at),
        }),
      }));
    if (cb.note) body.append(el('p', { className: 'callback-note', text: cb.note }));
    const done = actionButton('callback-done', t('callback_done_button'), 'btn-secondary',
      () => callbackDone(cb.callback_id, done));
    const li = el('li', { testid: 'callback-item' }, body, done);
    li.dataset.callbackId = cb.callback_id;
    list.append(li);
  }
  showCount('callbacks-empty', 'callback-count', state.callbacks.length);
}

// A small button of a desk list (Join, Done).
function actionButton(testid, text, kind, onClick) {
  const button = el('button', { className: `btn ${kind} btn-sm`, testid, text });
  button.type = 'button';
  button.addEventListener('click', onClick);
  return button;
}

// A desk list's "none" line and the count badge on its heading.
function showCount(emptyId, countId, n) {
  $(emptyId).hidden = n > 0;
  $(countId).hidden = n === 0;
  $(countId).textContent = String(n);
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
// 会商 invitations: on the desk, with a Join button; the first colleague to join takes it
// ---------------------------------------------------------------------------------------------
function renderInvites() {
  const list = $('invite-list');
  list.replaceChildren();
  for (const inv of state.invites) {
    const body = el('div', { className: 'callback-body' },
      el('strong', {
        text: t('invite_detail', {
          from: departmentName(state.departments, inv.from_department),
          dept: departmentName(state.departments, inv.department), number: inv.ticket_number || '',
        }),
      }),
      el('div', {
        className: 'muted small',
        text: `${t('invite_by', { name: inv.invited_by || '' })} · ${formatTime(inv.created_at)}`,
      }));
    if (inv.note) {
      body.append(el('p', { className: 'callback-note', testid: 'invite-note-text', text: inv.note }));
    }
    const join = actionButton('invite-join', t('invite_join'), 'btn-primary',
      () => joinInvite(inv, join));
    join.disabled = Boolean(state.room) || state.busy;
    const li = el('li', { testid: 'invite-item' }, body, join);
    li.dataset.roomId = inv.room_id;
    list.append(li);
  }
  showCount('invites-empty', 'invite-count', state.invites.length);
}

function setInvites(list) {
  const seen = new Map();
  for (const inv of list) if (inv && inv.room_id) seen.set(`${inv.room_id}/${inv.department}`, inv);
  state.invites = [...seen.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
  renderInvites();
}

function onInviteClosed(msg) {
  if (!msg) return;
  const before = state.invites.length;
  setInvites(state.invites.filter((i) => !(i.room_id === msg.room_id && i.department === msg.department)));
  if (before !== state.invites.length && msg.reason === 'taken' && !state.room) {
    note(t('invite_taken', { dept: departmentName(state.departments, msg.department) }));
  }
}

async function joinInvite(inv, btn) {
  if (state.room || state.busy) return;
  state.busy = true;
  btn.disabled = true;
  try {
    const answer = await fetchJSON(`/api/rooms/${encodeURIComponent(inv.room_id)}/join`, { method: 'POST', body: {} });
    setInvites(state.invites.filter((i) => i.room_id !== inv.room_id));
    enterRoom(answer.room, answer.ticket || { number: inv.ticket_number, department: inv.from_department },
      { guest: true, department: answer.department });
  } catch (err) {
    showError(err);
    if (err.status === 409 || err.status === 404) {
      setInvites(state.invites.filter((i) => i.room_id !== inv.room_id));
    }
  } finally {
    state.busy = false;
    renderInvites();
    renderPresence();
  }
}

// The in-call invite form: any department but our own call's.
function renderInvitePanel() {
  const panel = $('invite-panel');
  const show = Boolean(state.room && state.call && state.user)
    && [Role.STAFF, Role.GUIDE].includes(state.user.role)
    // An interpreter in the call invites nobody (the server refuses it too).
    && !state.departments.some((d) => d.id === state.call.department && d.skill)
    && document.body.dataset.current === 'call';
  panel.hidden = !show;
  if (!show) return;
  const select = $('invite-department');
  const current = select.value;
  select.replaceChildren();
  for (const d of state.departments) {
    if (d.id === state.call.department) continue;
    const opt = document.createElement('option');
    opt.value = d.id;
    opt.textContent = departmentName(state.departments, d.id);
    select.append(opt);
  }
  if (current) select.value = current;
}

async function sendInvite(event) {
  event.preventDefault();
  if (!state.call || state.busy) return;
  const department = $('invite-department').value;
  if (!department) return;
  const btn = $('invite-send');
  btn.disabled = true;
  try {
    await fetchJSON(`/api/rooms/${encodeURIComponent(state.call.roomId)}/invite`, {
      method: 'POST', body: { department, note: $('invite-note').value.trim() },
    });
    $('invite-note').value = '';
    $('invite-status').textContent = t('invite_sent', { dept: departmentName(state.departments, department) });
  } catch (err) {
    $('invite-status').textContent = '';
    showError(err);
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Hall guide: the consultations this guide started at the kiosk, polled; join one's room
// ---------------------------------------------------------------------------------------------
function renderGuide(tickets) {
  const list = $('guide-list');
  list.replaceChildren();
  for (const tk of tickets) {
    const li = el('li', { testid: 'guide-item' },
      el('div', { className: 'callback-body' },
        el('strong', { text: `${tk.number} · ${departmentName(state.departments, tk.department)}` }),
        el('div', {
          className: 'muted small', testid: 'guide-status', text: t(`guide_status_${tk.status}`),
        })));
    li.dataset.ticketId = tk.ticket_id;
    if (tk.room_id) {
      const join = actionButton('guide-join', t('guide_join'), 'btn-primary',
        () => guideJoin(tk, join));
      li.append(join);
    }
    list.append(li);
  }
  $('guide-empty').hidden = tickets.length > 0;
}

async function pollGuide() {
  if (state.room) return;
  try {
    const answer = await fetchJSON('/api/rooms/mine', { timeoutMs: 5000 });
    renderGuide(answer.tickets || []);
  } catch (err) {
    if (err instanceof YzError && err.status === 401) {
      stopGuide();
      showLogin();
    }
  }
}

function startGuide() {
  renderHeader();
  showScreen('guide');
  stopGuide();
  state.guidePoll = setInterval(pollGuide, GUIDE_POLL_MS);
  pollGuide();
}

function stopGuide() {
  clearInterval(state.guidePoll);
  state.guidePoll = null;
}

async function guideJoin(tk, btn) {
  if (state.room) return;
  btn.disabled = true;
  try {
    const answer = await fetchJSON(`/api/rooms/${encodeURIComponent(tk.room_id)}/join`, { method: 'POST', body: {} });
    enterRoom(answer.room, tk, { guest: true, department: '' });
  } catch (err) {
    btn.disabled = false;
    showError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Incoming call
// ---------------------------------------------------------------------------------------------
function showIncoming(offer) {
  state.offer = offer;
  state.presence = Presence.RINGING;
  renderPresence();
  $('incoming-detail').textContent = t('incoming_detail', {
    number: offer.number || '', dept: departmentName(state.departments, offer.department),
  });
  $('accept-call').disabled = false;
  $('decline-call').disabled = false;
  $('incoming-call').hidden = false;
  // The alert dialog takes the focus (keyboard users answer with Enter), unless the staff member
  // is typing somewhere: the presence button that had it was just disabled.
  const active = document.activeElement;
  if (!active || active === document.body || active.disabled) $('accept-call').focus();
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
function enterRoom(roomRef, ticket, { guest = false, department = null } = {}) {
  if (!roomRef || !roomRef.room_id) return;
  if (state.room) state.room.close();
  ticket = ticket || {};
  if (!guest) state.presence = Presence.IN_CALL;
  state.call = { roomId: roomRef.room_id, department: department || ticket.department, guest };
  const deptName = departmentName(state.departments, ticket.department);
  $('call-ticket').textContent = guest
    ? `${t('call_consult', { number: ticket.number || '' })} · ${deptName}`
    : `${ticket.number || ''} · ${deptName}`;
  $('call-peer').textContent = t('call_applicant', { number: ticket.number || '' });
  $('call-status').hidden = false;
  // An invited colleague or a guide leaves; only the call's own staff member ends it for all.
  $('hangup').dataset.i18n = guest ? 'leave_room' : 'hangup';
  $('hangup').textContent = t($('hangup').dataset.i18n);
  showScreen('call');
  let checklist = null;
  const room = new RoomSession({
    roomId: roomRef.room_id,
    token: roomRef.token,
    base: roomRef.base,
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    extraRemotes: $('remote-extra'),
    chatLog: $('chat-log'),
    preferRole: Role.APPLICANT,
    onRemoteMedia: (main) => { $('call-status').hidden = Boolean(main); },
    onParticipants: () => { if (checklist) checklist.refreshMatters(); },
    onNotice: (doc) => { if (checklist) checklist.show(doc); },
    onEnded: () => {
      if (state.room !== room) return;
      state.room = null;
      state.call = null;
      // The server's staff:state (wrap_up, then available) may already have come in.
      if (state.presence === Presence.IN_CALL) state.presence = Presence.AVAILABLE;
      backToDesk();
      note(t('call_ended'));
    },
  });
  checklist = new ChecklistPanel(room);
  state.checklist = checklist;
  checklist.render();
  state.room = room;
  room.start().catch((err) => showError(err));
  renderInvitePanel();
}

function backToDesk() {
  if (state.user && state.user.role === Role.GUIDE) {
    showScreen('guide');
    renderInvitePanel();
    pollGuide();
    return;
  }
  renderDesk();
  renderInvites();
  showScreen('desk');
  renderInvitePanel();
}

async function hangup() {
  if (!state.room) {
    backToDesk();
    return;
  }
  if (state.call && state.call.guest) {
    const { roomId } = state.call;
    state.room.close();
    state.room = null;
    state.call = null;
    if (state.user && state.user.role === Role.STAFF) {
      try {
        await fetchJSON(`/api/rooms/${encodeURIComponent(roomId)}/leave`, { method: 'POST', body: {} });
      } catch (err) {
        showError(err);
      }
    }
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
  if (value === Presence.AWAY) payload.reason = $('away-reason').value;
  try {
    const answer = await emitAck(socket, 'presence:set', payload);
    state.presence = answer.presence || value;
    if (value === Presence.AWAY) state.reason = payload.reason;
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
  startDeskBookings(() => state.departments);
  if (socket) socket.disconnect();
  socket = connectNamespace('/staff');
  socket.on('connect_error', (err) => {
    const data = (err && err.data) || {};
    if (socket.active) return; // a network problem: the client retries by itself
    // Refused for a while (the service recovering, a limit): connectNamespace connects again
    // after the wait it names, and the desk (a call in progress) stays as it is.
    if (data.code && data.code !== 'unauthenticated' && data.code !== 'forbidden') return;
    socket.disconnect();
    hideIncoming();
    const text = data.code === 'unauthenticated' || data.code === 'forbidden'
      ? new YzError(data.code, data.message || t('staff_only'), data.message_en).display
      : t('err_network');
    showLogin(text);
  });
  socket.on('staff:state', (msg) => {
    state.staff = msg || {};
    state.presence = (msg && msg.presence) || Presence.OFFLINE;
    state.queues = { ...((msg && msg.queues) || {}) };
    state.longest = { ...((msg && msg.longest) || {}) };
    state.reason = (msg && msg.reason) || null;
    state.wrapUpUntil = msg && Number.isFinite(msg.wrap_up_until) ? msg.wrap_up_until : null;
    // The list is read once per (re)connect, at the first state (the one with `invites`), and
    // again when a count disagrees with it (a callback:new was lost): every read is audited.
    const first = Boolean(msg && Array.isArray(msg.invites));
    if (first || (msg && Number.isFinite(msg.callbacks) && msg.callbacks !== state.callbacks.length)) {
      loadCallbacks();
    }
    if (state.presence !== Presence.RINGING && state.offer) hideIncoming();
    // The first state after a (re)connect: pending invitations, and the call we are in (a
    // reloaded page goes back into it).
    if (msg && Array.isArray(msg.invites)) setInvites(msg.invites);
    if (msg && msg.room && msg.room.room_id && !state.room) {
      enterRoom(msg.room, msg.room.ticket, { guest: Boolean(msg.room.guest) });
      return;
    }
    if (document.body.dataset.current !== 'call') backToDesk();
    else renderPresence();
  });
  socket.on('room:invite', (inv) => { if (inv && inv.room_id) setInvites([...state.invites, inv]); });
  socket.on('room:invite_closed', onInviteClosed);
  socket.on('queue:update', (msg) => {
    if (!msg || !msg.department) return;
    state.queues[msg.department] = msg.waiting ?? 0;
    if ('longest_since' in msg) state.longest[msg.department] = msg.longest_since;
    renderQueues((state.staff && state.staff.departments) || (state.user && state.user.departments));
  });
  // The announcement carries no name or number: the list read (which the server audits) does.
  socket.on('callback:new', (cb) => {
    if (cb && cb.callback_id) loadCallbacks();
  });
  socket.on('call:incoming', showIncoming);
  socket.on('call:withdrawn', onWithdrawn);
  // Signed out elsewhere, disabled or reset by an admin: the server closes the socket next.
  socket.on('session:ended', (msg) => signedOut(sessionEndedText(msg && msg.reason)));
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
  watchSession(signedOut, () => Boolean(state.room));
  if (user.role === Role.GUIDE) startGuide();
  else startDesk();
}


// The desk torn down: the call, the guide's view, the socket and what it showed.
function closeDesk() {
  stopSessionWatch();
  if (state.room) state.room.close();
  state.room = null;
  state.call = null;
  stopGuide();
  hideIncoming();
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
    socket = null;
  }
  state.staff = null;
  setCallbacks([]);
  setInvites([]);
}

// The session is over already (elsewhere, by an admin, or idle): back to the login form.
function signedOut(text = '') {
  closeDesk();
  showLogin(text);
}

async function logout() {
  closeDesk();
  try {
    await fetchJSON('/api/logout', { method: 'POST', body: {} });
  } catch { /* the session is gone either way */ }
  showLogin();
}

async function main() {
  initPage('title_staff');
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('presence-available').addEventListener('click', () => setPresence(Presence.AVAILABLE));
  $('presence-away').addEventListener('click', () => setPresence(Presence.AWAY));
  // Changing the reason while away tells the server the new reason.
  $('away-reason').addEventListener('change', () => {
    if (state.presence === Presence.AWAY) setPresence(Presence.AWAY);
  });
  $('wrap-up-done').addEventListener('click', () => setPresence(Presence.AVAILABLE));
  setInterval(tickClocks, 1000);
  $('accept-call').addEventListener('click', acceptCall);
  $('decline-call').addEventListener('click', declineCall);
  $('hangup').addEventListener('click', hangup);
  $('invite-panel').addEventListener('submit', sendInvite);
  initCallControls(() => state.room);
  initChecklistControls(() => (state.room && state.checklist && state.checklist.room === state.room ? state.checklist : null));
  await loadDesk(state);
  if (state.user) watchSession(signedOut, () => Boolean(state.room));
  if (state.user && state.user.role === Role.GUIDE) startGuide();
  else if (state.user) startDesk();
  else showLogin();
}

main();
