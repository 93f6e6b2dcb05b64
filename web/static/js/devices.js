// The admin page's registered-kiosk section: the list of hall screens with their state, the form
// that enrols one, and revocation. A new device's enrolment URL (it holds the device token) and
// its QR code are shown once. The rules are the server's (/api/admin/devices).
import {
  $, el, fetchJSON, formatTime, svgImageSource, YzError,
} from './common.js';
import { t } from './i18n.js';

const section = {
  devices: [],
  onAuthError: () => false,
};

function errorText(err) {
  return err instanceof YzError ? err.display : t('err_generic');
}

function showListError(text) {
  const box = $('devices-error');
  box.textContent = text;
  box.hidden = !text;
}

function showFormError(text) {
  const box = $('device-error');
  box.textContent = text;
  box.hidden = !text;
}

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------
function stateCell(device) {
  const active = device.state === 'active';
  const badge = el('span', {
    className: `account-badge account-badge-${active ? 'enabled' : 'disabled'}`,
    text: active ? t('device_active') : t('device_revoked'),
  });
  badge.dataset.state = device.state;
  const cell = el('div', { className: 'account-state', testid: 'device-state' }, badge);
  if (!active && device.revoked_at) {
    cell.append(el('span', {
      className: 'muted small',
      text: t('device_revoked_at', { time: formatTime(device.revoked_at), who: device.revoked_by }),
    }));
  }
  return el('td', {}, cell);
}

function deviceRow(device) {
  const active = device.state === 'active';
  const row = el('tr', { testid: 'device-row' });
  row.dataset.deviceId = device.device_id;
  row.dataset.state = device.state;
  row.classList.toggle('account-off', !active);
  const revoke = el('button', {
    className: 'btn btn-sm btn-secondary account-danger', testid: 'device-revoke',
    text: t('device_revoke'),
  });
  revoke.type = 'button';
  revoke.disabled = !active;
  revoke.addEventListener('click', () => revokeDevice(device));
  row.append(
    el('td', { className: 'device-name', text: device.name }),
    el('td', { text: device.hall }),
    el('td', { text: device.location || '—' }),
    el('td', { text: formatTime(device.created_at) }),
    el('td', { testid: 'device-last-seen', text: device.last_seen ? formatTime(device.last_seen) : t('device_never') }),
    stateCell(device),
    el('td', { className: 'account-actions-cell' }, el('div', { className: 'account-actions' }, revoke)),
  );
  return row;
}

function renderDevices() {
  const body = $('device-list');
  body.replaceChildren(...section.devices.map(deviceRow));
  if (!section.devices.length) {
    const cell = el('td', { className: 'empty', text: t('devices_empty') });
    cell.colSpan = 7;
    body.append(el('tr', {}, cell));
  }
  // The halls named so far, offered when enrolling the next screen (one spelling per hall).
  const halls = [...new Set(section.devices.map((d) => d.hall))].sort();
  $('device-halls').replaceChildren(...halls.map((hall) => {
    const option = el('option');
    option.value = hall;
    return option;
  }));
}

export async function loadDevices() {
  try {
    const data = await fetchJSON('/api/admin/devices');
    section.devices = data.devices || [];
    showListError('');
  } catch (err) {
    if (!section.onAuthError(err)) showListError(errorText(err));
  }
  renderDevices();
}

async function revokeDevice(device) {
  if (!window.confirm(t('device_confirm_revoke', { name: device.name, hall: device.hall }))) return;
  showListError('');
  try {
    await fetchJSON(`/api/admin/devices/${encodeURIComponent(device.device_id)}/revoke`, {
      method: 'POST', body: {},
    });
  } catch (err) {
    if (!section.onAuthError(err)) showListError(errorText(err));
  }
  await loadDevices();
}

// ---------------------------------------------------------------------------------------------
// The enrolment URL, shown once
// ---------------------------------------------------------------------------------------------
function showToken(device, url, qrSvg) {
  $('device-token-title').textContent = t('device_token_title', { name: device.name, hall: device.hall });
  $('device-token').textContent = url;
  $('device-qr').src = svgImageSource(qrSvg);
  $('device-qr').alt = url;
  $('device-token-panel').hidden = false;
}

function hideToken() {
  $('device-token').textContent = '';
  $('device-qr').removeAttribute('src');
  $('device-qr').alt = '';
  $('device-token-panel').hidden = true;
}

// ---------------------------------------------------------------------------------------------
// The form
// ---------------------------------------------------------------------------------------------
function openForm() {
  hideToken();
  for (const id of ['device-name', 'device-hall', 'device-location']) $(id).value = '';
  showFormError('');
  $('device-form').hidden = false;
  $('device-name').focus();
}

function closeForm() {
  $('device-form').hidden = true;
}

async function submitForm(event) {
  event.preventDefault();
  const body = {
    name: $('device-name').value.trim(),
    hall: $('device-hall').value.trim(),
    location: $('device-location').value.trim(),
  };
  if (!body.name || !body.hall) {
    showFormError(t('device_missing'));
    return;
  }
  const btn = $('device-create');
  btn.disabled = true;
  try {
    const data = await fetchJSON('/api/admin/devices', { method: 'POST', body });
    closeForm();
    showToken(data.device, data.url, data.qr_svg);
    await loadDevices();
  } catch (err) {
    if (!section.onAuthError(err)) showFormError(errorText(err));
  } finally {
    btn.disabled = false;
  }
}

// Wire the section: `onAuthError(err)` handles 401/403 (true when it did).
export function initDevices({ onAuthError }) {
  section.onAuthError = onAuthError;
  $('device-new').addEventListener('click', openForm);
  $('device-cancel').addEventListener('click', closeForm);
  $('device-form').addEventListener('submit', submitForm);
  $('device-token-close').addEventListener('click', hideToken);
}

// Signed out: nothing of the last admin's view stays on the page (the enrolment URL least).
export function resetDevices() {
  section.devices = [];
  closeForm();
  hideToken();
  renderDevices();
}
