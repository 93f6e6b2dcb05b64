// Admin page: log in as an administrator, administer the accounts (accounts.js) and the
// registered hall kiosks (devices.js), edit a department's configuration (names, service hours,
// ring and queue settings, AB岗 backups) as JSON and its matters (matters.js), download the
// queue event log.
import {
  initAccounts, loadAccounts, refreshDepartmentNames, resetAccounts,
} from './accounts.js';
import { initDevices, loadDevices, resetDevices } from './devices.js';
import { initMatters, loadMatters, resetMatters } from './matters.js';
import { initBookingAdmin, openBookingAdmin } from './bookings_admin.js';
import {
  $, clearError, detailLines, fetchJSON, loadDesk, renderUserHeader, showError,
  showForbidden, showLoginScreen, showScreen, submitLogin, watchSession, YzError,
} from './common.js';
import { departmentName, initPage, t } from './i18n.js';
import { hallDate, hallDaysAgo } from './hall_time.js';
import { Role } from './states.js';

const state = {
  user: null,
  departments: [],
  chosen: null, // department id in the editor
  busy: false,
};

// ---------------------------------------------------------------------------------------------
// Departments
// ---------------------------------------------------------------------------------------------
function renderDepartmentList() {
  const list = $('admin-department-list');
  list.replaceChildren();
  for (const dept of state.departments) {
    const li = document.createElement('li');
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'btn admin-dept';
    btn.dataset.testid = `admin-dept-${dept.id}`;
    btn.dataset.department = dept.id;
    btn.classList.toggle('active', dept.id === state.chosen);
    btn.setAttribute('aria-current', String(dept.id === state.chosen));
    const name = document.createElement('span');
    name.textContent = departmentName(state.departments, dept.id);
    const id = document.createElement('span');
    id.className = 'muted small';
    id.textContent = dept.id;
    btn.append(name, id);
    btn.addEventListener('click', () => chooseDepartment(dept.id));
    li.append(btn);
    list.append(li);
  }
}

function showFormError(lines) {
  const box = $('department-error');
  box.replaceChildren();
  for (const line of lines.filter(Boolean)) {
    const p = document.createElement('p');
    p.textContent = line;
    box.append(p);
  }
  box.hidden = !box.childElementCount;
}

// 401: log in again; 403: this account may not; anything else is shown where it happened.
function handleAuthError(err) {
  if (!(err instanceof YzError)) return false;
  if (err.status === 401) {
    showLogin();
    return true;
  }
  if (err.status === 403) {
    showForbidden(err.messageZh || err.messageEn ? err.display : t('forbidden_admin'));
    return true;
  }
  return false;
}

function fillEditor(department) {
  $('department-json').value = `${JSON.stringify(department, null, 2)}\n`;
}

async function chooseDepartment(id) {
  clearError();
  state.chosen = id;
  renderDepartmentList();
  $('department-heading').textContent = t('admin_dept_heading', {
    dept: departmentName(state.departments, id),
  });
  $('department-choose').hidden = true;
  $('department-saved').hidden = true;
  showFormError([]);
  try {
    const data = await fetchJSON(`/api/admin/departments/${encodeURIComponent(id)}`);
    if (state.chosen !== id) return;
    fillEditor(data.department || {});
    $('department-form').hidden = false;
  } catch (err) {
    if (!handleAuthError(err)) showError(err);
  }
}

async function saveDepartment() {
  if (state.busy || !state.chosen) return;
  $('department-saved').hidden = true;
  let body;
  try {
    body = JSON.parse($('department-json').value);
  } catch (e) {
    showFormError([t('department_bad_json', { error: e.message })]);
    return;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    showFormError([t('department_not_object')]);
    return;
  }
  showFormError([]);
  state.busy = true;
  const btn = $('department-save');
  btn.disabled = true;
  btn.textContent = t('department_saving');
  try {
    const data = await fetchJSON(`/api/admin/departments/${encodeURIComponent(state.chosen)}`, {
      method: 'PUT', body,
    });
    if (data.department) fillEditor(data.department);
    $('department-saved').hidden = false;
    await refreshDepartments();
  } catch (err) {
    if (!handleAuthError(err)) {
      const lines = [err instanceof YzError ? err.display : t('err_generic')];
      if (err instanceof YzError) lines.push(...detailLines(err.detail));
      showFormError(lines);
    }
  } finally {
    state.busy = false;
    btn.disabled = false;
    btn.textContent = t('department_save');
  }
}

async function refreshDepartments() {
  try {
    const data = await fetchJSON('/api/departments');
    if (Array.isArray(data.departments)) state.departments = data.departments;
  } catch { /* keep the list we have */ }
  renderDepartmentList();
  refreshDepartmentNames();
  if (state.chosen) {
    $('department-heading').textContent = t('admin_dept_heading', {
      dept: departmentName(state.departments, state.chosen),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Queue log: /api/admin/queue-log.csv?from=YYYY-MM-DD&to=YYYY-MM-DD
// ---------------------------------------------------------------------------------------------
function updateLogLink() {
  const from = $('log-from').value;
  const to = $('log-to').value;
  const bad = Boolean(from && to && to < from);
  const link = $('log-download');
  const query = new URLSearchParams();
  if (from) query.set('from', from);
  if (to) query.set('to', to);
  link.href = `/api/admin/queue-log.csv${query.toString() ? `?${query}` : ''}`;
  link.setAttribute('download', `queue-log-${from || 'start'}-${to || 'today'}.csv`);
  link.classList.toggle('disabled', bad);
  link.setAttribute('aria-disabled', String(bad));
  $('log-error').hidden = !bad;
}

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------
function renderHeader() {
  renderUserHeader(state.user);
}

function showLogin(errorText = '') {
  state.user = null;
  showLoginScreen(errorText);
}

function openAdmin() {
  renderHeader();
  if (state.user.role !== Role.ADMIN) {
    showForbidden(t('forbidden_admin'));
    return;
  }
  renderDepartmentList();
  showScreen('admin');
  loadAccounts();
  loadDevices();
  loadMatters();
  openBookingAdmin();
}

async function login(event) {
  const user = await submitLogin(event);
  if (!user) return;
  state.user = user;
  clearError();
  watchSession();
  openAdmin();
}

async function logout() {
  try {
    await fetchJSON('/api/logout', { method: 'POST', body: {} });
  } catch { /* the session is gone either way */ }
  state.chosen = null;
  resetAccounts();
  resetDevices();
  resetMatters();
  $('department-form').hidden = true;
  $('department-choose').hidden = false;
  showLogin();
}

async function main() {
  initPage('title_admin');
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  initAccounts({
    departments: () => state.departments,
    self: () => (state.user ? state.user.username : ''),
    onAuthError: handleAuthError,
  });
  initDevices({ onAuthError: handleAuthError });
  initMatters({ departments: () => state.departments, onAuthError: handleAuthError });
  initBookingAdmin({ departments: () => state.departments, onAuthError: handleAuthError });
  $('department-save').addEventListener('click', saveDepartment);
  $('department-reload').addEventListener('click', () => {
    if (state.chosen) chooseDepartment(state.chosen);
  });
  $('department-json').addEventListener('input', () => { $('department-saved').hidden = true; });
  $('log-to').value = hallDate();
  $('log-from').value = hallDaysAgo(6);
  $('log-from').addEventListener('input', updateLogLink);
  $('log-to').addEventListener('input', updateLogLink);
  $('log-download').addEventListener('click', (e) => {
    if ($('log-download').getAttribute('aria-disabled') === 'true') e.preventDefault();
  });
  updateLogLink();
  await loadDesk(state);
  if (!state.user) {
    showLogin();
    return;
  }
  openAdmin();
}

main();
