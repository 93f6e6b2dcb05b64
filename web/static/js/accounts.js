// The admin page's accounts section: the list with each account's state, the form that creates
// or edits one, and the row actions (disable/enable, unlock, reset password, reset 2FA). A new
// or reset one-time password is shown once. The rules are the server's (/api/admin/accounts).
import { $, el, fetchJSON, YzError } from './common.js';
import { departmentName, listJoin, t } from './i18n.js';
import { Role } from './states.js';

// The roles whose accounts belong to departments (signaling/account_admin.py POOL_ROLES).
const POOL_ROLES = [Role.STAFF, Role.SUPERVISOR];

const section = {
  accounts: [],
  groups: [], // backup groups (AB岗) an account may belong to besides departments
  editing: null, // the username in the form, or null when creating
  departments: () => [],
  self: () => '',
  onAuthError: () => false,
};

function errorText(err) {
  return err instanceof YzError ? err.display : t('err_generic');
}

function showListError(text) {
  const box = $('accounts-error');
  box.textContent = text;
  box.hidden = !text;
}

function showFormError(text) {
  const box = $('account-error');
  box.textContent = text;
  box.hidden = !text;
}

export function roleName(role) {
  const key = `account_role_${role}`;
  return t(key) === key ? role : t(key);
}

function poolName(id) {
  return section.groups.includes(id) ? t('account_group', { group: id })
    : departmentName(section.departments(), id);
}

function departmentsText(account) {
  if (account.departments.length) return listJoin(account.departments.map(poolName));
  return account.role === Role.SUPERVISOR ? t('account_all_departments') : '—';
}

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------
function badge(text, kind) {
  const span = el('span', { className: `account-badge account-badge-${kind}`, text });
  span.dataset.state = kind;
  return span;
}

function stateCell(account) {
  const cell = el('div', { className: 'account-state', testid: 'account-state' });
  cell.append(account.disabled ? badge(t('account_disabled'), 'disabled')
    : badge(t('account_enabled'), 'enabled'));
  if (account.locked_for > 0) {
    cell.append(badge(t('account_locked', { minutes: Math.ceil(account.locked_for / 60) }), 'locked'));
  }
  // Demo accounts have no second factor by design: their badge says so.
  if (account.totp_enrolled) cell.append(badge(t('account_totp_on'), 'totp'));
  else if (!account.demo) cell.append(badge(t('account_totp_off'), 'no-totp'));
  if (account.must_change) cell.append(badge(t('account_must_change'), 'must-change'));
  if (account.demo) cell.append(badge(t('account_demo'), 'demo'));
  return el('td', {}, cell);
}

function actionButton(testid, text, onClick, { danger = false, disabled = false, title = '' } = {}) {
  const btn = el('button', {
    className: `btn btn-sm btn-secondary${danger ? ' account-danger' : ''}`, testid, text,
  });
  btn.type = 'button';
  btn.disabled = disabled;
  if (title) btn.title = title;
  btn.addEventListener('click', onClick);
  return btn;
}

function accountRow(account) {
  const self = account.username === section.self();
  const row = el('tr', { testid: 'account-row' });
  row.dataset.username = account.username;
  row.classList.toggle('account-off', account.disabled);
  const name = account.username;
  const actions = el('div', { className: 'account-actions' },
    actionButton('account-edit', t('account_edit'), () => openForm(account)),
    account.disabled
      ? actionButton('account-disable', t('account_enable'), () => act(name, 'enable'))
      : actionButton('account-disable', t('account_disable'), () => act(name, 'disable'), {
        danger: true, disabled: self, title: self ? t('account_not_self') : '',
      }),
    actionButton('account-unlock', t('account_unlock'), () => act(name, 'unlock'), {
      disabled: !(account.locked_for > 0),
    }),
    actionButton('account-reset-password', t('account_reset_password'),
      () => act(name, 'reset-password'), {
        disabled: self, title: self ? t('account_not_self') : '',
      }),
    actionButton('account-reset-2fa', t('account_reset_totp'), () => act(name, 'reset-2fa'), {
      disabled: !account.totp_enrolled,
    }));
  row.append(
    el('td', { className: 'account-username', text: name }),
    el('td', { text: account.display_name }),
    el('td', { text: roleName(account.role) }),
    el('td', { className: 'account-departments-cell', text: departmentsText(account) }),
    stateCell(account),
    el('td', { className: 'account-actions-cell' }, actions),
  );
  return row;
}

function renderAccounts() {
  const body = $('account-list');
  body.replaceChildren(...section.accounts.map(accountRow));
  if (!section.accounts.length) {
    const cell = el('td', { className: 'empty', text: t('accounts_empty') });
    cell.colSpan = 6;
    body.append(el('tr', {}, cell));
  }
}

export async function loadAccounts() {
  try {
    const data = await fetchJSON('/api/admin/accounts');
    section.accounts = data.accounts || [];
    section.groups = data.groups || [];
    showListError('');
  } catch (err) {
    if (!section.onAuthError(err)) showListError(errorText(err));
  }
  renderAccounts();
}

// ---------------------------------------------------------------------------------------------
// Row actions
// ---------------------------------------------------------------------------------------------
const CONFIRM = {
  disable: 'account_confirm_disable',
  'reset-password': 'account_confirm_reset_password',
  'reset-2fa': 'account_confirm_reset_totp',
};

async function act(username, action) {
  if (CONFIRM[action] && !window.confirm(t(CONFIRM[action], { username }))) return;
  showListError('');
  try {
    const data = await fetchJSON(
      `/api/admin/accounts/${encodeURIComponent(username)}/${action}`, { method: 'POST', body: {} },
    );
    if (data.temporary_password) showTemporary(username, data.temporary_password, 'reset');
  } catch (err) {
    if (!section.onAuthError(err)) showListError(errorText(err));
  }
  await loadAccounts();
}

function showTemporary(username, password, why) {
  $('account-temp-title').textContent = t(why === 'created' ? 'account_temp_created'
    : 'account_temp_reset', { username });
  $('account-temp-password').textContent = password;
  $('account-temp-panel').hidden = false;
}

function hideTemporary() {
  $('account-temp-password').textContent = '';
  $('account-temp-panel').hidden = true;
}

// ---------------------------------------------------------------------------------------------
// The form: create, or edit (name, role, departments)
// ---------------------------------------------------------------------------------------------
function chosenDepartments() {
  return [...$('account-department-options').querySelectorAll('input:checked')]
    .map((box) => box.value);
}

function renderDepartmentOptions(selected) {
  const role = $('account-role').value;
  const pools = POOL_ROLES.includes(role);
  const ids = [...section.departments().map((d) => d.id), ...section.groups];
  for (const id of selected) if (!ids.includes(id)) ids.push(id);
  const options = ids.map((id) => {
    const box = el('input');
    box.type = 'checkbox';
    box.value = id;
    box.name = 'departments';
    box.checked = selected.includes(id);
    box.disabled = !pools;
    box.dataset.testid = `account-department-${id}`;
    return el('label', { className: 'account-department' }, box, el('span', { text: poolName(id) }));
  });
  $('account-department-options').replaceChildren(...options);
  $('account-departments').disabled = !pools;
  $('account-departments-hint').textContent = t(
    role === Role.STAFF ? 'account_departments_staff'
      : role === Role.SUPERVISOR ? 'account_departments_supervisor' : 'account_departments_none',
  );
}

function openForm(account = null) {
  hideTemporary();
  section.editing = account ? account.username : null;
  const form = $('account-form');
  $('account-form-heading').textContent = account
    ? t('account_edit_heading', { username: account.username }) : t('account_new_heading');
  $('account-username').value = account ? account.username : '';
  $('account-username').readOnly = Boolean(account);
  $('account-display-name').value = account ? account.display_name : '';
  $('account-role').value = account ? account.role : Role.STAFF;
  // An admin keeps their own role (the server refuses the change too).
  $('account-role').disabled = Boolean(account && account.username === section.self());
  $('account-create').hidden = Boolean(account);
  $('account-save').hidden = !account;
  renderDepartmentOptions(account ? account.departments : []);
  showFormError('');
  form.hidden = false;
  (account ? $('account-display-name') : $('account-username')).focus();
}

function closeForm() {
  $('account-form').hidden = true;
  section.editing = null;
}

async function submitForm(event) {
  event.preventDefault();
  const role = $('account-role').value;
  const body = {
    display_name: $('account-display-name').value.trim(),
    role,
    departments: POOL_ROLES.includes(role) ? chosenDepartments() : [],
  };
  const username = section.editing || $('account-username').value.trim();
  if (!username || !body.display_name) {
    showFormError(t('account_missing'));
    return;
  }
  if (role === Role.STAFF && !body.departments.length) {
    showFormError(t('account_departments_staff'));
    return;
  }
  const buttons = [$('account-create'), $('account-save')];
  for (const btn of buttons) btn.disabled = true;
  try {
    if (section.editing) {
      await fetchJSON(`/api/admin/accounts/${encodeURIComponent(username)}`, {
        method: 'PATCH', body,
      });
      closeForm();
    } else {
      const data = await fetchJSON('/api/admin/accounts', {
        method: 'POST', body: { username, ...body },
      });
      closeForm();
      showTemporary(username, data.temporary_password, 'created');
    }
    await loadAccounts();
  } catch (err) {
    if (!section.onAuthError(err)) showFormError(errorText(err));
  } finally {
    for (const btn of buttons) btn.disabled = false;
  }
}

// The departments changed (an admin saved one): the names and choices follow.
export function refreshDepartmentNames() {
  renderAccounts();
  if (!$('account-form').hidden) renderDepartmentOptions(chosenDepartments());
}

// Wire the section: `departments()` the page's department list, `self()` the signed-in admin's
// username, `onAuthError(err)` handles 401/403 (true when it did).
export function initAccounts({ departments, self, onAuthError }) {
  Object.assign(section, { departments, self, onAuthError });
  $('account-new').addEventListener('click', () => openForm());
  $('account-cancel').addEventListener('click', closeForm);
  $('account-form').addEventListener('submit', submitForm);
  $('account-role').addEventListener('change', () => renderDepartmentOptions(chosenDepartments()));
  $('account-temp-close').addEventListener('click', hideTemporary);
}

// Signed out: nothing of the last admin's view stays on the page.
export function resetAccounts() {
  section.accounts = [];
  closeForm();
  hideTemporary();
  renderAccounts();
}
