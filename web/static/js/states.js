// The names the pages share with the server: roles (rooms/roles.py), staff presence and ticket
// status (signaling/states.py), away reasons. Frozen, so a typo fails loudly instead of comparing
// with undefined.

export const Role = Object.freeze({
  APPLICANT: 'applicant',
  STAFF: 'staff',
  GUIDE: 'guide',
  SUPERVISOR: 'supervisor',
  ADMIN: 'admin',
  AUDITOR: 'auditor',
  INTERPRETER: 'interpreter',
});

// A staff member's state in the queue.
export const Presence = Object.freeze({
  OFFLINE: 'offline',
  AVAILABLE: 'available',
  RINGING: 'ringing',
  IN_CALL: 'in_call',
  WRAP_UP: 'wrap_up',
  AWAY: 'away',
});

export const TicketStatus = Object.freeze({
  WAITING: 'waiting',
  RINGING: 'ringing',
  CONNECTED: 'connected',
  ENDED: 'ended',
  CANCELLED: 'cancelled',
  ABANDONED: 'abandoned',
});

// Why a staff member is away: their own choice (rest, meeting, other), or set by the server
// (missed: unanswered rings in a row; consult: in a joint consultation of another department).
export const AwayReason = Object.freeze({
  REST: 'rest',
  MEETING: 'meeting',
  OTHER: 'other',
  MISSED: 'missed',
  CONSULT: 'consult',
});
