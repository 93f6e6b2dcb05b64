// Spoken prompts at the kiosk: each step is said in Mandarin and shown as a caption. The server
// renders the speak_* texts with espeak-ng (server/speech.py); without it the browser's own zh
// voice speaks, else the caption alone. Mute and volume hold for the current applicant only.
import { $, fetchJSON } from './common.js';
import { t } from './i18n.js';
import { TicketStatus } from './states.js';

const DEFAULT_VOLUME = 0.8;
const MAX_URLS = 200; // rendered prompts remembered by the page
const SCREEN_PROMPTS = {
  start: 'speak_start',
  notice: 'speak_notice',
  declined: 'speak_declined',
  call: 'speak_call',
  rating: 'speak_rating',
  thanks: 'speak_thanks',
  callback: 'speak_callback',
  'callback-done': 'speak_callback_done',
  revoked: 'speak_revoked',
};

const speech = {
  muted: false,
  volume: DEFAULT_VOLUME,
  off: false, // the server has speech turned off
  seq: 0, // the newest prompt wins: older ones stop
  lastKey: null,
  urls: new Map(), // Mandarin text → audio url (null: no espeak-ng on the server)
  context: () => ({}),
};

// Tests and operators can see what was heard: the keys of the prompts that played, newest last.
function record(key) {
  const audio = $('speech-audio');
  const played = (audio.dataset.played || '').split(' ').filter(Boolean);
  played.push(key);
  audio.dataset.played = played.slice(-50).join(' ');
}

async function audioUrl(text) {
  if (speech.urls.has(text)) return speech.urls.get(text);
  const answer = await fetchJSON(`/api/speech?text=${encodeURIComponent(text)}`);
  if (answer.off) {
    speech.off = true;
    renderControls();
  }
  if (speech.urls.size >= MAX_URLS) speech.urls.clear();
  speech.urls.set(text, answer.url || null);
  return answer.url || null;
}

function stop() {
  const audio = $('speech-audio');
  if (!audio.paused) audio.pause();
  if ('speechSynthesis' in window) window.speechSynthesis.cancel();
}

async function playAudio(key, url, seq) {
  const audio = $('speech-audio');
  const advancing = () => {
    if (seq !== speech.seq) {
      audio.removeEventListener('timeupdate', advancing);
    } else if (audio.currentTime > 0) {
      audio.removeEventListener('timeupdate', advancing);
      record(key);
    }
  };
  audio.addEventListener('timeupdate', advancing);
  audio.src = url;
  audio.volume = speech.volume;
  try {
    await audio.play();
  } catch {
    audio.removeEventListener('timeupdate', advancing); // refused, or the next prompt came
  }
}

function speakInBrowser(key, text) {
  if (!('speechSynthesis' in window)) return;
  const voice = window.speechSynthesis.getVoices().find((v) => /^(zh|cmn)/i.test(v.lang));
  if (!voice) return; // no Mandarin voice: the caption alone
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.voice = voice;
  utterance.lang = voice.lang;
  utterance.volume = speech.volume;
  utterance.addEventListener('start', () => record(key));
  window.speechSynthesis.speak(utterance);
}

// Say prompt `key` (a speak_* string) with its fields, and show it in the page language.
async function say(key, params = {}) {
  speech.lastKey = key;
  const seq = ++speech.seq;
  stop();
  if (speech.off) return;
  const caption = $('speech-caption');
  caption.textContent = t(key, params);
  caption.hidden = false;
  if (speech.muted) return;
  const text = t(key, params, 'zh');
  let url = null;
  try {
    url = await audioUrl(text);
  } catch {
    url = null; // the server could not render it: the browser's voice, if any
  }
  if (seq !== speech.seq || speech.muted || speech.off) return;
  if (url) await playAudio(key, url, seq);
  else speakInBrowser(key, text);
}

function departmentZh(id) {
  const dept = (speech.context().departments || []).find((d) => d.id === id);
  return dept ? dept.name_zh || dept.name_en || id : id;
}

// A new screen, or the ticket's state on the waiting screen: its prompt, once per step.
function onStep() {
  const screen = document.body.dataset.current;
  const { ticket, chosen } = speech.context();
  if (screen === 'waiting') {
    if (!ticket || !ticket.number) return;
    const ringing = ticket.status === TicketStatus.RINGING;
    const key = ringing ? 'speak_ringing' : 'speak_waiting';
    if (key !== speech.lastKey) say(key, { number: ticket.number, n: ticket.position ?? 1 });
    return;
  }
  const key = SCREEN_PROMPTS[screen];
  if (!key || key === speech.lastKey) return;
  if (key === 'speak_notice') say(key, { dept: departmentZh(chosen) });
  else say(key);
}

function renderControls() {
  const toggle = $('speak-toggle');
  toggle.hidden = speech.off;
  $('speak-volume').hidden = speech.off;
  if (speech.off) $('speech-caption').hidden = true;
  toggle.setAttribute('aria-pressed', String(speech.muted));
  toggle.textContent = t(speech.muted ? 'sound_off' : 'sound_on');
  $('speak-volume').value = String(Math.round(speech.volume * 100));
}

// The next applicant hears the prompts again, at the usual volume.
export function resetSpeech() {
  // The caption may hold the last person's number: it goes with them.
  stop();
  speech.lastKey = null;
  $('speech-caption').textContent = '';
  $('speech-caption').hidden = true;
  speech.muted = false;
  speech.volume = DEFAULT_VOLUME;
  $('speech-audio').volume = speech.volume;
  renderControls();
}

// `context()` gives {ticket, chosen, departments} of the kiosk page at the moment of a step.
export function initSpeech(context) {
  speech.context = context;
  const volume = $('speak-volume');
  volume.setAttribute('aria-label', t('sound_volume'));
  $('speak-toggle').addEventListener('click', () => {
    speech.muted = !speech.muted;
    if (speech.muted) stop();
    renderControls();
  });
  volume.addEventListener('input', () => {
    speech.volume = Number(volume.value) / 100;
    $('speech-audio').volume = speech.volume;
  });
  new MutationObserver(onStep).observe(document.body,
    { attributes: true, attributeFilter: ['data-current'] });
  new MutationObserver(onStep).observe($('queue-position'),
    { attributes: true, attributeFilter: ['data-status'] });
  new MutationObserver(() => { if (!$('error-message').hidden) say('speak_error'); })
    .observe($('error-message'), { attributes: true, attributeFilter: ['hidden'] });
  renderControls();
}
