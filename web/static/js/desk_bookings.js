// The desk's "booked next" panel (预约): today's bookings of the staff member's departments
// still to come, with the booking number and time and the name masked; re-read every 30 s.
import { $, fetchJSON } from './common.js';
import { departmentName, t } from './i18n.js';

const REFRESH_MS = 30_000;
let timer = null;

async function load(departments) {
  let bookings;
  try {
    ({ bookings } = await fetchJSON('/api/desk/bookings'));
  } catch {
    $('desk-bookings').hidden = true; // not a staff member (a guide), or signed out
    return;
  }
  const list = $('desk-bookings-list');
  list.replaceChildren();
  for (const b of bookings) {
    const li = document.createElement('li');
    li.dataset.testid = 'desk-booking';
    li.textContent = t('desk_booking_line', {
      time: b.time, code: b.code, name: b.name, department: departmentName(departments(), b.department),
    });
    list.append(li);
  }
  $('desk-bookings-empty').hidden = bookings.length > 0;
  $('desk-bookings').hidden = false;
}

// departments(): the page's department list (for names). Called when the desk opens.
export function startDeskBookings(departments) {
  clearInterval(timer);
  load(departments);
  timer = setInterval(() => load(departments), REFRESH_MS);
}
