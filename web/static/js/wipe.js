// The shared screen's privacy wipe: after each person, and after a while without a touch (a
// visible countdown first; any touch cancels it), nothing of that person stays on the kiosk.
import { $, bootData, showScreen } from './common.js';
import { t } from './i18n.js';

// The registered kiosk's device cookie is HttpOnly (never seen here) and belongs to the screen;
// every cookie the page can see was set for the person at it (the language choice).
function clearCookies() {
  for (const part of document.cookie.split(';')) {
    const name = part.split('=')[0].trim();
    if (name) document.cookie = `${name}=; path=/; max-age=0; SameSite=Lax`;
  }
}

// Stop every camera/microphone track a <video> still shows, and let go of it.
function releaseVideos() {
  for (const video of document.querySelectorAll('video')) {
    const stream = video.srcObject;
    if (stream && typeof stream.getTracks === 'function') {
      for (const track of stream.getTracks()) track.stop();
    }
    video.srcObject = null;
  }
}

// Screens with nobody's data on them: no idle timer runs there.
const RESTING = ['attract', 'revoked'];

// What the person typed or chose: every form field on the page.
function emptyFields() {
  for (const field of document.querySelectorAll('input, textarea, select')) {
    if (field.type === 'checkbox' || field.type === 'radio') field.checked = false;
    else if (field.tagName === 'SELECT') field.selectedIndex = 0;
    else field.value = '';
  }
}

// The idle timer and the wipe. `isLive()`: a call in progress (never wiped for idleness);
// `onWipe()`: the page forgets its own state (ticket, socket room, lists) before the browser's.
export class PrivacyWipe {
  constructor({ isLive, onWipe }) {
    const idle = bootData().kiosk_idle || {};
    this.idleMs = (Number(idle.seconds) || 60) * 1000;
    this.warningMs = (Number(idle.warning) || 10) * 1000;
    this.isLive = isLive;
    this.onWipe = onWipe;
    this.idleTimer = null;
    this.tickTimer = null;
    this.warningEnds = 0;
  }

  start() {
    for (const type of ['pointerdown', 'keydown', 'input', 'wheel']) {
      document.addEventListener(type, () => this.touch(), { capture: true, passive: true });
    }
    $('attract').addEventListener('click', () => {
      showScreen('start');
      this.touch();
    });
    this.touch();
  }

  // A touch: the countdown starts again (and a warning on screen goes away).
  touch() {
    clearTimeout(this.idleTimer);
    clearTimeout(this.tickTimer);
    this.hideWarning();
    if (RESTING.includes(document.body.dataset.current)) return;
    this.idleTimer = setTimeout(() => this.warn(), this.idleMs - this.warningMs);
  }

  warn() {
    if (this.isLive() || RESTING.includes(document.body.dataset.current)) {
      this.touch();
      return;
    }
    this.warningEnds = Date.now() + this.warningMs;
    $('idle-warning').hidden = false;
    this.tick();
  }

  tick() {
    const left = Math.ceil((this.warningEnds - Date.now()) / 1000);
    if (this.isLive()) {
      this.touch();
      return;
    }
    if (left <= 0) {
      this.wipe();
      return;
    }
    $('idle-warning-text').textContent = t('wipe_warning', { s: left });
    this.tickTimer = setTimeout(() => this.tick(), Math.min(1000, this.warningEnds - Date.now()));
  }

  hideWarning() {
    $('idle-warning').hidden = true;
  }

  // Everything of the person, then the attract screen (or `screen`: the start screen when the
  // person asked for it).
  wipe(screen = 'attract') {
    if (document.body.dataset.current === 'revoked') return;
    clearTimeout(this.idleTimer);
    clearTimeout(this.tickTimer);
    this.hideWarning();
    this.onWipe();
    releaseVideos();
    emptyFields();
    sessionStorage.clear();
    localStorage.clear();
    clearCookies();
    for (const id of ['ticket-number', 'call-ticket', 'call-peer', 'callback-done-text', 'chat-log']) {
      const el = $(id);
      if (el) el.replaceChildren();
    }
    showScreen(screen);
    this.touch();
  }
}
