// The admin page's appointments (预约) section: a department's booking rules (slot length,
// capacity, days ahead, arrival window; saving is audited by the server) and a day's bookings.
import { $, fetchJSON, errorText } from './common.js';
import { hallDate } from './hall_time.js';
import { departmentName, t } from './i18n.js';

const FIELDS = ['slot_minutes', 'capacity', 'days_ahead', 'early_minutes', 'late_minutes'];
const admin = { departments: () => [], onAuthError: () => false };

function message(id, text) {
  $(id).textContent = text || '';
  $(id).hidden = !text;
}

function fillDepartments() {
  const select = $('booking-rules-department');
  const chosen = select.value;
  select.replaceChildren();
  for (const dept of admin.departments()) {
    const option = document.createElement('option');
    option.value = dept.id;
    option.textContent = departmentName(admin.departments(), dept.id);
    select.append(option);
  }
  if (chosen) select.value = chosen;
}

async function loadRules() {
  const dept = $('booking-rules-department').value;
  $('booking-rules-saved').hidden = true;
  message('booking-rules-error', '');
  if (!dept) return;
  try {
    const { rules } = await fetchJSON(`/api/admin/bookings/rules/${encodeURIComponent(dept)}`);
    for (const name of FIELDS) $(`booking-rules-${name}`).value = rules[name];
  } catch (err) {
    if (!admin.onAuthError(err)) message('booking-rules-error', errorText(err));
  }
}

async function saveRules(event) {
  event.preventDefault();
  const dept = $('booking-rules-department').value;
  const body = Object.fromEntries(FIELDS.map((name) => [name, Number($(`booking-rules-${name}`).value)]));
  message('booking-rules-error', '');
  try {
    await fetchJSON(`/api/admin/bookings/rules/${encodeURIComponent(dept)}`, { method: 'PUT', body });
    $('booking-rules-saved').hidden = false;
  } catch (err) {
    if (!admin.onAuthError(err)) message('booking-rules-error', errorText(err));
  }
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

async function loadDay() {
  const day = $('bookings-day').value;
  const rows = $('bookings-rows');
  rows.replaceChildren();
  try {
    const { bookings } = await fetchJSON(`/api/admin/bookings?day=${encodeURIComponent(day)}`);
    for (const b of bookings) {
      const tr = document.createElement('tr');
      tr.dataset.testid = 'booking-row';
      tr.append(cell(b.time), cell(departmentName(admin.departments(), b.department)), cell(b.code),
        cell(b.name), cell(b.phone), cell(t(`booking_status_${b.status}`)));
      rows.append(tr);
    }
    $('bookings-empty').hidden = bookings.length > 0;
  } catch (err) {
    if (!admin.onAuthError(err)) message('booking-rules-error', errorText(err));
  }
}

// departments(): the admin page's list; onAuthError(err): true when it handled a lost session.
export function initBookingAdmin({ departments, onAuthError }) {
  admin.departments = departments;
  admin.onAuthError = onAuthError;
  $('bookings-day').value = hallDate();
  $('booking-rules-department').addEventListener('focus', fillDepartments);
  $('booking-rules-department').addEventListener('change', loadRules);
  $('booking-rules-form').addEventListener('submit', saveRules);
  $('bookings-show').addEventListener('click', loadDay);
}

// The admin page is open (signed in, departments loaded): the first department's rules.
export async function openBookingAdmin() {
  fillDepartments();
  await loadRules();
}
