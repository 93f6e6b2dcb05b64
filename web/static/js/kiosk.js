// Kiosk page (applicant, no login): choose a department, consent to recording, queue, talk, rate.
import {
  $, RoomSession, clearError, connectNamespace, departmentName, emitAck, initPage,
  loadDepartments, showError, showScreen, t,
} from './common.js';

const STORAGE_KEY = 'yz_ticket';
const THANKS_SECONDS = 5;

const state = {
  departments: [],
  chosen: null, // department id on the notice screen
  ticket: null, // last Ticket from the server (without token)
  auth: null, // {ticket_id, token} of the current ticket
  room: null, // RoomSession while in a call
  roomId: null,
  rating: null,
  busy: false,
  thanksTimer: null,
};

let socket = null;

function saveAuth(auth) {
  state.auth = auth;
  if (auth) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(auth));
  else sessionStorage.removeItem(STORAGE_KEY);
}

function loadAuth() {
  try {
    const auth = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
    return auth && auth.ticket_id && auth.token ? auth : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Start screen
// ---------------------------------------------------------------------------------------------
function renderDepartments() {
  const grid = $('department-list');
  grid.replaceChildren();
  if (!state.departments.length) {
    const empty = document.createElement('p');
    empty.className = 'empty';
    empty.textContent = t('no_departments');
    grid.append(empty);
    return;
  }
  for (const dept of state.departments) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'btn dept-btn';
    btn.dataset.testid = `dept-${dept.id}`;
    btn.dataset.department = dept.id;
    btn.textContent = departmentName(state.departments, dept.id);
    btn.addEventListener('click', () => chooseDepartment(dept.id));
    grid.append(btn);
  }
}

function goStart() {
  clearTimeout(state.thanksTimer);
  closeRoom();
  saveAuth(null);
  state.ticket = null;
  state.chosen = null;
  state.rating = null;
  showScreen('start');
}

function chooseDepartment(id) {
  clearError();
  state.chosen = id;
  $('notice-department').textContent = t('notice_department', {
    dept: departmentName(state.departments, id),
  });
  $('consent-accept').checked = false;
  $('start-consult').disabled = true;
  showScreen('notice');
}

async function startConsult() {
  if (state.busy || !state.chosen || !$('consent-accept').checked) return;
  state.busy = true;
  const btn = $('start-consult');
  btn.disabled = true;
  btn.textContent = t('creating_ticket');
  try {
    const answer = await emitAck(socket, 'ticket:create', { department: state.chosen, consent: true });
    const ticket = answer.ticket;
    saveAuth({ ticket_id: ticket.ticket_id, token: ticket.token, rated: false });
    // A ticket:update may have overtaken this answer; the answer is then the older news.
    if (!state.ticket || state.ticket.ticket_id !== ticket.ticket_id) applyTicket(ticket);
  } catch (err) {
    showError(err);
  } finally {
    state.busy = false;
    btn.textContent = t('start_consult');
    btn.disabled = !$('consent-accept').checked;
  }
}

// ---------------------------------------------------------------------------------------------
// Ticket state → screen
// ---------------------------------------------------------------------------------------------
function applyTicket(ticket) {
  if (!ticket) return;
  // Updates for a ticket we no longer hold (cancelled, rated) are stale; while ticket:create is
  // in flight, its first update may come before the answer.
  if (state.auth ? ticket.ticket_id !== state.auth.ticket_id : !state.busy) return;
  state.ticket = { ...state.ticket, ...ticket };
  const deptName = departmentName(state.departments, ticket.department);
  switch (ticket.status) {
    case 'waiting':
    case 'ringing': {
      $('waiting-department').textContent = deptName;
      $('ticket-number').textContent = ticket.number || '';
      const pos = $('queue-position');
      pos.dataset.status = ticket.status;
      pos.textContent = ticket.status === 'ringing'
        ? t('queue_ringing')
        : t('queue_position', { n: ticket.position ?? '–' });
      showScreen('waiting');
      break;
    }
    case 'connected':
      if (ticket.room && ticket.room.room_id) enterRoom(ticket);
      break;
    case 'ended':
      consultationOver();
      break;
    case 'cancelled':
      goStart();
      showError(t('ticket_cancelled'));
      break;
    default:
      break;
  }
}

async function cancelConsult() {
  if (!state.auth) {
    goStart();
    return;
  }
  try {
    await emitAck(socket, 'ticket:cancel', { ticket_id: state.auth.ticket_id, token: state.auth.token });
    goStart();
  } catch (err) {
    showError(err);
    // Already gone on the server: nothing left to cancel.
    if (err.code === 'not_found' || err.code === 'bad_state') goStart();
  }
}

// ---------------------------------------------------------------------------------------------
// Call
// ---------------------------------------------------------------------------------------------
function enterRoom(ticket) {
  const { room_id: roomId, token } = ticket.room;
  if (state.room && state.roomId === roomId && !state.room.closed) return;
  closeRoom();
  state.roomId = roomId;
  const deptName = departmentName(state.departments, ticket.department);
  $('call-ticket').textContent = `${ticket.number || ''} · ${deptName}`;
  $('call-peer').textContent = t('call_with', { dept: deptName });
  $('call-status').hidden = false;
  showScreen('call');
  const room = new RoomSession({
    roomId,
    token,
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    extraRemotes: $('remote-extra'),
    preferRole: 'staff',
    onRemoteMedia: (main) => {
      $('call-status').hidden = Boolean(main);
      if (main && main.name) $('call-peer').textContent = main.name;
    },
    onEnded: () => {
      if (state.room === room) consultationOver();
    },
  });
  state.room = room;
  room.start().catch((err) => showError(err));
}

function closeRoom() {
  if (state.room) state.room.close();
  state.room = null;
  state.roomId = null;
}

async function hangup() {
  const room = state.room;
  if (!room) {
    consultationOver();
    return;
  }
  try {
    await room.hangup();
  } catch (err) {
    showError(err);
  }
}

function consultationOver() {
  closeRoom();
  if (!state.auth) {
    showScreen('start');
    return;
  }
  if (state.auth.rated) {
    if (document.body.dataset.current !== 'thanks') showThanks();
    return;
  }
  if (document.body.dataset.current === 'rating') return;
  state.rating = null;
  for (const btn of document.querySelectorAll('[data-rating]')) {
    btn.classList.remove('selected');
    btn.setAttribute('aria-checked', 'false');
  }
  $('rating-submit').disabled = true;
  showScreen('rating');
}

// ---------------------------------------------------------------------------------------------
// Rating and thanks
// ---------------------------------------------------------------------------------------------
function chooseRating(value) {
  state.rating = value;
  for (const btn of document.querySelectorAll('[data-rating]')) {
    const on = Number(btn.dataset.rating) === value;
    btn.classList.toggle('selected', on);
    btn.setAttribute('aria-checked', String(on));
  }
  $('rating-submit').disabled = false;
}

async function submitRating() {
  if (state.busy || !state.rating || !state.auth) return;
  state.busy = true;
  $('rating-submit').disabled = true;
  try {
    await emitAck(socket, 'rating:submit', {
      ticket_id: state.auth.ticket_id, token: state.auth.token, rating: state.rating,
    });
    saveAuth({ ...state.auth, rated: true });
    showThanks();
  } catch (err) {
    showError(err);
    $('rating-submit').disabled = false;
  } finally {
    state.busy = false;
  }
}

function showThanks() {
  closeRoom();
  showScreen('thanks');
  let left = THANKS_SECONDS;
  const tick = () => {
    if (left <= 0) {
      goStart();
      return;
    }
    $('thanks-countdown').textContent = t('thanks_text', { s: left });
    left -= 1;
    state.thanksTimer = setTimeout(tick, 1000);
  };
  clearTimeout(state.thanksTimer);
  tick();
}

// ---------------------------------------------------------------------------------------------
// Socket: re-read the ticket after every (re)connect.
// ---------------------------------------------------------------------------------------------
async function resume() {
  const auth = loadAuth();
  if (!auth) return;
  state.auth = auth;
  try {
    const answer = await emitAck(socket, 'ticket:resume', { ticket_id: auth.ticket_id, token: auth.token });
    applyTicket(answer.ticket);
  } catch (err) {
    if (err.code === 'not_found' || err.code === 'forbidden' || err.code === 'unauthenticated') {
      goStart();
    } else {
      showError(err);
    }
  }
}

function bind() {
  $('consent-accept').addEventListener('change', () => {
    $('start-consult').disabled = !$('consent-accept').checked || state.busy;
  });
  $('start-consult').addEventListener('click', startConsult);
  $('consent-decline').addEventListener('click', () => showScreen('declined'));
  $('notice-back').addEventListener('click', goStart);
  $('decline-back').addEventListener('click', goStart);
  $('cancel-consult').addEventListener('click', cancelConsult);
  $('hangup').addEventListener('click', hangup);
  for (const btn of document.querySelectorAll('[data-rating]')) {
    btn.addEventListener('click', () => chooseRating(Number(btn.dataset.rating)));
  }
  $('rating-submit').addEventListener('click', submitRating);
  $('rating-skip').addEventListener('click', () => {
    saveAuth(null);
    goStart();
  });
  $('thanks-back').addEventListener('click', goStart);
}

async function main() {
  initPage('title_kiosk');
  bind();
  showScreen('start');
  try {
    state.departments = await loadDepartments();
  } catch (err) {
    showError(err, { sticky: true });
  }
  renderDepartments();
  socket = connectNamespace('/kiosk');
  socket.on('connect', resume);
  socket.on('ticket:update', applyTicket);
}

main();
