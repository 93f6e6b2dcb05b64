// Kiosk page (applicant, no login): find a department, consent to recording, queue, talk, rate.
// Out of service hours or with a full queue it takes a call-back request instead. A hall guide
// can log in on the kiosk (导服) to put the next applicant in the priority lane. On a registered
// hall screen (its device cookie) the page names its hall, and stops for good when an admin
// revokes the device.
import {
  $, bootData, clearError, connectNamespace, emitAck, fetchJSON, loadDepartments, showError,
  showScreen, submitLogin,
} from './common.js';
import { departmentName, formatHours, formatMoment, initPage, listJoin, t } from './i18n.js';
import { careTime, endCare, initCare } from './care.js';
import { ChecklistView } from './checklist.js';
import { initBooking } from './booking.js';
import { DepartmentRatings } from './ratings.js';
import { InterpreterChoice } from './interpreter.js';
import { initCallControls, RoomSession } from './room.js';
import { initSpeech, resetSpeech } from './speech.js';
import { Role, TicketStatus } from './states.js';
import { watchScreens } from './a11y.js';
import { PrivacyWipe } from './wipe.js';
import { DeviceCheck } from './devicecheck.js';

const STORAGE_KEY = 'yz_ticket';
const interpreter = new InterpreterChoice();
const THANKS_SECONDS = 5;
const CALLBACK_DONE_SECONDS = 10;
const DEPARTMENTS_REFRESH_MS = 60_000; // open_now changes with the clock
const GUIDE_IDLE_MS = 3 * 60_000; // guide mode ends by itself if the guide walks away
const GUIDE_ROLES = [Role.GUIDE, Role.STAFF];
const PHONE = /^[0-9 +-]+$/;
// Leaving these screens for the start, the applicant is done: care mode and mute end with them.
const LAST_SCREENS = new Set(['thanks', 'callback-done', 'declined', 'rating']);

const state = {
  departments: [],
  chosen: null, // department id on the notice screen
  ticket: null, // last Ticket from the server (without token)
  auth: null, // {ticket_id, token} of the current ticket
  room: null, // RoomSession while in a call
  roomId: null,
  rating: null,
  ratings: null, // DepartmentRatings after a 会商 (several departments to rate)
  busy: false,
  thanksTimer: null,
  guide: null, // the logged-in hall guide while guide mode is on
  guideTimer: null,
  callbackDept: null, // department id on the call-back form
  // What the notices say (server config and signaling/privacy.py, through the boot data).
  callbackKeepDays: null,
  noticeVersion: '',
  revoked: false, // this registered kiosk was revoked: the page stays on its notice
};

let socket = null;
const checklist = new ChecklistView();
// Nothing of a person stays on the shared screen (wipe.js): after them, and when they walk away.
const devices = new DeviceCheck();
const privacy = new PrivacyWipe({ isLive: () => Boolean(state.room && !state.room.closed), onWipe: forgetPerson });

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
function normalize(text) {
  return String(text || '').toLowerCase().replace(/\s+/g, '');
}

// Whether a department answers the search, and which of its matters matched.
function searchDepartment(dept, query) {
  if (!query) return { hit: true, matters: [] };
  const matters = (Array.isArray(dept.matters) ? dept.matters : [])
    .filter((m) => normalize(m).includes(query));
  const named = [dept.name_zh, dept.name_en, dept.id].some((n) => normalize(n).includes(query));
  return { hit: named || matters.length > 0, matters };
}

function departmentButton(dept, matters) {
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'btn dept-btn';
  btn.dataset.testid = `dept-${dept.id}`;
  btn.dataset.department = dept.id;
  const closed = dept.open_now === false;
  btn.classList.toggle('closed', closed);
  btn.dataset.open = String(!closed);
  const name = document.createElement('span');
  name.className = 'dept-name';
  name.textContent = departmentName(state.departments, dept.id);
  btn.append(name);
  if (matters.length) {
    const line = document.createElement('span');
    line.className = 'dept-matters';
    line.textContent = t('dept_matches', { matters: listJoin(matters.slice(0, 3)) });
    btn.append(line);
  }
  if (closed) {
    const tag = document.createElement('span');
    tag.className = 'dept-closed';
    tag.dataset.testid = `dept-closed-${dept.id}`;
    tag.textContent = t('dept_closed');
    const hours = document.createElement('span');
    hours.className = 'dept-hours';
    hours.textContent = t('dept_hours', { hours: formatHours(dept.hours) });
    btn.append(tag, hours);
  }
  btn.addEventListener('click', () => chooseDepartment(dept.id));
  return btn;
}

function renderDepartments() {
  const grid = $('department-list');
  grid.replaceChildren();
  const input = $('dept-search');
  const query = normalize(input.value);
  $('dept-search-clear').hidden = !input.value;
  if (!state.departments.length) {
    const empty = document.createElement('p');
    empty.className = 'empty';
    empty.textContent = t('no_departments');
    grid.append(empty);
    $('dept-search-empty').hidden = true;
    return;
  }
  let shown = 0;
  for (const dept of state.departments) {
    if (dept.skill) continue; // an interpreter pool: asked for on the notice screen
    const found = searchDepartment(dept, query);
    if (!found.hit) continue;
    grid.append(departmentButton(dept, found.matters));
    shown += 1;
  }
  $('dept-search-empty').hidden = shown > 0;
}

// open_now and next_open move with the clock: re-read them now and then (the page stays up for days).
async function refreshDepartments() {
  try {
    const data = await fetchJSON('/api/departments');
    if (Array.isArray(data.departments) && data.departments.length) {
      state.departments = data.departments;
      renderDepartments();
    }
  } catch { /* keep the last list */ }
}

// ---------------------------------------------------------------------------------------------
// Guide mode (导服): a hall guide logs in on the kiosk to choose the priority lane for the next
// applicant; the server checks the session cookie, and the guide is logged out after one ticket.
// ---------------------------------------------------------------------------------------------
function renderGuide() {
  const on = Boolean(state.guide);
  $('guide-bar').hidden = !on;
  $('guide-mode').hidden = on;
  $('guide-status').textContent = on
    ? t('guide_active', { name: state.guide.display_name || state.guide.username }) : '';
  $('priority-row').hidden = !on;
  document.body.classList.toggle('guide-on', on);
}

function armGuideTimer() {
  clearTimeout(state.guideTimer);
  if (state.guide) state.guideTimer = setTimeout(() => { guideLogout(); }, GUIDE_IDLE_MS);
}

// The socket's handshake carries the cookie the server checks, so reconnect after a login or
// logout; the 'connect' handler resumes a ticket we hold.
function reconnectSocket() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.disconnect();
    socket.connect();
  });
}

function openGuideLogin() {
  clearError();
  $('login-username').value = '';
  $('login-password').value = '';
  $('login-error').hidden = true;
  showScreen('login');
  $('login-username').focus();
}

async function guideLogin(event) {
  const user = await submitLogin(event);
  if (!user) return;
  if (!GUIDE_ROLES.includes(user.role)) {
    try {
      await fetchJSON('/api/logout', { method: 'POST', body: {} });
    } catch { /* nothing to end */ }
    const err = $('login-error');
    err.textContent = t('guide_only');
    err.hidden = false;
    return;
  }
  state.guide = user;
  renderGuide();
  armGuideTimer();
  await reconnectSocket();
  showScreen('start');
}

async function guideLogout() {
  clearTimeout(state.guideTimer);
  if (!state.guide) return;
  state.guide = null;
  renderGuide();
  try {
    await fetchJSON('/api/logout', { method: 'POST', body: {} });
  } catch { /* the session is gone either way */ }
  await reconnectSocket();
}

function goStart() {
  clearTimeout(state.thanksTimer);
  if (LAST_SCREENS.has(document.body.dataset.current)) endCare();
  closeRoom();
  devices.reset();
  checklist.reset();
  saveAuth(null);
  state.ticket = null;
  state.chosen = null;
  state.rating = null;
  state.callbackDept = null;
  interpreter.reset(state.departments);
  clearCallbackForm();
  if ($('dept-search').value) {
    $('dept-search').value = '';
    renderDepartments();
  }
  showScreen('start');
}

function findDepartment(id) {
  return state.departments.find((d) => d.id === id) || null;
}

function chooseDepartment(id) {
  clearError();
  const dept = findDepartment(id);
  if (dept && dept.open_now === false) {
    showCallback(id, closedText(dept), dept.next_open);
    return;
  }
  state.chosen = id;
  $('notice-department').textContent = t('notice_department', {
    dept: departmentName(state.departments, id),
  });
  $('consent-accept').checked = false;
  $('priority-lane').checked = false;
  interpreter.reset(state.departments);
  $('start-consult').disabled = true;
  showScreen('notice');
}

function closedText(dept) {
  return dept && dept.hours ? t('closed_text', { hours: formatHours(dept.hours) }) : t('closed_text_plain');
}

// ---------------------------------------------------------------------------------------------
// Call-back request: out of service hours or with a full queue
// ---------------------------------------------------------------------------------------------
function showCallback(deptId, reason, nextOpen) {
  state.callbackDept = deptId;
  $('callback-department').textContent = t('notice_department', {
    dept: departmentName(state.departments, deptId),
  });
  $('callback-reason').textContent = reason;
  const next = $('callback-next');
  next.textContent = Number.isFinite(nextOpen) ? t('closed_next', { time: formatMoment(nextOpen) }) : '';
  next.hidden = !next.textContent;
  $('callback-privacy').textContent = t('callback_privacy', {
    dept: departmentName(state.departments, deptId), days: state.callbackKeepDays,
  });
  clearCallbackForm();
  $('callback-error').hidden = true;
  $('callback-submit').disabled = false;
  showScreen('callback');
}

// The applicant's details leave the shared screen as soon as they are sent (or abandoned).
function clearCallbackForm() {
  for (const id of ['callback-name', 'callback-phone', 'callback-note']) $(id).value = '';
  $('callback-consent').checked = false;
}

function callbackProblem(name, phone) {
  if (!name || name.length > 32) return t('callback_bad_name');
  const digits = phone.replace(/[^0-9]/g, '');
  if (!PHONE.test(phone) || digits.length < 5 || digits.length > 20) return t('callback_bad_phone');
  return '';
}

async function submitCallback(event) {
  event.preventDefault();
  if (state.busy || !state.callbackDept) return;
  const name = $('callback-name').value.trim();
  const phone = $('callback-phone').value.trim();
  const note = $('callback-note').value.trim();
  const err = $('callback-error');
  const problem = callbackProblem(name, phone)
    || ($('callback-consent').checked ? '' : t('callback_need_consent'));
  if (problem) {
    err.textContent = problem;
    err.hidden = false;
    return;
  }
  err.hidden = true;
  state.busy = true;
  const btn = $('callback-submit');
  btn.disabled = true;
  btn.textContent = t('callback_sending');
  try {
    const payload = { department: state.callbackDept, name, phone, consent: true };
    if (note) payload.note = note.slice(0, 200);
    const answer = await emitAck(socket, 'callback:request', payload);
    clearCallbackForm();
    showCallbackDone(answer.phone);
  } catch (e) {
    err.textContent = e.display || t('err_generic');
    err.hidden = false;
  } finally {
    state.busy = false;
    btn.disabled = false;
    btn.textContent = t('callback_submit');
  }
}

// `maskedPhone`: the number as the server masked it (138****1234): others see this screen too.
function showCallbackDone(maskedPhone) {
  state.callbackDept = null;
  $('callback-done-text').textContent = t('callback_done_text', { phone: maskedPhone || '' });
  showScreen('callback-done');
  let left = careTime(CALLBACK_DONE_SECONDS);
  const tick = () => {
    if (left <= 0) {
      privacy.wipe();
      return;
    }
    $('callback-done-countdown').textContent = t('callback_done_countdown', { s: left });
    left -= 1;
    state.thanksTimer = setTimeout(tick, 1000);
  };
  clearTimeout(state.thanksTimer);
  tick();
}

async function startConsult() {
  if (state.busy || !state.chosen || !$('consent-accept').checked) return;
  state.busy = true;
  const btn = $('start-consult');
  btn.disabled = true;
  btn.textContent = t('creating_ticket');
  const payload = { department: state.chosen, consent: true, channel: 'kiosk' };
  if (state.guide && $('priority-lane').checked) payload.priority = true;
  if (interpreter.also().length) payload.also = interpreter.also();
  try {
    const answer = await emitAck(socket, 'ticket:create', payload);
    const ticket = answer.ticket;
    saveAuth({ ticket_id: ticket.ticket_id, token: ticket.token, rated: false });
    // A ticket:update may have overtaken this answer; the answer is then the older news.
    if (!state.ticket || state.ticket.ticket_id !== ticket.ticket_id) applyTicket(ticket);
    // One ticket per guide login: the next applicant cannot choose the priority lane.
    if (state.guide) guideLogout();
  } catch (err) {
    if (err.code === 'closed') {
      const dept = findDepartment(state.chosen);
      showCallback(state.chosen, closedText(dept), err.nextOpen ?? (dept && dept.next_open));
    } else if (err.code === 'queue_full') {
      showCallback(state.chosen, t('queue_full_text'), null);
    } else {
      showError(err);
    }
  } finally {
    state.busy = false;
    btn.textContent = t('start_consult');
    btn.disabled = !$('consent-accept').checked;
  }
}

// A ticket taken with a booking code (booking.js, which shows the refusals): followed like any.
async function takeBookedTicket(payload) {
  state.busy = true;
  try {
    const { ticket } = await emitAck(socket, 'ticket:create', payload);
    saveAuth({ ticket_id: ticket.ticket_id, token: ticket.token, rated: false });
    if (!state.ticket || state.ticket.ticket_id !== ticket.ticket_id) applyTicket(ticket);
  } finally {
    state.busy = false;
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
  const current = state.ticket;
  const deptName = departmentName(state.departments, ticket.department);
  switch (ticket.status) {
    case TicketStatus.WAITING:
    case TicketStatus.RINGING: {
      $('waiting-department').textContent = deptName;
      $('ticket-number').textContent = current.number || '';
      $('priority-badge').hidden = !current.priority;
      const pos = $('queue-position');
      pos.dataset.status = ticket.status;
      pos.textContent = ticket.status === TicketStatus.RINGING
        ? t('queue_ringing')
        : t('queue_position', { n: ticket.position ?? '–' });
      renderEta(current);
      showScreen('waiting');
      devices.open();
      break;
    }
    case TicketStatus.CONNECTED:
      if (ticket.room && ticket.room.room_id) enterRoom(ticket);
      break;
    case TicketStatus.ENDED:
      consultationOver();
      break;
    case TicketStatus.CANCELLED:
      goStart();
      showError(t('ticket_cancelled'));
      break;
    case TicketStatus.ABANDONED:
      goStart();
      showError(t('ticket_abandoned'));
      break;
    default:
      break;
  }
}

// The estimated wait; null means nobody of the department is on duty.
function renderEta(ticket) {
  const el = $('queue-eta');
  const ringing = ticket.status === TicketStatus.RINGING;
  if (ringing || !('eta_seconds' in ticket)) {
    el.hidden = true;
    return;
  }
  const eta = ticket.eta_seconds;
  el.hidden = false;
  el.dataset.state = eta === null || eta === undefined ? 'no_staff' : 'eta';
  el.textContent = el.dataset.state === 'no_staff'
    ? t('queue_no_staff')
    : t('queue_eta', { n: Math.max(1, Math.ceil(Number(eta) / 60)) });
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
  const { room_id: roomId, token, base } = ticket.room;
  if (state.room && state.roomId === roomId && !state.room.closed) return;
  closeRoom();
  devices.release();
  state.roomId = roomId;
  const deptName = departmentName(state.departments, ticket.department);
  $('call-ticket').textContent = `${ticket.number || ''} · ${deptName}`;
  $('call-peer').textContent = t('call_with', { dept: deptName });
  $('call-status').hidden = false;
  showScreen('call');
  const room = new RoomSession({
    roomId,
    token,
    base,
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    extraRemotes: $('remote-extra'),
    chatLog: $('chat-log'),
    preferRole: interpreter.pinnedRole(),
    voiceOnly: devices.voiceOnly,
    onNotice: (doc) => checklist.show(doc),
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
  // The sealed notice and its QR code, on the rating and thanks screens.
  checklist.fetchSealed(state.auth);
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
  showMultiRating(false);
  showScreen('rating');
  loadRatingOptions();
}

// After a 会商 the applicant rates each department that took part; with one, the page stays as
// it is (rating-1…5).
async function loadRatingOptions() {
  const auth = state.auth;
  let options;
  try {
    options = await emitAck(socket, 'rating:options', { ticket_id: auth.ticket_id, token: auth.token });
  } catch {
    return; // the single-department rating still works
  }
  if (state.auth !== auth || document.body.dataset.current !== 'rating') return;
  if (options.departments.length < 2) return;
  state.ratings = new DepartmentRatings($('rating-departments'), {
    departments: options.departments, reasons: options.reasons, commentMax: options.comment_max,
    names: state.departments,
    onChange: (any) => { $('rating-submit').disabled = !any; },
  });
  showMultiRating(true);
}

function showMultiRating(on) {
  if (!on) state.ratings = null;
  $('rating-single').hidden = on;
  $('rating-departments').hidden = !on;
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
  const ratings = state.ratings ? state.ratings.values() : null;
  if (state.busy || !state.auth || (ratings ? !ratings.length : !state.rating)) return;
  state.busy = true;
  $('rating-submit').disabled = true;
  try {
    await emitAck(socket, 'rating:submit', {
      ticket_id: state.auth.ticket_id, token: state.auth.token,
      ...(ratings ? { ratings } : { rating: state.rating }),
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
  let left = careTime(THANKS_SECONDS);
  const tick = () => {
    if (left <= 0) {
      privacy.wipe();
      return;
    }
    $('thanks-countdown').textContent = t('thanks_text', { s: left });
    left -= 1;
    state.thanksTimer = setTimeout(tick, 1000);
  };
  clearTimeout(state.thanksTimer);
  tick();
}

// The privacy wipe's part in this page (wipe.js clears the browser's side): a ticket still
// waiting is cancelled (its person walked away), guide mode ends, the page's state is the start
// screen's, and the ticket socket is a new one.
async function forgetPerson() {
  const auth = state.auth;
  const waiting = state.ticket && [TicketStatus.WAITING, TicketStatus.RINGING].includes(state.ticket.status);
  endCare(); // 关怀模式, the sound settings and the caption were that person's
  goStart();
  clearError();
  if (auth && waiting) {
    try {
      await emitAck(socket, 'ticket:cancel', { ticket_id: auth.ticket_id, token: auth.token });
    } catch { /* gone already */ }
  }
  if (state.guide) await guideLogout();
  else if (!state.revoked) await reconnectSocket();
}

// ---------------------------------------------------------------------------------------------
// A registered kiosk (boot data `device`): its name and hall on the start screen; revoked, the
// server closes the socket and the page says so instead of anything else.
// ---------------------------------------------------------------------------------------------
function renderDevice(device) {
  const line = $('kiosk-device');
  line.textContent = device ? t('kiosk_device', { hall: device.hall, name: device.name }) : '';
  line.hidden = !device;
}

function deviceRevoked() {
  state.revoked = true;
  // The server closes the socket next: closed here first, it is no outage to show or retry.
  socket.disconnect();
  clearTimeout(state.thanksTimer);
  clearTimeout(state.guideTimer);
  closeRoom();
  clearCallbackForm();
  clearError();
  renderDevice(null);
  showScreen('revoked');
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
  initCallControls(() => state.room);
  devices.bind();
  for (const btn of document.querySelectorAll('[data-rating]')) {
    btn.addEventListener('click', () => chooseRating(Number(btn.dataset.rating)));
  }
  $('rating-submit').addEventListener('click', submitRating);
  $('rating-skip').addEventListener('click', () => {
    saveAuth(null);
    goStart();
  });
  $('thanks-back').addEventListener('click', () => privacy.wipe('start'));
  $('dept-search').addEventListener('input', renderDepartments);
  $('dept-search-clear').addEventListener('click', () => {
    $('dept-search').value = '';
    renderDepartments();
    $('dept-search').focus();
  });
  $('callback-form').addEventListener('submit', submitCallback);
  $('callback-back').addEventListener('click', goStart);
  $('callback-done-back').addEventListener('click', () => privacy.wipe('start'));
  $('guide-mode').addEventListener('click', openGuideLogin);
  $('login-form').addEventListener('submit', guideLogin);
  $('login-back').addEventListener('click', goStart);
  $('guide-exit').addEventListener('click', () => { guideLogout(); });
  // Any touch while in guide mode keeps it alive.
  document.addEventListener('pointerdown', () => { if (state.guide) armGuideTimer(); });
}

async function main() {
  initPage('title_kiosk');
  watchScreens();
  const boot = bootData();
  state.callbackKeepDays = boot.callback_keep_days;
  state.noticeVersion = boot.consent_notice_version || '';
  $('recording-notice').textContent = t('notice_text', { days: boot.retention_days || 180 });
  for (const id of ['consent-version', 'callback-consent-version']) {
    $(id).textContent = state.noticeVersion ? t('notice_version', { version: state.noticeVersion }) : '';
  }
  bind();
  initCare({ onEnd: resetSpeech });
  initSpeech(() => ({ ticket: state.ticket, chosen: state.chosen ?? state.callbackDept,
    departments: state.departments }));
  showScreen('start');
  try {
    state.departments = await loadDepartments();
  } catch (err) {
    showError(err, { sticky: true });
  }
  renderDepartments();
  // A guide who logged in here before a reload is still in guide mode.
  const { user } = boot;
  if (user && user.username && GUIDE_ROLES.includes(user.role)) {
    state.guide = user;
    armGuideTimer();
  }
  renderGuide();
  renderDevice(boot.device);
  socket = connectNamespace('/kiosk');
  initBooking({ departments: () => state.departments, takeTicket: takeBookedTicket, goStart });
  socket.on('connect', resume);
  socket.on('ticket:update', (ticket) => { if (!state.revoked) applyTicket(ticket); });
  socket.on('device:revoked', deviceRevoked);
  socket.on('interpreter:unavailable', (msg) => interpreter.unavailable(msg, state.departments));
  if (!state.departments.length || !('open_now' in state.departments[0])) refreshDepartments();
  setInterval(refreshDepartments, DEPARTMENTS_REFRESH_MS);
  privacy.start();
}

main();
