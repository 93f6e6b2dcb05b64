// Supervisor page: log in, the live wallboard (queues, staff, live rooms to listen in on
// silently), list and filter recordings, replay one with every track in step (replay.js), the
// composite export and storage alerts. The audit log is the auditor's (audit.js), not theirs.
import {
  $, clearError, errorText, fetchJSON, formatDuration, formatTime, loadDesk,
  renderUserHeader, secondsSince, showError, showForbidden, showLoginScreen, showScreen,
  submitLogin, watchSession, YzError,
} from './common.js';
import { awayReasonText, currentLang, departmentName, initPage, listJoin, t } from './i18n.js';
import { Replay, replayMedia } from './replay.js';
import './cases.js'; // the 差评 cases section (_cases.html)
import { RoomSession } from './room.js';
import { Presence, Role } from './states.js';
import './stats.js'; // the statistics section (web/templates/_stats.html)

const WALLBOARD_POLL_MS = 2000;
const LONG_WAIT_S = 120;
const PRESENCE_ORDER = [Presence.AVAILABLE, Presence.RINGING, Presence.IN_CALL, Presence.WRAP_UP,
  Presence.AWAY, Presence.OFFLINE];

const state = {
  user: null,
  departments: [],
  recordings: [],
  replay: null,
  wallboard: null, // {poll, clock, inflight}
  observing: null, // {session, roomId}: the room listened in on
  exportFor: null, // the recording whose export block the player shows
  exportPoll: null,
};

// ---------------------------------------------------------------------------------------------
// Live wallboard: GET /api/wallboard every 2 s; waits and durations tick every second in between.
// ---------------------------------------------------------------------------------------------
function presenceBadge(presence, text) {
  const badge = document.createElement('span');
  badge.className = 'presence-badge';
  badge.dataset.state = presence;
  badge.textContent = text;
  return badge;
}

// A cell whose text is the time since `since`, kept current by tickWallboard().
function clockCell(since, longAfter = Infinity) {
  const td = document.createElement('td');
  td.className = 'clock';
  if (Number.isFinite(since)) td.dataset.since = String(since);
  td.dataset.longAfter = String(longAfter);
  return td;
}

function tickWallboard() {
  for (const td of document.querySelectorAll('[data-testid="wallboard"] td.clock')) {
    const waited = secondsSince(Number(td.dataset.since ?? NaN));
    td.textContent = waited === null ? '–' : formatDuration(waited);
    td.classList.toggle('long', waited !== null && waited >= Number(td.dataset.longAfter));
  }
}

function renderWallboard(data) {
  const queues = $('wallboard-queues-body');
  queues.replaceChildren();
  for (const q of data.queues || []) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'wallboard-queue-row';
    tr.dataset.department = q.department;
    const waiting = cell(String(q.waiting ?? 0), q.waiting > 0 ? 'num busy' : 'num');
    const countsCell = document.createElement('td');
    const counts = document.createElement('div');
    counts.className = 'staff-counts';
    countsCell.append(counts);
    const byState = q.staff || {};
    for (const presence of [...PRESENCE_ORDER, ...Object.keys(byState)]) {
      const n = byState[presence];
      if (!n || counts.querySelector(`[data-state="${CSS.escape(presence)}"]`)) continue;
      counts.append(presenceBadge(presence, `${t(`presence_${presence}`)} ${n}`));
    }
    if (!counts.childElementCount) counts.textContent = '–';
    tr.append(cell(departmentName(state.departments, q.department)), waiting,
      clockCell(q.waiting > 0 ? q.longest_since : NaN, LONG_WAIT_S), countsCell);
    queues.append(tr);
  }
  const staff = $('wallboard-staff-body');
  staff.replaceChildren();
  for (const person of data.staff || []) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'wallboard-staff-row';
    tr.dataset.username = person.username;
    tr.dataset.presence = person.presence;
    const name = document.createElement('td');
    name.textContent = person.display_name || person.username;
    if (person.display_name && person.username) {
      const user = document.createElement('span');
      user.className = 'muted small';
      user.textContent = ` ${person.username}`;
      name.append(user);
    }
    const presence = document.createElement('td');
    presence.append(presenceBadge(person.presence, t(`presence_${person.presence}`)));
    const depts = (person.departments || []).map((id) => departmentName(state.departments, id));
    tr.append(name, cell(listJoin(depts)), presence,
      cell(awayReasonText(person.reason), person.reason === 'missed' ? 'warn' : ''),
      clockCell(person.since));
    staff.append(tr);
  }
  $('wallboard-staff-empty').hidden = (data.staff || []).length > 0;
  $('wallboard-updated').textContent = t('wallboard_updated', {
    time: formatTime(Date.now() / 1000).slice(11),
  });
  tickWallboard();
}

async function pollWallboard() {
  const wb = state.wallboard;
  if (!wb || wb.inflight) return;
  wb.inflight = true;
  try {
    const data = await fetchJSON('/api/wallboard', { timeoutMs: 5000 });
    if (state.wallboard !== wb) return;
    $('wallboard-error').hidden = true;
    $('wallboard').hidden = false;
    renderWallboard(data);
    const live = await fetchJSON('/api/rooms', { timeoutMs: 5000 });
    if (state.wallboard !== wb) return;
    renderLiveRooms(live.rooms || []);
  } catch (err) {
    if (state.wallboard !== wb) return;
    if (err instanceof YzError && err.status === 401) {
      stopWallboard();
      showLogin();
    } else if (err instanceof YzError && err.status === 403) {
      stopWallboard();
      $('wallboard').hidden = true;
    } else {
      $('wallboard-error').hidden = false;
    }
  } finally {
    wb.inflight = false;
  }
}

// Live rooms, each with a Listen in button.
function renderLiveRooms(rooms) {
  const body = $('live-rooms-body');
  body.replaceChildren();
  for (const room of rooms) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'live-room-row';
    tr.dataset.roomId = room.room_id;
    const depts = (room.departments || []).map((id) => departmentName(state.departments, id));
    const actions = document.createElement('td');
    const listen = document.createElement('button');
    listen.type = 'button';
    listen.className = 'btn btn-secondary btn-sm';
    listen.dataset.testid = 'observe-start';
    listen.textContent = t('observe_start');
    listen.disabled = Boolean(state.observing && state.observing.roomId === room.room_id);
    listen.addEventListener('click', () => startObserving(room, listen));
    actions.append(listen);
    tr.append(cell(room.ticket_number || ''), cell(listJoin(depts)), cell(room.staff || ''),
      clockCell(room.started_at), cell(String(room.participants ?? 0), 'num'), actions);
    body.append(tr);
  }
  $('live-rooms-empty').hidden = rooms.length > 0;
  tickWallboard();
}

async function startObserving(room, btn) {
  btn.disabled = true;
  stopObserving();
  let grant;
  try {
    grant = (await fetchJSON(`/api/rooms/${encodeURIComponent(room.room_id)}/observe`, { method: 'POST', body: {} })).room;
  } catch (err) {
    btn.disabled = false;
    showError(err);
    return;
  }
  const session = new RoomSession({
    roomId: grant.room_id,
    token: grant.token,
    base: grant.base,
    localVideo: null,
    remoteVideo: $('remote-video'),
    extraRemotes: $('remote-extra'),
    preferRole: Role.APPLICANT,
    onEnded: () => {
      if (!state.observing || state.observing.session !== session) return;
      stopObserving();
      showError(t('observe_ended'));
    },
  });
  state.observing = { session, roomId: grant.room_id };
  $('observe-title').textContent = t('observe_heading', { number: room.ticket_number || '' });
  $('observe-panel').hidden = false;
  $('observe-panel').scrollIntoView({ behavior: 'smooth', block: 'start' });
  session.start().catch((err) => showError(err));
}

function stopObserving() {
  const current = state.observing;
  state.observing = null;
  if (current) current.session.close();
  $('observe-panel').hidden = true;
  $('remote-extra').replaceChildren();
  for (const btn of document.querySelectorAll('[data-testid="observe-start"]')) btn.disabled = false;
}

function startWallboard() {
  stopWallboard();
  state.wallboard = {
    poll: setInterval(pollWallboard, WALLBOARD_POLL_MS),
    clock: setInterval(tickWallboard, 1000),
    inflight: false,
  };
  pollWallboard();
}

function stopWallboard() {
  if (!state.wallboard) return;
  clearInterval(state.wallboard.poll);
  clearInterval(state.wallboard.clock);
  state.wallboard = null;
}

// ---------------------------------------------------------------------------------------------
// Storage alerts: GET /api/alerts every 10 s; every unacknowledged one in the red banner, each
// with its own acknowledge button (POST /api/alerts/{id}/ack, audited on the server).
// ---------------------------------------------------------------------------------------------
const ALERTS_POLL_MS = 10000;
let alertsPoll = null;

function alertText(alert) {
  return t(`alert_${alert.kind}`, {
    time: formatTime(alert.time), ticket: alert.ticket_number || '–', room: alert.room_id || '',
    detail: alert.detail || '',
  });
}

function renderAlerts(alerts) {
  const open = alerts.filter((a) => !a.acknowledged);
  const list = $('storage-alert-list');
  list.replaceChildren(...open.map((alert) => {
    const li = document.createElement('li');
    li.dataset.alertId = alert.id;
    li.dataset.kind = alert.kind;
    const text = document.createElement('span');
    text.textContent = alertText(alert);
    const ack = document.createElement('button');
    ack.type = 'button';
    ack.className = 'btn btn-danger btn-sm';
    ack.dataset.testid = 'alert-ack';
    ack.textContent = t('alert_ack');
    ack.addEventListener('click', () => acknowledgeAlert(alert.id, ack));
    li.append(text, ' ', ack);
    return li;
  }));
  $('storage-alert').hidden = open.length === 0;
}

async function loadAlerts() {
  try {
    const data = await fetchJSON('/api/alerts');
    renderAlerts(data.alerts || []);
  } catch (err) {
    if (err instanceof YzError && (err.status === 401 || err.status === 403)) stopAlerts();
  }
}

async function acknowledgeAlert(alertId, button) {
  button.disabled = true;
  try {
    await fetchJSON(`/api/alerts/${encodeURIComponent(alertId)}/ack`, { method: 'POST', body: {} });
  } catch (err) {
    showError(err);
  }
  button.disabled = false;
  await loadAlerts();
}

function startAlerts() {
  stopAlerts();
  alertsPoll = setInterval(loadAlerts, ALERTS_POLL_MS);
  loadAlerts();
}

function stopAlerts() {
  if (alertsPoll !== null) clearInterval(alertsPoll);
  alertsPoll = null;
  $('storage-alert').hidden = true;
}

// ---------------------------------------------------------------------------------------------
// Recordings table
// ---------------------------------------------------------------------------------------------
function ratingText(rating) {
  return rating ? `${rating} · ${t(`rating_${rating}`)}` : t('not_rated');
}

function cell(text, className = '') {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderRecordings() {
  const body = $('recordings-body');
  body.replaceChildren();
  for (const rec of state.recordings) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'recording-row';
    tr.dataset.recordingId = rec.recording_id;
    const staff = Array.isArray(rec.staff) ? listJoin(rec.staff) : rec.staff || '';
    tr.append(
      cell(formatTime(rec.started_at)),
      cell(departmentName(state.departments, rec.department)),
      cell(rec.ticket_number || ''),
      cell(staff),
      cell(formatDuration(rec.duration)),
      cell(ratingText(rec.rating), rec.rating && rec.rating <= 2 ? 'bad-rating' : ''),
      cell(rec.complete ? t('complete_yes') : t('complete_no'), rec.complete ? 'ok' : 'warn'),
    );
    const actions = document.createElement('td');
    const play = document.createElement('button');
    play.type = 'button';
    play.className = 'btn btn-primary btn-sm';
    play.dataset.testid = 'recording-play';
    play.textContent = t('recording_play');
    play.addEventListener('click', () => openPlayer(rec.recording_id));
    actions.append(play);
    tr.append(actions);
    body.append(tr);
  }
  $('recordings-empty').hidden = state.recordings.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Filters: GET /api/recordings?from=&to=&department=&staff=&rating=&min_duration=&max_duration=
// &incomplete=1 (the server checks them and answers 400 with a message).
// ---------------------------------------------------------------------------------------------
function option(value, text) {
  const el = document.createElement('option');
  el.value = value;
  el.textContent = text;
  return el;
}

function fillFilterChoices() {
  const dept = $('filter-department');
  const chosen = dept.value;
  const scope = state.user && state.user.role === Role.SUPERVISOR ? state.user.departments || [] : [];
  const depts = state.departments.filter((d) => !scope.length || scope.includes(d.id));
  dept.replaceChildren(option('', t('filter_any')),
    ...depts.map((d) => option(d.id, departmentName(state.departments, d.id))));
  dept.value = chosen;
  const rating = $('filter-rating');
  if (!rating.options.length) {
    rating.append(option('', t('filter_any')), option('none', t('filter_not_rated')),
      ...[5, 4, 3, 2, 1].map((n) => option(String(n), ratingText(n))));
  }
}

function filterQuery() {
  const params = new URLSearchParams();
  const add = (name, testid) => {
    const value = $(testid).value.trim();
    if (value) params.set(name, value);
  };
  add('from', 'filter-from');
  add('to', 'filter-to');
  add('department', 'filter-department');
  add('staff', 'filter-staff');
  add('rating', 'filter-rating');
  add('min_duration', 'filter-min-duration');
  add('max_duration', 'filter-max-duration');
  if ($('filter-incomplete').checked) params.set('incomplete', '1');
  const query = params.toString();
  return query ? `?${query}` : '';
}

function resetFilters(event) {
  event?.preventDefault();
  for (const id of ['filter-from', 'filter-to', 'filter-department', 'filter-staff',
    'filter-rating', 'filter-min-duration', 'filter-max-duration']) {
    $(id).value = '';
  }
  $('filter-incomplete').checked = false;
  loadRecordings();
}

async function loadRecordings() {
  $('filter-error').hidden = true;
  fillFilterChoices();
  try {
    const data = await fetchJSON(`/api/recordings${filterQuery()}`);
    state.recordings = data.recordings || [];
    renderRecordings();
    showScreen('recordings');
    if (!state.wallboard) startWallboard();
    if (alertsPoll === null) startAlerts();
  } catch (err) {
    if (err instanceof YzError && err.status === 400) {
      $('filter-error').textContent = err.display;
      $('filter-error').hidden = false;
    } else if (err instanceof YzError && err.status === 401) {
      showLogin();
    } else if (err instanceof YzError && err.status === 403) {
      showForbidden(err.messageZh || err.messageEn ? err.display : t('forbidden_recordings'));
    } else {
      showError(err);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Player
// ---------------------------------------------------------------------------------------------
function participantMap(timeline) {
  const map = new Map();
  const list = Array.isArray(timeline.participants)
    ? timeline.participants : Object.values(timeline.participants || {});
  for (const p of list) map.set(p.participant_id, p);
  return map;
}

function who(people, participantId) {
  const p = people.get(participantId);
  if (!p) return participantId || t('someone');
  const role = t(`role_${p.role}`);
  return p.name ? `${p.name}（${role}）` : role;
}

function eventText(people, ev) {
  const params = {
    who: who(people, ev.participant_id),
    type: ev.type,
    kind: ev.kind ? t(`kind_${ev.kind}`) : '',
    reason: ev.reason || '',
    rating: ev.rating ? ratingText(ev.rating) : '',
    version: ev.version || '',
    time: Number.isFinite(ev.at) ? formatTime(ev.at) : '',
    // a gap (node_lost): from the lost part's last packet to the new part's first
    seconds: Number.isFinite(ev.until) ? (ev.until - ev.t).toFixed(1) : '?',
  };
  const key = `event_${ev.type}`;
  if (ev.type === 'recording_failed') return t(`alert_${ev.reason}`) || ev.reason;
  return t(key) === key ? t('event_other', params) : t(key, params);
}

function closePlayer() {
  stopExport();
  if (state.replay) state.replay.destroy();
  state.replay = null;
  $('player-media').replaceChildren();
  $('player-events').replaceChildren();
  $('recording-player').hidden = true;
}

function updateControls(replay) {
  const pos = replay.now();
  const dur = replay.duration;
  $('player-toggle').textContent = replay.playing ? t('player_pause') : t('player_play');
  $('player-toggle').dataset.state = replay.playing ? 'playing' : 'paused';
  const seek = $('player-seek');
  seek.max = String(dur || 0);
  if (document.activeElement !== seek) seek.value = String(pos);
  $('player-clock').textContent = `${formatDuration(pos)} / ${formatDuration(dur)}`;
  $('player-clock').dataset.position = pos.toFixed(3);
}

// A 差评 case's replay link (cases.js) opens its recording here.
document.addEventListener('yz:replay', (event) => openPlayer(event.detail));

async function openPlayer(recordingId) {
  closePlayer();
  clearError();
  let data;
  try {
    data = await fetchJSON(`/api/recordings/${encodeURIComponent(recordingId)}`);
  } catch (err) {
    showError(err);
    return;
  }
  const recording = data.recording || {};
  const timeline = data.timeline || {};
  const tracks = (timeline.tracks || []).filter((tr) => tr.file);
  const people = participantMap(timeline);
  const base = tracks.length ? Math.min(...tracks.map((tr) => tr.started_at))
    : timeline.started_at || recording.started_at || 0;
  const media = $('player-media');
  const items = replayMedia(media, tracks, base, {
    source: (tr) => `/api/recordings/${encodeURIComponent(recordingId)}/files/${encodeURIComponent(tr.file)}`,
    label: (participantId) => who(people, participantId),
  });
  if (!tracks.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = t('player_no_tracks');
    media.append(p);
  }
  const fallback = (recording.duration || timeline.duration || 0)
    - Math.max(0, base - (timeline.started_at || base));
  const replay = new Replay(items, fallback, updateControls);
  state.replay = replay;

  const events = $('player-events');
  const list = timeline.events || [];
  if (!list.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = t('player_no_events');
    events.append(li);
  }
  for (const ev of list) {
    const at = Math.max(0, (ev.t ?? base) - base);
    const li = document.createElement('li');
    li.dataset.testid = 'timeline-event';
    li.dataset.type = ev.type;
    const time = document.createElement('button');
    time.type = 'button';
    time.className = 'btn btn-link event-time';
    time.textContent = formatDuration(at);
    time.dataset.testid = 'timeline-event-seek';
    time.addEventListener('click', () => replay.seek(at));
    li.dataset.at = String(at);
    const text = document.createElement('span');
    text.textContent = eventText(people, ev);
    li.append(time, text);
    if (ev.type === 'notice') {
      // The sealed 一次性告知单: its own page, with the signature check.
      const open = document.createElement('a');
      open.className = 'btn btn-link';
      open.dataset.testid = 'timeline-notice';
      open.href = `/recordings/${encodeURIComponent(recordingId)}/notice`;
      open.target = '_blank';
      open.rel = 'noopener';
      open.textContent = t('replay_notice_open');
      li.append(open);
    }
    events.append(li);
  }

  $('player-title').textContent = t('player_heading', {
    number: recording.ticket_number || timeline.ticket_number || recordingId,
  });
  $('recording-player').hidden = false;
  showExport(recordingId);
  updateControls(replay);
  $('recording-player').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---------------------------------------------------------------------------------------------
// Composite export of the recording in the player: start it, poll its progress, then a download
// link. The job runs on the server; closing the player only stops the polling.
// ---------------------------------------------------------------------------------------------
const EXPORT_POLL_MS = 1000;

function stopExport() {
  if (state.exportPoll) clearTimeout(state.exportPoll);
  state.exportPoll = null;
  state.exportFor = null;
}

function exportUrl(recordingId, suffix = '') {
  return `/api/recordings/${encodeURIComponent(recordingId)}/export${suffix}`;
}

function renderExport(recordingId, job) {
  const running = job.state === 'queued' || job.state === 'running';
  const progress = $('export-progress');
  const status = $('export-status');
  const link = $('export-download');
  const error = $('export-error');
  $('export-start').hidden = running || job.state === 'done';
  progress.hidden = !running && job.state !== 'done';
  progress.value = job.progress || 0;
  status.hidden = progress.hidden;
  status.textContent = job.state === 'done' ? t('export_done')
    : job.state === 'queued' ? t('export_queued')
      : t('export_running', { n: job.progress || 0 });
  link.hidden = job.state !== 'done';
  link.href = job.state === 'done' ? exportUrl(recordingId, '.mp4') : '#';
  link.dataset.state = job.state;
  error.hidden = job.state !== 'failed';
  if (job.state === 'failed') {
    const text = currentLang() === 'en' ? job.error_en || job.error : job.error || job.error_en;
    error.textContent = t('export_failed', { error: text || t('err_generic') });
  }
  $('export-block').dataset.state = job.state;
}

function exportError(err) {
  renderExport(state.exportFor, { state: 'none' });
  const error = $('export-error');
  error.textContent = t('export_failed', { error: errorText(err) });
  error.hidden = false;
}

async function pollExport(recordingId) {
  state.exportPoll = null;
  if (state.exportFor !== recordingId) return;
  let job;
  try {
    job = (await fetchJSON(exportUrl(recordingId))).export;
  } catch (err) {
    if (state.exportFor === recordingId) exportError(err);
    return;
  }
  if (state.exportFor !== recordingId) return;
  renderExport(recordingId, job);
  if (job.state === 'queued' || job.state === 'running') {
    state.exportPoll = setTimeout(() => pollExport(recordingId), EXPORT_POLL_MS);
  }
}

function showExport(recordingId) {
  stopExport();
  state.exportFor = recordingId;
  renderExport(recordingId, { state: 'none' });
  $('export-error').hidden = true;
  pollExport(recordingId); // an export made earlier (or running) shows at once
}

async function startExport() {
  const recordingId = state.exportFor;
  if (!recordingId) return;
  $('export-start').disabled = true;
  $('export-error').hidden = true;
  try {
    const job = (await fetchJSON(exportUrl(recordingId), { method: 'POST', body: {} })).export;
    if (state.exportFor !== recordingId) return;
    renderExport(recordingId, job);
    if (state.exportPoll) clearTimeout(state.exportPoll);
    state.exportPoll = setTimeout(() => pollExport(recordingId), EXPORT_POLL_MS);
  } catch (err) {
    if (state.exportFor === recordingId) exportError(err);
  } finally {
    $('export-start').disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------
function renderHeader() {
  renderUserHeader(state.user);
}

function showLogin(errorText = '') {
  state.user = null;
  stopWallboard();
  stopAlerts();
  stopObserving();
  closePlayer();
  showLoginScreen(errorText);
}

async function login(event) {
  const user = await submitLogin(event);
  if (!user) return;
  state.user = user;
  watchSession(undefined, () => Boolean(state.observing));
  renderHeader();
  await loadRecordings();
}


async function logout() {
  try {
    await fetchJSON('/api/logout', { method: 'POST', body: {} });
  } catch { /* the session is gone either way */ }
  state.recordings = [];
  $('recordings-body').replaceChildren();
  showLogin();
}

async function main() {
  initPage('title_supervisor');
  $('filter-form').addEventListener('submit', (event) => {
    event.preventDefault();
    loadRecordings();
  });
  $('filter-reset').addEventListener('click', resetFilters);
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('recordings-refresh').addEventListener('click', loadRecordings);
  $('player-close').addEventListener('click', closePlayer);
  $('observe-stop').addEventListener('click', stopObserving);
  $('export-start').addEventListener('click', startExport);
  $('player-toggle').addEventListener('click', () => {
    if (!state.replay) return;
    if (state.replay.playing) state.replay.pause();
    else state.replay.play();
  });
  $('player-seek').addEventListener('input', (e) => {
    if (state.replay) state.replay.seek(Number(e.target.value));
  });
  await loadDesk(state);
  if (!state.user) {
    showLogin();
    return;
  }
  renderHeader();
  await loadRecordings();
}

main();
