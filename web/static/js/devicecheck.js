// The device check on the kiosk while the applicant waits for the call: see yourself, hear a test
// tone; a missing or refused camera or microphone is explained, with the call by voice only.
import { $ } from './common.js';
import { t } from './i18n.js';

const TONE_HZ = 660;
const TONE_SECONDS = 0.8;

export class DeviceCheck {
  constructor() {
    this.stream = null;
    this.opening = null;
    this.noCamera = false;
    this.noMic = false;
    this.audio = null; // the AudioContext of the test tone
    this.previewing = false; // false once the call (or the next person) needs the devices
  }

  // Wire the buttons once.
  bind() {
    $('device-check-tone').addEventListener('click', () => this.playTone());
    $('device-check-continue').addEventListener('click', () => { $('device-check').dataset.done = 'true'; });
    $('device-check-voice').addEventListener('click', () => {
      this.noCamera = true;
      $('device-check').dataset.done = 'true';
      $('device-check').dataset.voiceOnly = 'true';
    });
  }

  // Whether the call is to be by voice only (no camera, or the applicant chose so).
  get voiceOnly() {
    return this.noCamera;
  }

  // Open the camera and microphone for the preview (once per applicant).
  open() {
    if (!this.opening) {
      this.previewing = true;
      this.opening = this.openDevices();
    }
    return this.opening;
  }

  async openDevices() {
    const box = $('device-check');
    box.hidden = false;
    const media = navigator.mediaDevices;
    let stream = null;
    try {
      stream = await media.getUserMedia({ audio: true, video: true });
    } catch {
      try {
        stream = await media.getUserMedia({ audio: true });
      } catch {
        try {
          stream = await media.getUserMedia({ video: true });
        } catch { /* neither: explained below */ }
      }
    }
    this.noCamera = !stream || stream.getVideoTracks().length === 0;
    this.noMic = !stream || stream.getAudioTracks().length === 0;
    if (!this.previewing) { // the call began (or the person left) meanwhile
      if (stream) for (const track of stream.getTracks()) track.stop();
      return;
    }
    this.stream = stream;
    const preview = $('device-check-preview');
    preview.srcObject = stream && !this.noCamera ? stream : null;
    preview.hidden = this.noCamera;
    const problems = [];
    if (this.noCamera) problems.push(t('device_check_no_camera'));
    if (this.noMic) problems.push(t('device_check_no_mic'));
    const problem = $('device-check-problem');
    problem.textContent = problems.join(' ');
    problem.hidden = !problems.length;
    $('device-check-status').textContent = problems.length ? '' : t('device_check_ok');
    $('device-check-voice').hidden = !this.noCamera || this.noMic;
    $('device-check-continue').hidden = this.noCamera;
    box.dataset.camera = String(!this.noCamera);
    box.dataset.microphone = String(!this.noMic);
  }

  // A short tone through WebAudio: the loudspeaker works if the applicant hears it.
  playTone() {
    if (!this.audio) this.audio = new AudioContext();
    const ctx = this.audio;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = TONE_HZ;
    gain.gain.setValueAtTime(0.2, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + TONE_SECONDS);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + TONE_SECONDS);
    $('device-check').dataset.tone = 'played';
  }

  // The call opens the devices itself: let go of the preview's (the choice stays until reset).
  release() {
    this.previewing = false;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    $('device-check-preview').srcObject = null;
    if (this.audio) this.audio.close().catch(() => {});
    this.audio = null;
  }

  // After the person: the next one checks again.
  reset() {
    this.release();
    this.opening = null;
    this.noCamera = false;
    this.noMic = false;
    const box = $('device-check');
    box.hidden = true;
    for (const key of ['done', 'voiceOnly', 'tone', 'camera', 'microphone']) delete box.dataset[key];
  }
}
