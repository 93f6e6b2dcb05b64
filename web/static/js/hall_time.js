// Dates and times as the hall reads them: in the hall's time zone (the server's `timezone`,
// passed in the boot data by server/http/pages.py), whatever the zone of the browser showing
// them (a supervisor travelling, a test machine on UTC). Without it: the browser's own zone.

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const FIELDS = {
  year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
};
let formatter = null;

function hallZone() {
  try {
    return JSON.parse(document.getElementById('yz-boot')?.textContent || '{}').timezone;
  } catch {
    return undefined;
  }
}

function makeFormatter() {
  try {
    return new Intl.DateTimeFormat('en-GB', { ...FIELDS, timeZone: hallZone() || undefined });
  } catch {  // a zone this browser does not know
    return new Intl.DateTimeFormat('en-GB', FIELDS);
  }
}

// The hall's calendar fields of a moment: year, month, day, hour, minute, second as two-digit
// strings (year four), and weekday as 0 (Monday) to 6 (Sunday).
export function hallParts(date) {
  formatter ??= makeFormatter();
  const out = {};
  for (const part of formatter.formatToParts(date)) out[part.type] = part.value;
  out.weekday = WEEKDAYS.indexOf(out.weekday);
  return out;
}

// The hall's date of a moment (now by default) as YYYY-MM-DD: what the date filters send.
export function hallDate(date = new Date()) {
  const p = hallParts(date);
  return `${p.year}-${p.month}-${p.day}`;
}

// The hall's date `days` days before today, for a filter's default range.
export function hallDaysAgo(days) {
  return hallDate(new Date(Date.now() - days * 86_400_000));
}
