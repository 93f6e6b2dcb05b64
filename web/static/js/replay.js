// The supervisor's synchronized replay of a recording: the media elements of its tracks, and the
// clock that keeps them in step.
//
// One clock (the page's) drives every <video>/<audio>; each element sits at its track's offset
// from the earliest track. After a seek or a press of play the clock waits (up to MAX_WAIT_MS)
// until every track that is on has its picture; while playing, small drift is taken back by
// playing that element a little faster or slower, drift above HARD_SEEK_S by seeking it, a little
// ahead to make up for the time the seek itself takes. Every track stays within 100 ms of the
// clock.

const SYNC_MS = 100;
const DRIFT_OK_S = 0.02; // closer than this: normal speed
const HARD_SEEK_S = 0.2; // farther than this: seek instead of nudging
const NUDGE_S = 1.0; // a nudge aims to take the drift back within this long
const MAX_NUDGE = 0.1; // playbackRate stays within 1 ± this
const MAX_LEAD_S = 0.5; // a correcting seek lands at most this far ahead
const MAX_WAIT_MS = 3000; // a track that does not load in this long is not waited for

export class Replay {
  constructor(items, fallbackDuration, onTick) {
    this.items = items.map((item) => ({ ...item, lead: 0.05, corrected: false }));
    this.fallbackDuration = Math.max(0, fallbackDuration || 0);
    this.onTick = onTick;
    this.position = 0;
    this.playing = false;
    this.startedWall = 0;
    this.startedPos = 0;
    this.waitingSince = null;
    this.timer = setInterval(() => this.tick(), SYNC_MS);
    for (const item of this.items) {
      item.el.addEventListener('loadedmetadata', () => {
        this.sync(true);
        this.onTick(this);
      });
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
    if (!this.playing || this.waitingSince !== null) return this.position;
    return this.startedPos + (performance.now() - this.startedWall) / 1000;
  }

  play() {
    if (this.playing) return;
    if (this.position >= this.duration - 0.05) this.position = 0;
    this.playing = true;
    this.hold();
    this.sync(true);
    this.onTick(this);
  }

  pause() {
    this.position = this.now();
    this.playing = false;
    this.waitingSince = null;
    this.sync(true);
    this.onTick(this);
  }

  seek(seconds) {
    if (this.playing) this.hold();
    this.position = Math.min(Math.max(0, seconds), this.duration || seconds);
    this.sync(true);
    this.onTick(this);
  }

  // Stop the clock where it is until the tracks are ready (see ready()).
  hold() {
    this.position = this.now();
    this.waitingSince = performance.now();
  }

  tick() {
    if (!this.playing) return;
    if (this.waitingSince !== null) {
      if (!this.ready() && performance.now() - this.waitingSince < MAX_WAIT_MS) return;
      this.waitingSince = null;
      this.startedWall = performance.now();
      this.startedPos = this.position;
      this.sync(false);
      this.onTick(this);
      return;
    }
    const pos = this.now();
    const end = this.duration;
    if (end > 0 && pos >= end) {
      this.position = end;
      this.playing = false;
    }
    this.sync(false);
    this.onTick(this);
  }

  // Every track that is on at the clock's position has finished seeking and has its picture.
  ready() {
    return this.items.every(({ el, offset }) => {
      const local = this.position - offset;
      const inside = local >= 0 && !(Number.isFinite(el.duration) && local >= el.duration);
      return !inside || el.error || (!el.seeking && el.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA);
    });
  }

  sync(force) {
    const pos = this.now();
    const running = this.playing && this.waitingSince === null;
    for (const item of this.items) {
      const { el, offset } = item;
      const local = pos - offset;
      const known = Number.isFinite(el.duration);
      const before = local < 0;
      const after = known && local >= el.duration;
      el.closest('figure, .audio-track')?.classList.toggle('not-started', before);
      el.dataset.state = before ? 'waiting' : after ? 'ended'
        : running ? 'playing' : this.playing ? 'loading' : 'paused';
      if (before || after) {
        // Not on yet: its first picture, waiting. Over: paused on its last picture.
        if (!el.paused) el.pause();
        el.playbackRate = 1;
        const rest = before ? 0 : el.duration;
        if (el.readyState > 0 && Math.abs(el.currentTime - rest) > 0.05) el.currentTime = rest;
        continue;
      }
      if (el.readyState === 0) continue;
      const drift = el.currentTime - local; // > 0: ahead of the clock
      if (force || !running) {
        if (Math.abs(drift) > 0.01) el.currentTime = local;
        el.playbackRate = 1;
        item.corrected = false;
      } else if (Math.abs(drift) > HARD_SEEK_S || (el.paused && Math.abs(drift) > DRIFT_OK_S)) {
        // Far off, or just coming on (starting takes a moment too): seek ahead by what the
        // last such seek fell behind.
        if (item.corrected && !el.seeking) {
          item.lead = Math.min(MAX_LEAD_S, Math.max(0, item.lead - drift));
        }
        el.currentTime = Math.max(0, local + item.lead);
        el.playbackRate = 1;
        item.corrected = true;
      } else if (Math.abs(drift) > DRIFT_OK_S) {
        el.playbackRate = 1 - Math.max(-MAX_NUDGE, Math.min(MAX_NUDGE, drift / NUDGE_S));
      } else {
        el.playbackRate = 1;
      }
      if (running && el.paused) el.play().catch(() => {});
      if (!running && !el.paused) el.pause();
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

// The replay's media in `container`: a <video> tile per video track, captioned, with its
// participant's audio under it (audio of a participant without video stands alone). Each element
// knows its offset from `base`, the start of the earliest track. `source(track)` is a track's
// URL, `label(participantId)` names its participant. Returns the items a Replay drives.
export function replayMedia(container, tracks, base, { source, label }) {
  const items = [];
  const videoFigures = new Map();
  // Videos first, so each audio track can sit under its participant's video tile.
  const videosFirst = [...tracks].sort((a, b) => (a.kind === 'video' ? 0 : 1) - (b.kind === 'video' ? 0 : 1));
  for (const tr of videosFirst) {
    const offset = Math.max(0, tr.started_at - base);
    let el;
    if (tr.kind === 'video') {
      const fig = document.createElement('figure');
      fig.className = 'replay-tile';
      el = document.createElement('video');
      el.dataset.testid = 'replay-video';
      el.playsInline = true;
      const caption = document.createElement('figcaption');
      caption.textContent = label(tr.participant_id);
      fig.append(el, caption);
      container.append(fig);
      videoFigures.set(tr.participant_id, fig);
    } else {
      el = document.createElement('audio');
      el.dataset.testid = 'replay-audio';
      const wrap = document.createElement('div');
      wrap.className = 'audio-track';
      const name = document.createElement('span');
      name.textContent = `♪ ${label(tr.participant_id)}`;
      wrap.append(name, el);
      (videoFigures.get(tr.participant_id) || container).append(wrap);
    }
    el.preload = 'auto';
    el.src = source(tr);
    el.dataset.trackId = tr.track_id;
    el.dataset.offset = String(offset);
    items.push({ el, offset });
  }
  return items;
}
