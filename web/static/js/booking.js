// Appointments (预约) on the kiosk page (the same page at home): book a slot of a department
// (department → slot → name and phone with consent → code and QR), or arrive with a code (typed,
// or from the QR's link ?booking=CODE) to take a ticket in the booked lane within the slot's
// window. kiosk.js calls initBooking once and gives it how to take the ticket.
import { $, errorText, fetchJSON, showScreen, svgImageSource } from './common.js';
import { departmentName, formatDay, t } from './i18n.js';

const PHONE = /^\+?[0-9][0-9 -]{3,22}[0-9]$/;

const booking = {
  departments: () => [],
  takeTicket: async () => {},
  dept: null, // the department being booked
  slot: null, // {start, end, label, free}
  busy: false,
};

function formError(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}

function open() {
  showScreen('booking');
}

function chooseDepartments() {
  const grid = $('booking-departments');
  grid.replaceChildren();
  for (const dept of booking.departments()) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'btn dept-btn';
    btn.dataset.testid = `booking-dept-${dept.id}`;
    btn.textContent = departmentName(booking.departments(), dept.id);
    btn.addEventListener('click', () => showSlots(dept.id));
    grid.append(btn);
  }
  showScreen('booking-dept');
}

async function showSlots(deptId) {
  booking.dept = deptId;
  $('booking-slots-department').textContent = departmentName(booking.departments(), deptId);
  const list = $('booking-slots');
  list.replaceChildren();
  let slots = [];
  try {
    slots = (await fetchJSON(`/api/bookings/slots?department=${encodeURIComponent(deptId)}`)).slots;
  } catch (err) {
    formError('booking-error', errorText(err));
  }
  // One heading per day, then that day's slots: the time large, what is left beneath it.
  let day = null;
  for (const slot of slots) {
    const [date, time] = String(slot.label).split(' ');
    if (date !== day) {
      day = date;
      const heading = document.createElement('h3');
      heading.className = 'booking-day';
      heading.textContent = formatDay(date);
      list.append(heading);
    }
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'btn booking-slot';
    btn.dataset.testid = 'appointment-slot';
    btn.dataset.start = String(slot.start);
    btn.disabled = slot.free <= 0;
    const free = slot.free > 0 ? t('booking_free', { n: slot.free }) : t('booking_full_short');
    const timeText = document.createElement('span');
    timeText.className = 'booking-slot-time';
    timeText.textContent = time || slot.label;
    const freeText = document.createElement('span');
    freeText.className = 'booking-slot-free';
    freeText.textContent = free;
    btn.append(timeText, freeText);
    btn.setAttribute('aria-label', `${slot.label} ${free}`);
    btn.addEventListener('click', () => showForm(slot));
    list.append(btn);
  }
  $('booking-no-slots').hidden = slots.length > 0;
  showScreen('booking-slots');
}

function showForm(slot) {
  booking.slot = slot;
  $('booking-chosen').textContent = `${departmentName(booking.departments(), booking.dept)} · ${slot.label}`;
  $('booking-name').value = '';
  $('booking-phone').value = '';
  $('booking-consent').checked = false;
  formError('booking-error', '');
  showScreen('booking-form');
}

async function confirm(event) {
  event.preventDefault();
  if (booking.busy) return;
  const name = $('booking-name').value.trim();
  const phone = $('booking-phone').value.trim();
  if (!name || !PHONE.test(phone)) {
    formError('booking-error', t('booking_fill_in'));
    return;
  }
  if (!$('booking-consent').checked) {
    formError('booking-error', t('booking_consent_needed'));
    return;
  }
  booking.busy = true;
  try {
    const answer = await fetchJSON('/api/bookings', {
      method: 'POST',
      body: { department: booking.dept, slot: booking.slot.start, name, phone, consent: true },
    });
    // The form's personal data is not left on a shared screen.
    $('booking-name').value = '';
    $('booking-phone').value = '';
    showDone(answer);
  } catch (err) {
    formError('booking-error', errorText(err));
  } finally {
    booking.busy = false;
  }
}

function showDone(answer) {
  const b = answer.booking;
  $('booking-done-slot').textContent = `${departmentName(booking.departments(), b.department)} · ${booking.slot.label}`;
  $('appointment-code').textContent = b.code;
  $('booking-qr').href = answer.url;
  $('booking-qr-image').src = svgImageSource(answer.qr_svg);
  $('booking-qr-image').alt = t('booking_qr_alt', { code: b.code });
  $('booking-done-hint').textContent = t('booking_done_hint', {
    phone: b.phone, early: answer.early_minutes, late: answer.late_minutes,
  });
  showScreen('booking-done');
}

function showArrive(code = '') {
  $('booking-code-input').value = code;
  $('booking-arrive-consent').checked = false;
  formError('booking-arrive-error', '');
  showScreen('booking-arrive');
}

async function arrive(event) {
  event.preventDefault();
  if (booking.busy) return;
  const code = $('booking-code-input').value.trim();
  if (!code) {
    formError('booking-arrive-error', t('booking_code_needed'));
    return;
  }
  if (!$('booking-arrive-consent').checked) {
    formError('booking-arrive-error', t('booking_consent_needed'));
    return;
  }
  booking.busy = true;
  try {
    const found = (await fetchJSON(`/api/bookings/${encodeURIComponent(code)}`)).booking;
    await booking.takeTicket({ department: found.department, consent: true, booking: found.code,
      channel: new URLSearchParams(window.location.search).has('booking') ? 'web' : 'kiosk' });
    $('booking-code-input').value = '';
  } catch (err) {
    formError('booking-arrive-error', errorText(err));
  } finally {
    booking.busy = false;
  }
}

// departments(): the kiosk's list; takeTicket(payload): ticket:create, followed like any other;
// goStart(): back to the start screen.
export function initBooking({ departments, takeTicket, goStart }) {
  booking.departments = departments;
  booking.takeTicket = takeTicket;
  $('appointment-start').addEventListener('click', open);
  $('booking-new').addEventListener('click', chooseDepartments);
  $('booking-have-code').addEventListener('click', () => showArrive());
  $('booking-back').addEventListener('click', goStart);
  $('booking-dept-back').addEventListener('click', open);
  $('booking-slots-back').addEventListener('click', chooseDepartments);
  $('booking-form-back').addEventListener('click', () => showSlots(booking.dept));
  $('booking-form').addEventListener('submit', confirm);
  $('booking-done-back').addEventListener('click', goStart);
  $('booking-arrive-form').addEventListener('submit', arrive);
  $('booking-arrive-back').addEventListener('click', goStart);
  // The QR's link: the page opens on the arrival form with the code filled in.
  const code = new URLSearchParams(window.location.search).get('booking');
  if (code) showArrive(code);
}
