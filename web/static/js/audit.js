// Audit page: the security auditor signs in, filters the audit log (who, action, from, to),
// exports it as CSV and checks its tamper-evident chain. Every other role is refused (三权分立).
import {
  $, clearError, el, fetchJSON, formatTime, loadDesk, renderUserHeader, showError,
  showLoginScreen, showScreen, submitLogin, watchSession, YzError,
} from './common.js';
import { hallDate, hallDaysAgo } from './hall_time.js';
import { departmentName, initPage, t } from './i18n.js';
import { Role } from './states.js';

// The actions the service writes, offered in the action filter (any other can be typed).
const ACTIONS = [
  'login', 'login_failed', 'locked', 'logout', 'password_change', 'totp_enroll',
  'account_create', 'account_update', 'account_disable', 'account_enable', 'account_unlock',
  'password_reset', 'totp_reset', 'device_create', 'device_revoke', 'department_save',
  'queue_log_export', 'callback_read',
  'matter_save', 'matter_delete',
  'list', 'view', 'file', 'verify', 'hold', 'release', 'purge', 'export', 'export_file',
  'observe', 'alert_ack', 'audit_read', 'audit_export', 'audit_verify',
];
// Verify takes as long as the log is long.
const VERIFY_TIMEOUT_MS = 300_000;

const state = {
  user: null,
  departments: [],
  busy: false,
};

function label(prefix, value) {
  const key = `${prefix}_${value}`;
  const text = t(key);
  return text === key ? value : text;
}

// ---------------------------------------------------------------------------------------------
// Filters and the CSV link: the same query for both
// ---------------------------------------------------------------------------------------------
function filterQuery() {
  const query = new URLSearchParams();
  for (const name of ['who', 'action', 'from', 'to']) {
    const value = $(`audit-filter-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  return query;
}

function updateExportLink() {
  const query = filterQuery();
  const link = $('audit-export');
  link.href = `/api/audit.csv${query.toString() ? `?${query}` : ''}`;
  link.setAttribute('download', `audit-${query.get('from') || 'start'}-${query.get('to') || 'today'}.csv`);
}

function resetFilters() {
  $('audit-filter-who').value = '';
  $('audit-filter-action').value = '';
  $('audit-filter-to').value = hallDate();
  $('audit-filter-from').value = hallDaysAgo(6);
  updateExportLink();
}

// ---------------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------------
function cell(...children) {
  const td = document.createElement('td');
  td.append(...children);
  return td;
}

function shown(value) {
  if (value === null || value === undefined) return '–';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// What a change did, one line per changed field: "role: staff → guide" (a created thing has no
// before, a removed one no after: each field then shows "–" on that side).
function changeLines(before, after) {
  const missing = (v) => v === null || v === undefined;
  if (missing(before) && missing(after)) return [];
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const was = missing(before) ? {} : before;
  const now = missing(after) ? {} : after;
  if (!isObject(was) || !isObject(now)) return [`${shown(before)} → ${shown(after)}`];
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  return keys
    .filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k}: ${shown(was[k])} → ${shown(now[k])}`);
}

function renderEntries(entries, more) {
  const body = $('audit-body');
  body.replaceChildren();
  for (const entry of entries) {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'audit-row';
    tr.dataset.action = entry.action;
    tr.dataset.who = entry.who;
    const target = [entry.target, entry.recording_id].filter(Boolean).join(' · ');
    const change = changeLines(entry.before, entry.after)
      .map((line) => el('div', { className: 'audit-change', text: line }));
    tr.append(
      cell(formatTime(entry.time)),
      cell(String(entry.seq ?? '–')),
      cell(entry.who || ''),
      cell(label('action', entry.action)),
      cell(target),
      cell(entry.department ? departmentName(state.departments, entry.department) : ''),
      cell(entry.remote || ''),
      cell(entry.detail || ''),
      cell(...change),
    );
    body.append(tr);
  }
  $('audit-empty').hidden = entries.length > 0;
  $('audit-more').hidden = !more;
}

async function loadEntries() {
  $('audit-filter-error').hidden = true;
  updateExportLink();
  const query = filterQuery();
  try {
    const data = await fetchJSON(`/api/audit${query.toString() ? `?${query}` : ''}`);
    renderEntries(data.entries || [], Boolean(data.more));
  } catch (err) {
    if (handleAuthError(err)) return;
    if (err instanceof YzError && err.status === 400) {
      $('audit-filter-error').textContent = err.display;
      $('audit-filter-error').hidden = false;
    } else {
      showError(err);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The chain check
// ---------------------------------------------------------------------------------------------
function verifyText(report) {
  if (report.ok) {
    return t('audit_verify_ok', { n: report.entries, seq: report.head_seq });
  }
  const first = report.first;
  return t('audit_verify_broken', {
    kind: label('audit_kind', first.kind),
    id: first.entry_id || '–',
    seq: first.seq ?? '–',
    time: first.time === null ? '–' : formatTime(first.time),
    message: first.message,
    n: report.problems,
  });
}

async function verifyChain() {
  if (state.busy) return;
  state.busy = true;
  const btn = $('audit-verify');
  const result = $('audit-verify-result');
  btn.disabled = true;
  btn.textContent = t('audit_verifying');
  try {
    const data = await fetchJSON('/api/audit/verify', {
      method: 'POST', body: {}, timeoutMs: VERIFY_TIMEOUT_MS,
    });
    result.textContent = verifyText(data.report);
    result.className = data.report.ok ? 'form-ok' : 'form-error';
    result.dataset.ok = String(data.report.ok);
    result.hidden = false;
    await loadEntries(); // the check is in the log now
  } catch (err) {
    if (!handleAuthError(err)) showError(err);
  } finally {
    state.busy = false;
    btn.disabled = false;
    btn.textContent = t('audit_verify');
  }
}

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------
function showRefusal() {
  $('audit-forbidden').textContent = t('forbidden_audit');
  showScreen('audit-forbidden');
}

// 401: sign in again; 403: this account is not the auditor's.
function handleAuthError(err) {
  if (!(err instanceof YzError)) return false;
  if (err.status === 401) {
    showLogin();
    return true;
  }
  if (err.status === 403) {
    showRefusal();
    return true;
  }
  return false;
}

function showLogin(errorText = '') {
  state.user = null;
  showLoginScreen(errorText);
}

function openAudit() {
  renderUserHeader(state.user);
  if (state.user.role !== Role.AUDITOR) {
    showRefusal();
    return;
  }
  showScreen('audit');
  loadEntries();
}

async function login(event) {
  const user = await submitLogin(event);
  if (!user) return;
  state.user = user;
  clearError();
  watchSession();
  openAudit();
}

async function logout() {
  try {
    await fetchJSON('/api/logout', { method: 'POST', body: {} });
  } catch { /* the session is gone either way */ }
  $('audit-body').replaceChildren();
  $('audit-verify-result').hidden = true;
  showLogin();
}

async function main() {
  initPage('title_audit');
  const actions = $('audit-actions');
  for (const action of ACTIONS) {
    const option = document.createElement('option');
    option.value = action;
    option.label = label('action', action);
    actions.append(option);
  }
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('audit-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    loadEntries();
  });
  $('audit-filter-reset').addEventListener('click', () => {
    resetFilters();
    loadEntries();
  });
  for (const name of ['who', 'action', 'from', 'to']) {
    $(`audit-filter-${name}`).addEventListener('input', updateExportLink);
  }
  $('audit-verify').addEventListener('click', verifyChain);
  resetFilters();
  await loadDesk(state);
  if (!state.user) {
    showLogin();
    return;
  }
  openAudit();
}

main();
