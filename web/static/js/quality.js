// The call's network quality from the peer connection's getStats (round-trip time, loss, the
// available outgoing bitrate) on an indicator, and the automatic audio-only fallback: on a poor
// connection the own video stops (the others see the camera off) and comes back when it is better.
import { $ } from './common.js';
import { t } from './i18n.js';

const SAMPLE_MS = 2000;
const POOR_SAMPLES = 2; // poor this many times in a row: video off
const GOOD_SAMPLES = 3; // good this many times in a row after that: video back

// `sample`: {rtt (seconds), loss (0..1), bitrate (bits/s, 0 when unknown)} → good | fair | poor.
// The bitrate bounds sit below the browser's first estimate (about 300 kbit/s), so that a call
// just begun is not judged by an estimate that has not ramped up yet.
export function classify({ rtt = 0, loss = 0, bitrate = 0 }) {
  if (rtt > 0.5 || loss > 0.1 || (bitrate > 0 && bitrate < 100_000)) return 'poor';
  if (rtt > 0.25 || loss > 0.03 || (bitrate > 0 && bitrate < 200_000)) return 'fair';
  return 'good';
}

async function readSample(pc) {
  const sample = { rtt: 0, loss: 0, bitrate: 0 };
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      sample.rtt = Math.max(sample.rtt, s.currentRoundTripTime || 0);
      sample.bitrate = s.availableOutgoingBitrate || sample.bitrate;
    } else if (s.type === 'remote-inbound-rtp') {
      sample.loss = Math.max(sample.loss, s.fractionLost || 0);
      sample.rtt = Math.max(sample.rtt, s.roundTripTime || 0);
    }
  });
  return sample;
}

export class CallQuality {
  constructor(room) {
    this.room = room;
    this.level = null;
    this.poor = 0;
    this.good = 0;
    this.paused = false; // the video is off because of the connection (not the person)
    this.forced = null; // a test's sample in place of getStats
    this.timer = null;
  }

  start() {
    this.timer = setInterval(() => { this.sample().catch(() => {}); }, SAMPLE_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    const el = $('call-quality');
    if (el) el.hidden = true;
  }

  // Test hook: judge `sample` instead of the connection's statistics from now on (null: the
  // statistics again), and at once.
  force(sample) {
    this.forced = sample;
    if (sample) this.feed(sample);
  }

  async sample() {
    const pc = this.room.pc;
    if (this.forced) {
      this.feed(this.forced);
      return;
    }
    if (!pc || pc.connectionState !== 'connected') return;
    this.feed(await readSample(pc));
  }

  feed(sample) {
    if (this.room.closed) return;
    this.level = classify(sample);
    this.poor = this.level === 'poor' ? this.poor + 1 : 0;
    this.good = this.level === 'good' ? this.good + 1 : 0;
    const room = this.room;
    if (!this.paused && this.poor >= POOR_SAMPLES && room.cameraOn && !room.noCamera && !room.observer) {
      this.paused = true;
      room.setCamera(false).catch(() => {});
    } else if (this.paused && this.good >= GOOD_SAMPLES) {
      this.paused = false;
      if (!room.cameraOn) room.setCamera(true).catch(() => {});
    }
    this.render();
  }

  render() {
    const el = $('call-quality');
    if (!el) return;
    el.hidden = false;
    el.dataset.level = this.level;
    el.dataset.paused = String(this.paused);
    el.textContent = t(this.paused ? 'quality_paused' : `quality_${this.level}`);
  }
}
