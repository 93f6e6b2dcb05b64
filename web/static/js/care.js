// 关怀模式 (care mode) at the kiosk: larger type and targets, higher contrast, fewer words and
// slower timeouts, for one applicant. A `care` class on <html> drives the CSS (app.css, care block).
import { $ } from './common.js';
import { t } from './i18n.js';

const SLOWER = 2; // the kiosk's timeouts are this many times longer in care mode
const IDLE_MS = 3 * 60_000; // left on at the start screen with nobody there, it goes off

const care = { on: false, idleTimer: null, onEnd: () => {} };

// A kiosk timeout (seconds or ms), longer while care mode is on.
export function careTime(value) {
  return care.on ? value * SLOWER : value;
}

// The shorter care_<key> texts in care mode, the usual ones otherwise.
function applyTexts() {
  for (const el of document.querySelectorAll('[data-i18n]')) {
    const key = el.dataset.i18n;
    const short = `care_${key}`;
    if (t(short) !== short) el.textContent = t(care.on ? short : key);
  }
}

function setCare(on) {
  care.on = on;
  document.documentElement.classList.toggle('care', on);
  $('care-mode').setAttribute('aria-pressed', String(on));
  applyTexts();
  armIdle();
}

function armIdle() {
  clearTimeout(care.idleTimer);
  if (!care.on) return;
  care.idleTimer = setTimeout(() => {
    if (document.body.dataset.current === 'start') endCare();
    else armIdle();
  }, IDLE_MS);
}

// The applicant is done (thanks → start, a reset): the next one starts without care mode, and
// `onEnd` (given to initCare) forgets their other choices.
export function endCare() {
  setCare(false);
  care.onEnd();
}

export function initCare({ onEnd = () => {} } = {}) {
  care.onEnd = onEnd;
  $('care-mode').addEventListener('click', () => setCare(!care.on));
  document.addEventListener('pointerdown', armIdle);
  // The page rewrites some texts (a busy button, a new screen): keep the short ones.
  new MutationObserver(() => { if (care.on) applyTexts(); })
    .observe(document.body, { attributes: true, attributeFilter: ['data-current'] });
  setCare(false);
}
