// A consultation room as one page sees it: RoomSession, the page's one RTCPeerConnection to the
// server's SFU (the server always offers; the page answers), and the call screen's controls
// (microphone, camera, screen share, chat; the badges and flags of _call.html).
import {
  $, connectNamespace, emitAck, formatClock, showError, YzError,
} from './common.js';
import { t } from './i18n.js';
import { Role } from './states.js';
import { CallQuality } from './quality.js';

const ICE_GATHER_TIMEOUT_MS = 5000;

function waitIceComplete(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ICE_GATHER_TIMEOUT_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// `voiceOnly`: the microphone alone (the applicant chose a call by voice only).
async function openLocalMedia(voiceOnly = false) {
  const constraints = {
    audio: { echoCancellation: true, noiseSuppression: true },
    video: voiceOnly ? false : { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch {
    // A kiosk without a camera can still talk; without both it can still listen.
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      return null;
    }
  }
}

// How long the room's socket may stay down before the page asks where its room is now.
const WHERE_RETRY_MS = 2000;
// How long the own peer connection may stay "disconnected" before the page joins again.
const PC_LOST_AFTER_MS = 4000;
// A room on another process, or moving here from one that died (other_node): a new connection
// after this long, until the room is back or ends (docs/protocol.md, node loss).
const OTHER_NODE_RETRY_MS = 1000;

function playSafely(el) {
  const p = el.play();
  if (p && p.catch) p.catch(() => {});
}

// A consultation room as seen by one page.
//   localVideo:   <video> for the own camera (muted).
//   remoteVideo:  <video> for the main remote participant.
//   extraRemotes: optional container for more participants (joint consultations).
//   preferRole:   which role goes to remoteVideo when several participants are present.
//   voiceOnly:    no camera (missing, refused or declined at the device check).
export class RoomSession {
  constructor({ roomId, token, base = '', localVideo, remoteVideo, extraRemotes = null, preferRole = null,
    chatLog = null, onEnded = () => {}, onParticipants = () => {}, onRemoteMedia = () => {},
    onNotice = null, voiceOnly = false }) {
    this.roomId = roomId;
    this.token = token;
    // The path prefix of the server process that hosts the room ("" or "/n/<name>"): the room's
    // socket connects there; it changes when the room moves to another process.
    this.base = base || '';
    this.whereTimer = null;
    this.onReconnectError = null;
    this.localVideo = localVideo;
    this.remoteVideo = remoteVideo;
    this.extraRemotes = extraRemotes;
    this.preferRole = preferRole;
    this.onEnded = onEnded;
    this.onParticipants = onParticipants;
    this.onRemoteMedia = onRemoteMedia;
    // The room's 一次性告知单 (checklist.js shows it): called with the document on every change.
    this.onNotice = onNotice;
    this.chatLog = chatLog;
    // The own microphone and camera; off means the track is disabled (silence, black frames).
    this.micOn = true;
    this.cameraOn = !voiceOnly;
    // No camera to turn on: a call by voice only (the others see the camera off).
    this.noCamera = voiceOnly;
    // The own shared screen (getDisplayMedia), sent on the transceiver the server offers as
    // `publish.screen`; screenMid is that transceiver's mid while the server receives it.
    this.screenStream = null;
    this.screenMid = null;
    this.socket = null;
    this.pc = null;
    this.localStream = null;
    this.iceServers = [];
    this.participantId = null;
    this.participants = [];
    this.tracksByMid = new Map();
    this.offerChain = Promise.resolve();
    this.joining = Promise.resolve();
    this.closed = false;
    this.endedReason = null;
    this.shownTracks = new Map(); // element -> track ids key, to avoid needless srcObject resets
    this.role = null;
    this.localOpened = false;
    // Set from each offer: no `publish` mids means this page only receives.
    this.observer = false;
    this.hiddenForObserver = [];
    // Reconnection: set while this page's socket or peer connection is down, until the new
    // peer connection is up. joinGen counts joins, so that an offer meant for the connection
    // before a rejoin is not answered on the new one.
    this.reconnecting = false;
    this.joinGen = 0;
    this.lostTimer = null;
    // Participants speaking now (room:speaking), and the one in the main picture.
    this.speaking = new Set();
    this.mainId = null;
    // The room's recording: "on", or "interrupted" when it stopped during the call.
    this.recording = null;
    // The network-quality indicator and audio-only fallback (quality.js), while in the call.
    this.quality = null;
  }

  async start() {
    if (this.chatLog) this.chatLog.replaceChildren();
    renderCallControls(this);
    RoomSession.active.add(this);
    this.quality = new CallQuality(this);
    this.quality.start();
    this.connectSocket();
  }

  // The room's socket at this.base. Socket.IO reconnects by itself after a network drop; every
  // (re)connection joins again with the same token, and the server gives this participant their
  // place back. A socket that stays down may mean the room moved (its process died and another
  // took it over): the page asks any process where the room is now.
  connectSocket() {
    this.socket = connectNamespace('/room', { base: this.base });
    this.socket.on('connect', () => {
      clearTimeout(this.whereTimer);
      this.joining = this.join();
    });
    this.socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return;
      this.setReconnecting(true);
      this.askWhere();
    });
    // On the socket's manager, which a room socket at base "" shares with the page's own socket:
    // kept so that moveTo takes off this listener alone.
    this.onReconnectError = () => this.askWhere();
    this.socket.io.on('reconnect_error', this.onReconnectError);
    this.socket.on('room:offer', (offer) => {
      // The server may send its offer before our join ack arrives; the ack carries the ICE
      // servers the connection needs, so every offer waits for the current join first.
      const joined = this.joining;
      const gen = this.joinGen;
      this.offerChain = this.offerChain.then(() => joined).then(() => {
        if (gen === this.joinGen) return this.answerOffer(offer);
        return undefined;
      }).catch((err) => {
        console.error('room offer failed', err);
        showError(err instanceof YzError ? err : t('err_generic'));
      });
    });
    this.socket.on('room:participants', (msg) => {
      this.participants = (msg && msg.participants) || [];
      if (msg && msg.recording) this.recording = msg.recording;
      this.speaking = new Set(this.participants.filter((p) => p.speaking).map((p) => p.participant_id));
      this.onParticipants(this.participants);
      this.renderRoomState();
      this.refreshRemote();
    });
    this.socket.on('room:speaking', (msg) => {
      if (!msg || !msg.participant_id) return;
      if (msg.speaking) this.speaking.add(msg.participant_id);
      else this.speaking.delete(msg.participant_id);
      this.renderFlags();
    });
    this.socket.on('room:ended', (msg) => this.end((msg && msg.reason) || 'ended'));
    this.socket.on('room:chat', (msg) => this.showChat(msg));
    this.socket.on('notice:update', (msg) => { if (this.onNotice && msg) this.onNotice(msg.notice); });
  }

  // The own camera and microphone, opened at the first offer that asks this page to publish:
  // an observer (a silent supervisor) is never asked, and never opens them.
  async openLocal() {
    if (this.localOpened) return;
    this.localOpened = true;
    this.localStream = await openLocalMedia(this.noCamera);
    if (!this.localStream || (!this.noCamera && this.localStream.getVideoTracks().length === 0)) {
      showError(t('err_camera'));
    }
    if (!this.localStream || this.localStream.getVideoTracks().length === 0) {
      // Without a camera the call goes on by voice: the others are told the camera is off.
      this.noCamera = true;
      if (this.cameraOn) {
        this.cameraOn = false;
        renderCallControls(this);
        this.sendMediaState().catch(() => {});
      }
    }
    if (this.closed) {
      if (this.localStream) for (const track of this.localStream.getTracks()) track.stop();
      return;
    }
    if (this.localVideo && this.localStream) {
      this.localVideo.muted = true;
      this.localVideo.srcObject = this.localStream;
      playSafely(this.localVideo);
    }
    // Mic or camera turned off before they opened: the server was told at the join.
    for (const track of this.localStream ? this.localStream.getAudioTracks() : []) track.enabled = this.micOn;
    for (const track of this.localStream ? this.localStream.getVideoTracks() : []) track.enabled = this.cameraOn;
  }

  // Observers publish nothing: no own tile, no microphone, camera, share or chat controls.
  setObserver(observer) {
    if (this.observer === observer) return;
    this.observer = observer;
    const local = this.localVideo ? this.localVideo.closest('figure') || this.localVideo : null;
    for (const el of [local, $('toggle-mic'), $('toggle-camera'), $('share-screen'), $('chat-form')]) {
      if (!el) continue;
      if (observer) {
        if (!el.hidden) this.hiddenForObserver.push(el);
        el.hidden = true;
      }
    }
    if (!observer) {
      for (const el of this.hiddenForObserver) el.hidden = false;
      this.hiddenForObserver = [];
    }
  }

  // What the room says about itself: that an observer listens (shown to staff, never to the
  // applicant).
  renderRoomState() {
    const note = $('observer-note');
    if (note) {
      note.hidden = this.closed || this.role === Role.APPLICANT || !this.participants.some(
        (p) => p.observer && p.participant_id !== this.participantId);
    }
    const badge = $('recording-badge');
    if (badge) {
      badge.hidden = this.closed || !this.recording;
      badge.dataset.state = this.recording || '';
      badge.textContent = t(this.recording === 'interrupted' ? 'recording_interrupted' : 'recording_on');
    }
    const own = $('call-reconnecting');
    if (own) own.hidden = this.closed || !this.reconnecting;
  }

  setReconnecting(on) {
    if (this.reconnecting === on) return;
    this.reconnecting = on;
    this.renderRoomState();
  }

  // The own peer connection failed, or stayed disconnected for a few seconds, while the socket
  // may still be up: join again (a new peer connection, the same place in the room).
  onConnectionState(pc) {
    if (pc !== this.pc || this.closed) return;
    const state = pc.connectionState;
    if (state === 'connected') {
      clearTimeout(this.lostTimer);
      this.lostTimer = null;
      if (this.socket && this.socket.connected) this.setReconnecting(false);
    } else if (state === 'failed') {
      this.rejoin();
    } else if (state === 'disconnected' && !this.lostTimer) {
      this.lostTimer = setTimeout(() => {
        this.lostTimer = null;
        if (pc === this.pc && pc.connectionState !== 'connected') this.rejoin();
      }, PC_LOST_AFTER_MS);
    }
  }

  rejoin() {
    if (this.closed) return;
    this.setReconnecting(true);
    // Without a socket, its reconnection joins again by itself.
    if (this.socket && this.socket.connected) this.joining = this.join();
  }

  // Connect the room's socket again at another base (the same token joins there).
  moveTo(base) {
    if (this.closed || base === this.base) return;
    this.base = base;
    clearTimeout(this.whereTimer);
    clearTimeout(this.otherNodeTimer);
    const old = this.socket;
    old.disconnect();
    old.removeAllListeners();
    old.io.off('reconnect_error', this.onReconnectError);
    this.setReconnecting(true);
    this.connectSocket();
  }

  // Asked (at most every WHERE_RETRY_MS while the socket is down) at the page's own origin,
  // which any process answers: the room's base now.
  askWhere() {
    if (this.closed || this.whereTimer) return;
    this.whereTimer = setTimeout(async () => {
      this.whereTimer = null;
      if (this.closed || (this.socket && this.socket.connected)) return;
      try {
        const response = await fetch(`/api/rooms/${encodeURIComponent(this.roomId)}/where`, {
          headers: { Accept: 'application/json', 'X-Room-Token': this.token },
          credentials: 'same-origin', cache: 'no-store',
        });
        const data = await response.json();
        if (data && data.ok && typeof data.base === 'string') {
          if (data.base !== this.base) this.moveTo(data.base);
          // Still here, or behind the same address: a socket the server closed (a process that
          // let the room go) is not reconnected by Socket.IO itself.
          else if (this.socket && !this.socket.connected) this.socket.connect();
        } else if (response.status === 404 || response.status === 403) this.end('ended');
      } catch { /* no process answers yet: Socket.IO's retries go on, and ask again */ }
      if (!this.closed && !(this.socket && this.socket.connected)) this.askWhere();
    }, WHERE_RETRY_MS);
  }

  async join() {
    if (this.closed) return;
    this.joinGen += 1;
    try {
      const answer = await emitAck(this.socket, 'room:join', { room_id: this.roomId, token: this.token });
      this.participantId = answer.participant_id;
      this.role = answer.role || null;
      this.recording = answer.recording || null;
      this.iceServers = answer.ice_servers || [];
      this.participants = answer.participants || [];
      this.speaking = new Set(this.participants.filter((p) => p.speaking).map((p) => p.participant_id));
      this.onParticipants(this.participants);
      this.renderRoomState();
      // The conversation so far (the server keeps it), also after a reconnect.
      if (this.chatLog) this.chatLog.replaceChildren();
      for (const msg of answer.chat || []) this.showChat(msg);
      // The notice so far, also after a reconnect (its updates may have been missed).
      if (this.onNotice) {
        emitAck(this.socket, 'notice:get', {}).then((a) => this.onNotice(a.notice)).catch(() => {});
      }
      // The server's participant starts with both on: tell it again after a (re)join.
      if (!this.micOn || !this.cameraOn) this.sendMediaState().catch(() => {});
      // Likewise a screen still shared: the server's new participant shares nothing yet.
      if (this.screenStream) emitAck(this.socket, 'room:share', { on: true }).catch(() => {});
      // A (re)join starts a fresh negotiation on the server, so start a fresh connection too.
      this.resetPeerConnection();
    } catch (err) {
      if (this.closed) return;
      // Reached a process that does not host the room: join at the one that does.
      if (err.code === 'other_node' && typeof err.base === 'string' && err.base !== this.base) {
        this.moveTo(err.base);
        return;
      }
      if (err.code === 'other_node') {
        this.setReconnecting(true);
        clearTimeout(this.otherNodeTimer);
        this.otherNodeTimer = setTimeout(() => {
          if (this.closed) return;
          this.socket.disconnect();
          this.socket.connect(); // its 'connect' joins again
        }, OTHER_NODE_RETRY_MS);
        return;
      }
      // Redis is away and this process cannot check the token (the service's banner says so):
      // join again when asked to retry, rather than show an error and stay out of the call.
      if (err.code === 'unavailable') {
        this.setReconnecting(true);
        clearTimeout(this.otherNodeTimer);
        this.otherNodeTimer = setTimeout(() => {
          if (!this.closed && this.socket.connected) this.joining = this.join();
        }, (err.retryAfter || 2) * 1000);
        return;
      }
      showError(err);
      // The room is gone (ended while we were away): treat as ended.
      if (err.code === 'not_found' || err.code === 'forbidden' || err.code === 'bad_state') {
        this.end(err.code);
      }
    }
  }

  resetPeerConnection() {
    if (this.pc) this.pc.close();
    this.tracksByMid = new Map();
    this.shownTracks = new Map();
    this.screenMid = null;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.addEventListener('track', () => this.refreshRemote());
    pc.addEventListener('connectionstatechange', () => this.onConnectionState(pc));
    clearTimeout(this.lostTimer);
    this.lostTimer = null;
    this.pc = pc;
  }

  async answerOffer({ sdp, publish = {}, tracks = [] }) {
    if (this.closed) return;
    if (!this.pc) this.resetPeerConnection();
    const pc = this.pc;
    this.tracksByMid = new Map((tracks || []).map((tr) => [String(tr.mid), tr]));
    const publishing = publish.audio != null || publish.video != null;
    this.setObserver(!publishing);
    if (publishing) await this.openLocal();
    if (this.closed || pc !== this.pc) return;
    // Nothing of this page's own is sent unless the server offers it a `publish` m-line, so an
    // observer's answer is receive-only.
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const audio = this.localStream ? this.localStream.getAudioTracks()[0] || null : null;
    const video = this.localStream ? this.localStream.getVideoTracks()[0] || null : null;
    const screen = this.screenStream ? this.screenStream.getVideoTracks()[0] || null : null;
    const screenMid = publish.screen != null ? String(publish.screen) : null;
    for (const transceiver of pc.getTransceivers()) {
      const mid = transceiver.mid;
      if (mid === null || transceiver.stopped) continue;
      if (publish.audio != null && mid === String(publish.audio)) {
        await transceiver.sender.replaceTrack(audio);
        transceiver.direction = 'sendonly';
      } else if (publish.video != null && mid === String(publish.video)) {
        await transceiver.sender.replaceTrack(video);
        transceiver.direction = 'sendonly';
      } else if (mid === screenMid) {
        await transceiver.sender.replaceTrack(screen);
        transceiver.direction = screen ? 'sendonly' : 'inactive';
      } else if (mid === this.screenMid) {
        // The share stopped: the server made this m-line inactive; it is reused at the next one.
        await transceiver.sender.replaceTrack(null);
        transceiver.direction = 'inactive';
      }
    }
    this.screenMid = screenMid;
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await waitIceComplete(pc);
    if (this.closed || pc !== this.pc) return;
    await emitAck(this.socket, 'room:answer', { sdp: pc.localDescription.sdp });
    this.refreshRemote();
  }

  // Group received tracks by participant (via transceiver mid → `tracks`) and show them.
  refreshRemote() {
    if (!this.pc || this.closed) return;
    const byParticipant = new Map();
    let screen = null; // a shared screen (the first one, should several people share)
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.mid === null || transceiver.stopped) continue;
      const info = this.tracksByMid.get(String(transceiver.mid));
      if (!info || info.participant_id === this.participantId) continue;
      // An observer publishes nothing and gets no tile (the server forwards nothing of it).
      if (this.participants.some((p) => p.participant_id === info.participant_id && p.observer)) continue;
      const track = transceiver.receiver.track;
      if (!track || track.readyState === 'ended') continue;
      if (info.source === 'screen') {
        if (!screen) screen = track;
        continue;
      }
      if (!byParticipant.has(info.participant_id)) {
        byParticipant.set(info.participant_id, { info, tracks: [] });
      }
      byParticipant.get(info.participant_id).tracks.push(track);
    }
    const entries = [...byParticipant.values()];
    const rank = (e) => {
      const hasVideo = e.tracks.some((tr) => tr.kind === 'video');
      return (e.info.role === this.preferRole ? 0 : 2) + (hasVideo ? 0 : 1);
    };
    entries.sort((a, b) => rank(a) - rank(b));
    const [main, ...rest] = entries;
    this.show(this.remoteVideo, main ? main.tracks : []);
    // Who is in the main (large) picture: an interpreter pinned there for sign language.
    this.remoteVideo.dataset.role = main ? main.info.role : '';
    this.showScreen(screen);
    this.mainId = main ? main.info.participant_id : null;
    if (this.extraRemotes) {
      const wanted = new Set(rest.map((e) => e.info.participant_id));
      for (const el of [...this.extraRemotes.querySelectorAll('[data-participant]')]) {
        if (!wanted.has(el.dataset.participant)) el.remove();
      }
      for (const e of rest) {
        let tile = this.extraRemotes.querySelector(`[data-participant="${CSS.escape(e.info.participant_id)}"]`);
        if (!tile) {
          tile = document.createElement('figure');
          tile.className = 'remote-tile';
          tile.dataset.participant = e.info.participant_id;
          const video = document.createElement('video');
          video.autoplay = true;
          video.playsInline = true;
          video.dataset.testid = 'remote-video-extra';
          const caption = document.createElement('figcaption');
          const badges = document.createElement('div');
          badges.className = 'remote-badges';
          // The main tile's badges (_call.html), with -extra test ids.
          for (const name of ['muted', 'camera-off', 'reconnecting']) {
            const badge = document.createElement('span');
            badge.className = 'remote-badge';
            badge.dataset.testid = `remote-${name}-extra`;
            badge.textContent = t(`remote_${name.replace('-', '_')}`);
            badges.append(badge);
          }
          tile.append(video, caption, badges);
          this.extraRemotes.append(tile);
        }
        tile.querySelector('figcaption').textContent = e.info.name || t(`role_${e.info.role}`);
        this.show(tile.querySelector('video'), e.tracks);
      }
    }
    this.renderFlags();
    this.onRemoteMedia(main ? main.info : null, entries.length);
  }

  // The remote-screen element: shown, larger than the camera, while someone shares a screen.
  showScreen(track) {
    const el = $('remote-screen');
    if (!el) return;
    this.show(el, track ? [track] : []);
    el.hidden = !track;
  }

  // Start or stop sharing the own screen. Starting asks the browser for it (getDisplayMedia),
  // then the server, which offers a transceiver for it (`publish.screen`); stopping tells the
  // server, which makes that transceiver inactive, and ends the capture.
  async setScreenShare(on) {
    if (this.closed || !this.socket) return;
    if (on) {
      if (this.screenStream) return;
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      if (this.closed) {
        for (const track of stream.getTracks()) track.stop();
        return;
      }
      this.screenStream = stream;
      // The browser's own "stop sharing" ends the track.
      for (const track of stream.getVideoTracks()) {
        track.addEventListener('ended', () => {
          if (this.screenStream === stream) this.setScreenShare(false).catch(() => {});
        });
      }
      renderCallControls(this);
      try {
        await emitAck(this.socket, 'room:share', { on: true });
      } catch (err) {
        this.stopScreen();
        throw err;
      }
    } else {
      if (!this.screenStream) return;
      this.stopScreen();
      await emitAck(this.socket, 'room:share', { on: false });
    }
  }

  stopScreen() {
    if (this.screenStream) {
      for (const track of this.screenStream.getTracks()) track.stop();
    }
    this.screenStream = null;
    renderCallControls(this);
  }

  // The badges of every remote picture (muted, camera off, reconnecting: room:participants)
  // and the speaking highlight (room:speaking).
  renderFlags() {
    const wrap = this.remoteVideo ? this.remoteVideo.closest('.remote-wrap') : null;
    this.showFlags(this.mainId, wrap, '');
    if (this.extraRemotes) {
      for (const tile of this.extraRemotes.querySelectorAll('[data-participant]')) {
        this.showFlags(tile.dataset.participant, tile, '-extra');
      }
    }
  }

  showFlags(participantId, tile, suffix) {
    const p = (participantId && this.participants.find((x) => x.participant_id === participantId)) || {};
    const root = tile || document;
    for (const [testid, on] of [['remote-muted', p.muted], ['remote-camera-off', p.camera_off],
      ['remote-reconnecting', p.reconnecting]]) {
      const el = $(`${testid}${suffix}`, root);
      if (el) el.hidden = !on;
    }
    if (tile) tile.dataset.speaking = String(Boolean(participantId) && this.speaking.has(participantId));
  }

  setMic(on) {
    this.micOn = Boolean(on);
    return this.applyLocalMedia();
  }

  setCamera(on) {
    this.cameraOn = Boolean(on);
    return this.applyLocalMedia();
  }

  // Disable (not stop) the own tracks, so turning them back on needs no renegotiation, and tell
  // the others.
  async applyLocalMedia() {
    if (this.localStream) {
      for (const track of this.localStream.getAudioTracks()) track.enabled = this.micOn;
      for (const track of this.localStream.getVideoTracks()) track.enabled = this.cameraOn;
    }
    renderCallControls(this);
    await this.sendMediaState();
  }

  async sendMediaState() {
    if (this.closed || !this.socket || !this.participantId) return;
    await emitAck(this.socket, 'room:media', { audio: this.micOn, video: this.cameraOn });
  }

  show(el, tracks) {
    if (!el) return;
    const key = tracks.map((tr) => tr.id).sort().join(',');
    if (this.shownTracks.get(el) === key) return;
    this.shownTracks.set(el, key);
    el.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (tracks.length) playSafely(el);
  }

  // Send a chat line; every participant (this page too) gets it back as room:chat.
  async sendChat(text) {
    if (this.closed || !this.socket) return;
    await emitAck(this.socket, 'room:chat', { text });
  }

  showChat(msg) {
    if (!this.chatLog || !msg) return;
    const mine = msg.participant_id === this.participantId;
    const item = document.createElement('li');
    item.className = `chat-message ${mine ? 'chat-mine' : 'chat-theirs'}`;
    item.dataset.testid = 'chat-message';
    item.dataset.role = msg.role || '';
    const who = document.createElement('span');
    who.className = 'chat-who';
    const time = Number.isFinite(msg.t) ? formatClock(msg.t) : '';
    who.textContent = `${mine ? t('you') : msg.name || t(`role_${msg.role}`)} ${time}`;
    const text = document.createElement('span');
    text.className = 'chat-text';
    text.textContent = msg.text;
    item.append(who, text);
    this.chatLog.append(item);
    this.chatLog.scrollTop = this.chatLog.scrollHeight;
  }

  // One edit of the notice (notice:add, notice:remove, notice:material, notice:note,
  // notice:sign); answers the new document.
  async editNotice(event, payload) {
    if (this.closed || !this.socket) throw new YzError('bad_state', t('err_generic'), t('err_generic', {}, 'en'));
    return emitAck(this.socket, event, payload);
  }

  async hangup() {
    if (this.closed || !this.socket) return;
    try {
      await emitAck(this.socket, 'room:hangup', {});
    } catch (err) {
      // room:ended usually overtakes the ack and closes our socket, so the ack never comes.
      if (!this.closed) throw err;
    } finally {
      this.end('hangup');
    }
  }

  end(reason) {
    if (this.closed) return;
    this.endedReason = reason;
    this.close();
    this.onEnded(reason);
  }

  // Idempotent: stops the camera, closes the peer connection and the socket.
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.whereTimer);
    RoomSession.active.delete(this);
    clearTimeout(this.otherNodeTimer);
    if (this.quality) this.quality.stop();
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.io.off('reconnect_error', this.onReconnectError);
      this.socket.disconnect();
    }
    if (this.localStream) {
      for (const track of this.localStream.getTracks()) track.stop();
    }
    this.stopScreen();
    for (const el of [this.localVideo, this.remoteVideo]) {
      if (el) el.srcObject = null;
    }
    this.showScreen(null);
    clearTimeout(this.lostTimer);
    this.mainId = null;
    this.renderFlags();
    if (this.extraRemotes) this.extraRemotes.replaceChildren();
    this.setObserver(false);
    this.renderRoomState();
  }
}

// The sessions in progress on this page (one, but a test may look at it: the Chromium tests
// reach a session's socket and peer connection through it to simulate a network drop).
RoomSession.active = new Set();

// The microphone and camera buttons as the room's state says.
function renderCallControls(room) {
  const states = [['toggle-mic', room.micOn, 'mic_mute', 'mic_unmute'],
    ['toggle-camera', room.cameraOn, 'camera_stop', 'camera_start']];
  for (const [testid, on, offKey, onKey] of states) {
    const button = $(testid);
    if (!button) continue;
    button.setAttribute('aria-pressed', String(!on));
    button.textContent = t(on ? offKey : onKey);
  }
  const camera = $('toggle-camera');
  if (camera) camera.disabled = room.noCamera;
  const share = $('share-screen');
  if (share) {
    const sharing = Boolean(room.screenStream) && !room.closed;
    share.setAttribute('aria-pressed', String(sharing));
    share.textContent = t(sharing ? 'share_stop' : 'share_start');
  }
}

// The controls of the call screen (_call.html), wired once per page. `currentRoom()` returns
// the RoomSession in use, or null between calls.
export function initCallControls(currentRoom) {
  const toggles = [['toggle-mic', (room) => room.setMic(!room.micOn)],
    ['toggle-camera', (room) => room.setCamera(!room.cameraOn)],
    ['share-screen', (room) => room.setScreenShare(!room.screenStream)]];
  for (const [testid, toggle] of toggles) {
    const button = $(testid);
    if (!button) continue;
    button.addEventListener('click', () => {
      const room = currentRoom();
      if (room && !room.closed) toggle(room).catch((err) => showError(err));
    });
  }
  const form = $('chat-form');
  const input = $('chat-input');
  const send = $('chat-send');
  if (form) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const room = currentRoom();
      const text = input.value.trim();
      if (!room || !text || send.disabled) return;
      send.disabled = true;
      try {
        await room.sendChat(text);
        input.value = '';
      } catch (err) {
        showError(err);
      } finally {
        send.disabled = false;
      }
    });
  }
}
