// Supervisor page: log in, the live wallboard (queues and staff), list recordings, replay one
// with every track in step.
import {
  $, awayReasonText, clearError, currentUser, departmentName, fetchJSON, formatDuration,
  formatTime, initPage, loadDepartments, secondsSince, showError, showScreen, submitLogin, t,
  YzError,
} from './common.js';

const WALLBOARD_POLL_MS = 2000;
const LONG_WAIT_S = 120;
const PRESENCE_ORDER = ['available', 'ringing', 'in_call', 'wrap_up', 'away', 'offline'];

const state = {
  user: null,
  departments: [],
  recordings: [],
  replay: null,
  wallboard: null, // {poll, clock, inflight}
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
    tr.append(name, cell(depts.join('、')), presence,
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
// Synchronized replay: a wall clock drives every <video>/<audio>; each element starts at its
// track's offset from the earliest track and is nudged back whenever it drifts.
// ---------------------------------------------------------------------------------------------
const DRIFT_S = 0.3;

class Replay {
  constructor(items, fallbackDuration, onTick) {
    this.items = items; // [{el, offset}]
    this.fallbackDuration = Math.max(0, fallbackDuration || 0);
    this.onTick = onTick;
    this.position = 0;
    this.playing = false;
    this.startedWall = 0;
    this.startedPos = 0;
    this.timer = setInterval(() => this.tick(), 200);
    for (const item of items) {
      item.el.addEventListener('loadedmetadata', () => this.onTick(this));
    }
  }

  get duration() {
    let end = this.fallbackDuration;
    for (const { el, offset } of this.items) {
      if (Number.isFinite(el.duration)) end = Math.max(end, offset + el.duration);
    }
    return end;
  }

  now() {
    if (!this.playing) return this.position;
    return this.startedPos + (performance.now() - this.startedWall) / 1000;
  }

  play() {
    if (this.playing) return;
    if (this.position >= this.duration - 0.05) this.position = 0;
    this.playing = true;
    this.startedWall = performance.now();
    this.startedPos = this.position;
    this.sync(true);
    this.onTick(this);
  }

  pause() {
    this.position = this.now();
    this.playing = false;
    this.sync(true);
    this.onTick(this);
  }

  seek(seconds) {
    this.position = Math.min(Math.max(0, seconds), this.duration || seconds);
    if (this.playing) {
      this.startedWall = performance.now();
      this.startedPos = this.position;
    }
    this.sync(true);
    this.onTick(this);
  }

  tick() {
    if (!this.playing) return;
    const pos = this.now();
    const end = this.duration;
    if (end > 0 && pos >= end) {
      this.position = end;
      this.playing = false;
    }
    this.sync(false);
    this.onTick(this);
  }

  sync(force) {
    const pos = this.now();
    for (const { el, offset } of this.items) {
      const local = pos - offset;
      const known = Number.isFinite(el.duration);
      const before = local < 0;
      const after = known && local >= el.duration;
      el.closest('figure, .audio-track')?.classList.toggle('not-started', before);
      if (before || after) {
        if (!el.paused) el.pause();
        if (before && el.currentTime !== 0 && el.readyState > 0) el.currentTime = 0;
        continue;
      }
      if (el.readyState > 0 && (force || Math.abs(el.currentTime - local) > DRIFT_S)) {
        el.currentTime = local;
      }
      if (this.playing && el.paused) el.play().catch(() => {});
      if (!this.playing && !el.paused) el.pause();
    }
  }

  destroy() {
    clearInterval(this.timer);
    for (const { el } of this.items) {
      el.pause();
      el.removeAttribute('src');
      el.load();
    }
  }
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
    const staff = Array.isArray(rec.staff) ? rec.staff.join('、') : rec.staff || '';
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

async function loadRecordings() {
  try {
    const data = await fetchJSON('/api/recordings');
    state.recordings = data.recordings || [];
    renderRecordings();
    showScreen('recordings');
    if (!state.wallboard) startWallboard();
  } catch (err) {
    if (err instanceof YzError && err.status === 401) {
      showLogin();
    } else if (err instanceof YzError && err.status === 403) {
      $('forbidden-message').textContent = err.messageZh || err.messageEn ? err.display
        : t('forbidden_recordings');
      showScreen('forbidden');
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
  };
  const key = `event_${ev.type}`;
  return t(key) === key ? t('event_other', params) : t(key, params);
}

function closePlayer() {
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
}

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
  const items = [];
  const videoFigures = new Map();
  // Videos first, so each audio track can sit under its participant's video tile.
  const videosFirst = [...tracks].sort((a, b) => (a.kind === 'video' ? 0 : 1) - (b.kind === 'video' ? 0 : 1));
  for (const tr of videosFirst) {
    const src = `/api/recordings/${encodeURIComponent(recordingId)}/files/${encodeURIComponent(tr.file)}`;
    const offset = Math.max(0, tr.started_at - base);
    let el;
    if (tr.kind === 'video') {
      const fig = document.createElement('figure');
      fig.className = 'replay-tile';
      el = document.createElement('video');
      el.dataset.testid = 'replay-video';
      el.playsInline = true;
      const caption = document.createElement('figcaption');
      caption.textContent = who(people, tr.participant_id);
      fig.append(el, caption);
      media.append(fig);
      videoFigures.set(tr.participant_id, fig);
    } else {
      el = document.createElement('audio');
      el.dataset.testid = 'replay-audio';
      const wrap = document.createElement('div');
      wrap.className = 'audio-track';
      const label = document.createElement('span');
      label.textContent = `♪ ${who(people, tr.participant_id)}`;
      wrap.append(label, el);
      // Audio sits under its participant's video when there is one.
      (videoFigures.get(tr.participant_id) || media).append(wrap);
    }
    el.preload = 'auto';
    el.src = src;
    el.dataset.trackId = tr.track_id;
    el.dataset.offset = String(offset);
    items.push({ el, offset });
  }
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
    time.addEventListener('click', () => replay.seek(at));
    const text = document.createElement('span');
    text.textContent = eventText(people, ev);
    li.append(time, text);
    events.append(li);
  }

  $('player-title').textContent = t('player_heading', {
    number: recording.ticket_number || timeline.ticket_number || recordingId,
  });
  $('recording-player').hidden = false;
  updateControls(replay);
  $('recording-player').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------
function renderHeader() {
  const name = $('user-name');
  name.textContent = state.user ? state.user.display_name || state.user.username : '';
  name.hidden = !state.user;
  $('logout').hidden = !state.user;
}

function showLogin(errorText = '') {
  state.user = null;
  stopWallboard();
  closePlayer();
  renderHeader();
  const err = $('login-error');
  err.textContent = errorText;
  err.hidden = !errorText;
  showScreen('login');
  $('login-username').focus();
}

async function login(event) {
  const user = await submitLogin(event);
  if (!user) return;
  state.user = user;
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
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('recordings-refresh').addEventListener('click', loadRecordings);
  $('player-close').addEventListener('click', closePlayer);
  $('player-toggle').addEventListener('click', () => {
    if (!state.replay) return;
    if (state.replay.playing) state.replay.pause();
    else state.replay.play();
  });
  $('player-seek').addEventListener('input', (e) => {
    if (state.replay) state.replay.seek(Number(e.target.value));
  });
  try {
    state.departments = await loadDepartments();
  } catch (err) {
    showError(err);
  }
  state.user = await currentUser();
  if (!state.user) {
    showLogin();
    return;
  }
  renderHeader();
  await loadRecordings();
}

main();
