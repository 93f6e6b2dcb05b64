// What every page uses: DOM helpers, the boot data the server renders into the page, errors and
// the error banner, fetchJSON, Socket.IO (connect, ack promises), the login form (_login.html)
// and the user in the header, and number and time formats that do not depend on the language.
import { io } from '/static/vendor/socket.io/socket.io.esm.min.js';
import { hallParts } from './hall_time.js';
import { currentLang, t } from './i18n.js';

// ---------------------------------------------------------------------------------------------
// DOM
// ---------------------------------------------------------------------------------------------
export const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

// Show exactly one [data-screen] section.
export function showScreen(name) {
  for (const el of document.querySelectorAll('[data-screen]')) {
    el.hidden = el.dataset.screen !== name;
  }
  document.body.dataset.current = name;
}

// An element with a class, a test id and text (all optional), and children: el('p', { className:
// 'muted', testid: 'note', text: '…' }, child, …).
export function el(tag, { className = '', testid = '', text = null } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (testid) node.dataset.testid = testid;
  if (text !== null) node.textContent = text;
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Boot data: <script type="application/json" id="yz-boot">, built by server/http/pages.py
// ---------------------------------------------------------------------------------------------
export function bootData() {
  const el = document.getElementById('yz-boot');
  if (!el) return {};
  try {
    return JSON.parse(el.textContent || '{}') || {};
  } catch {
    return {};
  }
}

// The departments applicants ask for: interpreter pools (`skill`, signaling/skills.py) are rung
// like departments, but applicants never choose them: no matters, no statistics or cases filter.
export function serviceDepartments(departments) {
  return departments.filter((d) => !d.skill);
}

export async function loadDepartments() {
  const boot = bootData();
  if (Array.isArray(boot.departments) && boot.departments.length) return boot.departments;
  const data = await fetchJSON('/api/departments');
  return data.departments || [];
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------
export class YzError extends Error {
  constructor(code, message, messageEn, status = 0) {
    super(message || code);
    this.code = code;
    this.messageZh = message || '';
    this.messageEn = messageEn || '';
    this.status = status;
  }

  // The text to show the user, in the page language.
  get display() {
    if (currentLang() === 'en') return this.messageEn || this.messageZh || t('err_generic');
    return this.messageZh || this.messageEn || t('err_generic');
  }

  static from(errorObject, status = 0) {
    const e = errorObject || {};
    const err = new YzError(e.code || 'internal', e.message, e.message_en, status);
    // Extra facts some errors carry: `detail` (the admin API's validation), `next_open` (closed).
    err.detail = e.detail ?? null;
    err.nextOpen = e.next_open ?? null;
    // other_node: the base ("/n/<name>") of the server process that hosts the room.
    err.base = typeof e.base === 'string' ? e.base : null;
    // unavailable: the seconds to wait before trying again.
    err.retryAfter = Number.isFinite(e.retry_after) ? e.retry_after : null;
    return err;
  }
}

// An error the page itself raises (timeouts, network), with the text in both languages.
function pageError(code, key, status = 0) {
  return new YzError(code, t(key, {}, 'zh'), t(key, {}, 'en'), status);
}

export function errorText(err) {
  if (err instanceof YzError) return err.display;
  return t('err_generic');
}

let errorTimer = null;

// One shared error banner per page (data-testid="error-message"). `unavailable` is either the
// service recovering from the loss of its Redis (not an error of the user's: the status banner
// says it) or its Redis being full (an error to show): /healthz tells which.
export function showError(errOrText, { sticky = false } = {}) {
  if (errOrText instanceof YzError && errOrText.code === 'unavailable') {
    serviceDegraded().then((degraded) => {
      if (degraded) setServiceDegraded(true); else displayError(errOrText, sticky);
    });
    return;
  }
  displayError(errOrText, sticky);
}

function displayError(errOrText, sticky) {
  const el = document.querySelector('[data-testid="error-message"]');
  const text = typeof errOrText === 'string' ? errOrText : errorText(errOrText);
  if (!el) {
    console.error(text);
    return;
  }
  el.textContent = text;
  el.hidden = false;
  clearTimeout(errorTimer);
  if (!sticky) errorTimer = setTimeout(() => { el.hidden = true; }, 8000);
}

export function clearError() {
  const el = document.querySelector('[data-testid="error-message"]');
  if (el) el.hidden = true;
  clearTimeout(errorTimer);
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------
export async function fetchJSON(url, { method = 'GET', body, timeoutMs = 15000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' }
        : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') {
      throw pageError('timeout', 'err_timeout');
    }
    throw pageError('network', 'err_network');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok || !data || data.ok === false) {
    // A room API answered by a process that does not host the room: ask the one that does, once.
    if (data && data.error && data.error.code === 'other_node' && typeof data.error.base === 'string'
        && url.startsWith('/api/rooms/')) {
      return fetchJSON(data.error.base + url, { method, body, timeoutMs });
    }
    if (data && data.error && data.error.code === 'unavailable') noteUnavailable();
    if (data && data.error) throw YzError.from(data.error, response.status);
    throw pageError(`http_${response.status}`, 'err_generic', response.status);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Socket.IO
// ---------------------------------------------------------------------------------------------
const ACK_TIMEOUT_MS = 10000;

// The status banner (data-testid="connection-status"): shown while a socket is down
// ("reconnecting") or while the service recovers from losing its Redis ("degraded": the server
// says so with `service:state`, or an answer is `unavailable`); body[data-service] says which.
const status = { downSockets: new Set(), degraded: false, poll: null };
const HEALTH_POLL_MS = 2000;

function renderStatus() {
  document.body.dataset.service = status.degraded ? 'degraded' : 'ok';
  const banner = document.querySelector('[data-testid="connection-status"]');
  if (!banner) return;
  banner.hidden = !status.degraded && status.downSockets.size === 0;
  banner.textContent = status.degraded ? t('service_degraded') : t('disconnected');
}

// Is the service without its Redis now? (A page that cannot reach /healthz either: yes.)
async function serviceDegraded() {
  try {
    return (await fetch('/healthz', { cache: 'no-store' })).status === 503;
  } catch {
    return true;
  }
}

// An answer was `unavailable`: the banner, if that is the service recovering.
function noteUnavailable() {
  serviceDegraded().then((degraded) => { if (degraded) setServiceDegraded(true); });
}

// While degraded, /healthz is asked every 2 s too: a page without a socket (the supervisor's)
// hears of the recovery that way.
function setServiceDegraded(degraded) {
  status.degraded = degraded;
  clearInterval(status.poll);
  status.poll = null;
  if (degraded) {
    status.poll = setInterval(async () => {
      try {
        const response = await fetch('/healthz', { cache: 'no-store' });
        if (response.ok) setServiceDegraded(false);
      } catch { /* still away */ }
    }, HEALTH_POLL_MS);
  }
  renderStatus();
}

// Connect to a namespace, with the status banner kept up to date. The caller re-reads its state
// on every 'connect'; after the service recovered, the server sends it again by itself.
// `base` ("" or "/n/<name>") reaches one server process through nginx: a room's socket goes to
// the process that hosts the room (docs/operations.md, "Several processes and machines").
export function connectNamespace(namespace, { base = '' } = {}) {
  // WebSocket only: one connection stays on one process, so no sticky sessions are needed when
  // nginx spreads connections over several (long polling's requests would land on any of them).
  // A room's socket at another base needs its own connection (io() would reuse the page's).
  const socket = io(namespace, {
    path: `${base}/socket.io/`, transports: ['websocket'], forceNew: base !== '',
  });
  const setDown = (down) => {
    if (down) status.downSockets.add(socket); else status.downSockets.delete(socket);
    renderStatus();
  };
  socket.on('connect', () => setDown(false));
  socket.on('disconnect', (reason) => {
    // A disconnect we asked for is not an outage.
    if (reason !== 'io client disconnect') setDown(true);
  });
  socket.io.on('reconnect_attempt', () => setDown(true));
  socket.on('service:state', ({ state } = {}) => setServiceDegraded(state !== 'ok'));
  // Refused with a reason (a limit, the service recovering or full): say why, and connect again
  // after the wait it names (Socket.IO does not retry a refusal by itself).
  socket.on('connect_error', (err) => {
    if (!err || !err.data || !err.data.code) return; // a network error: the client retries
    showError(YzError.from(err.data), { sticky: true });
    const wait = Number.isFinite(err.data.retry_after) ? err.data.retry_after : 30;
    setTimeout(() => {
      clearError();
      socket.connect();
    }, wait * 1000);
  });
  return socket;
}

// Emit with an acknowledgement; resolves with the answer when ok, rejects with YzError.
export async function emitAck(socket, event, payload = {}, timeoutMs = ACK_TIMEOUT_MS) {
  let answer;
  try {
    answer = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch {
    throw pageError('timeout', 'err_timeout');
  }
  if (!answer || typeof answer !== 'object') {
    throw pageError('internal', 'err_generic');
  }
  if (answer.ok === false) {
    if (answer.error && answer.error.code === 'unavailable') noteUnavailable();
    throw YzError.from(answer.error);
  }
  return answer;
}

// ---------------------------------------------------------------------------------------------
// The login form (_login.html) and the user in the header (_desk.html)
// ---------------------------------------------------------------------------------------------
// The logged-in user: from the page the server rendered, else asked from the server.
export async function currentUser() {
  const boot = bootData();
  if (boot.user && boot.user.username) return boot.user;
  // The server rendered the page and said nobody is logged in: no need to ask again.
  if (boot.has_user) return null;
  try {
    return (await fetchJSON('/api/me')).user || null;
  } catch {
    return null;
  }
}

// The start of a desk page (staff, supervisor, admin): the department names (a failure is shown
// and the page goes on without them), then the logged-in user, or null for the login form.
export async function loadDesk(state) {
  try {
    state.departments = await loadDepartments();
  } catch (err) {
    showError(err);
  }
  state.user = await currentUser();
  if (state.user) watchSession();
  return state.user;
}

// The header's user name and logout button, for the pages with a login.
export function renderUserHeader(user) {
  const name = $('user-name');
  name.textContent = user ? user.display_name || user.username : '';
  name.hidden = !user;
  $('logout').hidden = !user;
}

// The login form of _login.html, shown with an optional error message.
export function showLoginScreen(errorText = '') {
  if (!errorText) {
    try {
      errorText = sessionStorage.getItem(SIGNED_OUT_KEY) || '';
      sessionStorage.removeItem(SIGNED_OUT_KEY);
    } catch { /* storage off */ }
  }
  renderUserHeader(null);
  const err = $('login-error');
  err.textContent = errorText;
  err.hidden = !errorText;
  showScreen('login');
  $('login-username').focus();
}

// The login form of _login.html: post it, show the server's message on failure; then what the
// server asks for before the service is the person's: a new password ("password"), the second
// factor ("enroll"). Returns the user once all is done, null otherwise.
export async function submitLogin(event) {
  event.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const code = $('login-totp').value.trim();
  const err = $('login-error');
  if (!username || !password) {
    err.textContent = t('login_missing');
    err.hidden = false;
    return null;
  }
  const btn = $('login-submit');
  btn.disabled = true;
  btn.textContent = t('login_busy');
  err.hidden = true;
  let answer;
  try {
    answer = await fetchJSON('/api/login', {
      method: 'POST', body: { username, password, code },
    });
  } catch (e) {
    if (e instanceof YzError && (e.code === 'totp_required' || e.code === 'bad_totp')) {
      // The password was right; the account has a second factor.
      $('login-totp-field').hidden = false;
      $('login-totp').value = '';
      $('login-totp').focus();
    } else {
      $('login-password').value = '';
    }
    err.textContent = e instanceof YzError ? e.display : t('err_generic');
    err.hidden = false;
    return null;
  } finally {
    btn.disabled = false;
    btn.textContent = t('login_submit');
  }
  $('login-password').value = '';
  $('login-totp').value = '';
  $('login-totp-field').hidden = true;
  session.idleTimeout = answer.idle_timeout || session.idleTimeout;
  let next = answer.next;
  if (next === 'password') next = await changePasswordStep();
  if (next === 'enroll') await enrollStep();
  return answer.user;
}

// Resolves with the server's `next` once a form's submit handler returns it (the handler shows
// its own errors and returns undefined to stay on the form).
function formStep(screen, formTestid, handler, focusTestid) {
  showScreen(screen);
  $(focusTestid).focus();
  return new Promise((resolve) => {
    const form = $(formTestid);
    form.onsubmit = async (event) => {
      event.preventDefault();
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      try {
        const next = await handler();
        if (next !== undefined) {
          form.onsubmit = null;
          resolve(next);
        }
      } finally {
        button.disabled = false;
      }
    };
  });
}

function formError(testid, text) {
  const err = $(testid);
  err.textContent = text;
  err.hidden = !text;
}

// The forced password change (password-change screen of _login.html).
function changePasswordStep() {
  $('password-reason').textContent = t('password_reason_first');
  for (const id of ['password-current', 'password-new', 'password-confirm']) $(id).value = '';
  formError('password-error', '');
  return formStep('password-change', 'password-change-form', async () => {
    const current = $('password-current').value;
    const next = $('password-new').value;
    if (!current || !next) return formError('password-error', t('password_missing'));
    if (next !== $('password-confirm').value) {
      return formError('password-error', t('password_mismatch'));
    }
    try {
      const answer = await fetchJSON('/api/password', { method: 'POST', body: { current, new: next } });
      return answer.next || null;
    } catch (e) {
      return formError('password-error', e instanceof YzError ? e.display : t('err_generic'));
    }
  }, 'password-current');
}

// An SVG (text, e.g. a QR code from the API) as an image source: the CSP lets pages show
// data: images, not inline SVG markup.
export function svgImageSource(svg) {
  const bytes = new TextEncoder().encode(svg);
  return `data:image/svg+xml;base64,${btoa(String.fromCharCode(...bytes))}`;
}

// The second-factor enrolment (totp-enroll screen), then the recovery codes, shown once.
async function enrollStep() {
  const setup = await fetchJSON('/api/totp/setup', { method: 'POST', body: {} });
  $('totp-enroll-qr').src = svgImageSource(setup.qr_svg);
  $('totp-enroll-qr').alt = setup.uri;
  $('totp-enroll-secret').textContent = setup.secret;
  $('totp-enroll-code').value = '';
  formError('totp-enroll-error', '');
  const codes = await formStep('totp-enroll', 'totp-enroll-form', async () => {
    const code = $('totp-enroll-code').value.trim();
    if (!/^[0-9]{6}$/.test(code)) return formError('totp-enroll-error', t('totp_missing'));
    try {
      return (await fetchJSON('/api/totp/enroll', { method: 'POST', body: { code } }))
        .recovery_codes;
    } catch (e) {
      return formError('totp-enroll-error', e instanceof YzError ? e.display : t('err_generic'));
    }
  }, 'totp-enroll-code');
  $('recovery-codes').replaceChildren(...codes.map((c) => el('li', { text: c })));
  showScreen('recovery-codes');
  $('recovery-continue').focus();
  await new Promise((resolve) => {
    $('recovery-continue').onclick = () => { $('recovery-continue').onclick = null; resolve(); };
  });
}

// ---------------------------------------------------------------------------------------------
// The session's idle timeout: the page's own activity keeps it alive (at most one keep-alive a
// minute); a warning shows in the last minute; at the end the page signs out by itself.
// ---------------------------------------------------------------------------------------------
const session = {
  idleTimeout: 0, timer: null, lastTouch: 0, onSignedOut: null, isBusy: null, listening: false,
};
const SIGNED_OUT_KEY = 'yz_signed_out';
const TOUCH_EVERY_MS = 60000;
const WARN_BEFORE_S = 60;

async function touchSession() {
  session.lastTouch = Date.now();
  $('idle-warning').hidden = true;
  try {
    await fetchJSON('/api/session/touch', { method: 'POST', body: {} });
  } catch (e) {
    if (e instanceof YzError && (e.code === 'session_expired' || e.code === 'unauthenticated')) {
      signedOut(t('idle_expired'));
    }
  }
}

function onActivity() {
  if (session.timer && Date.now() - session.lastTouch > TOUCH_EVERY_MS) touchSession();
}

function signedOut(text) {
  stopSessionWatch();
  const callback = session.onSignedOut;
  if (callback) callback(text);
}

export function stopSessionWatch() {
  clearInterval(session.timer);
  session.timer = null;
  $('idle-warning').hidden = true;
}

// By default a page signed out by its idle timeout reloads (which closes everything it had open)
// and its login form says why.
function reloadSignedOut(text) {
  try {
    sessionStorage.setItem(SIGNED_OUT_KEY, text);
  } catch { /* storage off: the form shows without the reason */ }
  window.location.reload();
}

// Watch the signed-in session of a desk page; `onSignedOut(text)` tears the page down and shows
// the login form with `text`; while `isBusy()` (in a call) the page counts as active.
export function watchSession(onSignedOut = reloadSignedOut, isBusy = () => false) {
  session.onSignedOut = onSignedOut;
  session.isBusy = isBusy;
  session.idleTimeout = session.idleTimeout || bootData().idle_timeout || 0;
  if (!session.idleTimeout) return;
  stopSessionWatch();
  session.lastTouch = Date.now();
  if (!session.listening) {
    session.listening = true;
    for (const type of ['pointerdown', 'keydown', 'wheel']) {
      document.addEventListener(type, onActivity, { passive: true, capture: true });
    }
    $('idle-continue').addEventListener('click', touchSession);
  }
  session.timer = setInterval(() => {
    if (session.isBusy() && Date.now() - session.lastTouch > TOUCH_EVERY_MS) touchSession();
    const left = Math.round(session.idleTimeout - (Date.now() - session.lastTouch) / 1000);
    if (left <= 0) {
      signedOut(t('idle_expired'));
    } else if (left <= WARN_BEFORE_S) {
      $('idle-warning-text').textContent = t('idle_warning', { seconds: left });
      $('idle-warning').hidden = false;
    }
  }, 1000);
}

// Why the server ended a desk's session (`session:ended`), in words.
export function sessionEndedText(reason) {
  const key = `session_reason_${reason}`;
  const words = t(key);
  return t('session_ended', { reason: words === key ? t('session_reason_expired') : words });
}

// The forbidden screen of _desk.html: the account may not use this page.
export function showForbidden(text) {
  $('forbidden-message').textContent = text;
  showScreen('forbidden');
}

// ---------------------------------------------------------------------------------------------
// Numbers and times
// ---------------------------------------------------------------------------------------------
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

export function formatTime(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return '–';
  const p = hallParts(new Date(epochSeconds * 1000));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

// The hall's hour and minute of an epoch time (a chat message's 14:05).
export function formatClock(epochSeconds) {
  const p = hallParts(new Date(epochSeconds * 1000));
  return `${p.hour}:${p.minute}`;
}

// Seconds since an epoch time, for live "longest wait" clocks; never negative.
export function secondsSince(epochSeconds) {
  if (!Number.isFinite(epochSeconds)) return null;
  return Math.max(0, Date.now() / 1000 - epochSeconds);
}

// An API error's `detail` as lines of text (a string, a list, or an object of field: problem).
export function detailLines(detail) {
  if (detail === null || detail === undefined || detail === '') return [];
  if (typeof detail === 'string') return [detail];
  if (Array.isArray(detail)) return detail.flatMap((d) => detailLines(d));
  if (typeof detail === 'object') {
    if (detail.msg || detail.message) {
      const where = Array.isArray(detail.loc) ? detail.loc.join('.') : detail.field || detail.loc;
      return [where ? `${where}: ${detail.msg || detail.message}` : String(detail.msg || detail.message)];
    }
    return Object.entries(detail).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return [String(detail)];
}
