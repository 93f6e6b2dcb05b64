"""Every Redis key of the service, documented in one place, and the builders of the keys signaling
uses. The queue script gets the same builders (signaling/queue.py writes them into its prelude).

Layout (all keys start with ``yz:``; <sha> is the SHA-256 of a secret token, see `hash_token`):

  yz:depts                        set    department ids
  yz:dept:<dept>                  hash   id, name_zh, name_en, prefix, config (JSON of
                                         signaling.departments.Department), and the fields the Lua
                                         reads: ring_timeout, ring_pause, max_misses, wrap_up,
                                         max_queue, tiers ("group:after,...")
  yz:users                        set    every username (signaling/accounts.py)
  yz:user:<username>              hash   username, display_name, role, departments (comma list of
                                         pools: departments and backup groups), password (scrypt),
                                         disabled, demo, must_change, password_changed_at,
                                         created_at, totp_secret (AES-GCM sealed with
                                         keys/secrets.key), totp_last_step, recovery (comma
                                         list of SHA-256 of unused recovery codes)
  yz:passwords:<username>         list   the previous password hashes (password_history - 1)
  yz:failures:<username>          string failed sign-ins in a row       (expires: lockout window)
  yz:locked:<username>            string the account is locked          (expires: lockout_minutes)
  yz:addrfail:<address>           string failed sign-ins from one address (expires: the window)
  yz:usersessions:<username>      set    <sha> of the account's sessions (expires: session_ttl)
  yz:staffusers                   set    usernames of staff accounts
  yz:members:<pool>               set    staff usernames of a department or backup group
  yz:session:<sha>                hash   username, created_at, last_seen, stage, remote,
                                         totp_pending                    (expires: idle_timeout,
                                         moved on with activity, never past session_ttl)
  yz:seq:ticket                   string global ticket sequence (first come, first served)
  yz:seq:number:<dept>:<lane>:<day>
                                  string per department, lane (A ordinary, B priority, Y booked)
                                         and day (YYYYMMDD): the hall number's count
                                         (expires: 3 d)
  yz:ticket:<ticket_id>           hash   ticket_id, number, department, also, priority, channel,
                                         status, seq, score, created_at, token_hash, staff,
                                         room_id, rest_until, overflowed, connected_at, ended_at,
                                         rating (the lowest score given), rated_at,
                                         rating:<dept> (each department's score),
                                         joined:<dept> (the 会商 invitee who served for it),
                                         case:<dept> (the case its bad rating opened),
                                         guide (the hall guide who made it),
                                         consent_version, consent_at (the recording notice
                                         consented to, and when: signaling/privacy.py),
                                         device, hall (the registered kiosk that made it, and
                                         its hall; absent for an anonymous one)
                                         (expires: ticket_keep_hours after it ended)
  yz:ticket:<ticket_id>:declined  zset   username -> when they declined or missed it (1 d;
                                         deleted when the ticket ends)
  yz:queue:<dept>                 zset   waiting ticket_id -> score: seq in the priority lane,
                                         LANE_SPLIT + seq in the ordinary one (so priority first)
  yz:ringing                      zset   ringing ticket_id -> ring deadline
  yz:staff:<username>             hash   presence, since, ticket, reason, misses, wrap_until, gone
  yz:available:<pool>             zset   available username -> idle since (longest idle first)
  yz:wrapup                       zset   username -> end of wrap-up
  yz:conns:<kind>:<ident>         hash   node -> sockets of that staff member (kind staff),
                                         ticket (kind ticket) or client address (kind address:
                                         its /kiosk sockets) on that server process
  yz:node:<node>:<kind>           set    what that server process holds: kind staff (usernames
                                         with sockets), ticket (ticket ids with sockets),
                                         address (client addresses with /kiosk sockets), rooms
                                         (the room ids it hosts), adopt (room ids of a dead
                                         process moved to it, to re-create: signaling/adopt.py)
  yz:nodes                        zset   node -> heartbeat deadline (a node past it is dead)
  yz:staff_gone                   zset   username -> end of the reconnect grace (then offline)
  yz:ticket_gone                  zset   ticket_id -> end of the reconnect grace (then abandoned)
  yz:handled:<dept>               list   recent handling times in seconds (50, for estimates)
  yz:callbacks:<dept>             hash   callback_id -> JSON request: callback_id, department,
                                         name, phone, note, created_at, consent_version;
                                         removed when done, or callback_keep_days after
                                         created_at (signaling/clock.py)
  yz:guide:<username>             zset   ticket_id -> created_at of a hall guide's tickets (1 d)
  yz:addrtickets:<address>        set    ticket ids taken from one client address, for the
                                         open-ticket limit (ended ones are dropped when the
                                         next is taken; expires: 1 d after the last)
  yz:limit:<rule>:<subject>       string an abuse limit's count in its window (rule
                                         ticket_create, callback or booking with an address,
                                         or callback_phone or booking_phone with the SHA-256
                                         of the digits;
                                         expires: the window, signaling/limits.py)
  yz:devices                      zset   device_id -> created_at of every registered kiosk
                                         (signaling/devices.py; revoked ones stay, marked)
  yz:device:<device_id>           hash   device_id, name, hall, location, created_at,
                                         created_by, token_sha, last_seen, revoked_at,
                                         revoked_by, ticket (its last ticket: the queue script
                                         allows one open at a time)
  yz:devicetoken:<sha>            string device_id of a device token; deleted on revocation
  yz:seq:case                     string the 差评 case sequence (signaling/cases.py)
  yz:case:<case_id>               hash   a 差评 rectification case: id (YYYYMMDD-nnnnn, the day it
                                         opened), ticket_id, ticket_number, room_id (the
                                         recording), department, hall ('' if anonymous), staff
                                         (who served for the department), score (1 or 2),
                                         reasons (comma list of signaling/ratings.py codes),
                                         comment, opened_at (epoch), due (ISO date, the last
                                         working day), state (opened, verified, rectified,
                                         explained, appealed, answered, closed), closed_at
                                         (epoch, '' while open), resolution (rectified,
                                         explained, misjudged), appellant, updated_at
  yz:case:<case_id>:history       list   JSON {at, who, step, state, text, decision} per step,
                                         the opening first
  yz:cases                        zset   case_id -> opened_at, every case
  yz:cases:<dept>                 zset   case_id -> opened_at, the department's cases
  yz:opencases                    set    the case ids not closed yet (the near-due alerts)
  yz:acknowledged                 string a counter written before each WAIT for the replicas
                                         (signaling/durable.py: the write WAIT waits for)
  yz:log                          stream the queue log: time, event (ENTER, RING, NOANSWER,
                                         DECLINE, GONE, CONNECT, ABANDON, CANCEL, OVERFLOW,
                                         COMPLETE, PAUSE, UNPAUSE, INVITE, JOIN, RATE (one per
                                         department rated; detail the score 1-5), CALLBACK,
                                         CALLBACK_DONE, CALLBACK_PURGE, CONFIG,
                                         NOINTERPRETER), ticket,
                                         department, staff, detail (phone numbers only masked);
                                         ENTER also hall (the registered kiosk's, '' for an
                                         anonymous one); CONNECT's detail: the wait (s),
                                         COMPLETE's: the talk time (s);
                                         trimmed to about LOG_MAXLEN entries
Appointments (预约, signaling/bookings.py; the queue script marks a booking arrived):
  yz:bookingrules:<dept>          hash   a department's booking rules (signaling/slots.py
                                         BookingRules): slot_minutes, capacity (0: no
                                         bookings), days_ahead, early_minutes, late_minutes
  yz:booking:<code>               hash   code, department, slot, slot_end (epoch), name, phone,
                                         consent_version, created_at, status (booked, arrived,
                                         no_show), ticket_id, arrived_at, released_at
                                         (expires: 30 d after the slot)
  yz:bookingslot:<dept>:<start>   set    the codes holding a place in the slot starting at
                                         <start> (epoch); never more than the capacity (one
                                         script checks and adds); a no-show leaves it
                                         (expires: 30 d after the slot)
  yz:bookings:day:<day>           zset   code -> slot start, the bookings of a day (YYYY-MM-DD,
                                         the hall's calendar)  (expires: 30 d after its last)
  yz:bookings:pending             zset   code -> the end of its arrival window: bookings not
                                         yet released (the no-show job reads it)
The matter catalogue (事项库, signaling/matters.py):
  yz:matter:<matter_id>           string JSON of signaling.matters.Matter (id, department, name,
                                         materials, legal_basis, fee, time_limit, online)
  yz:matters:<dept>               zset   matter_id -> seq: a department's matters in the order
                                         they were first saved
  yz:matters                      zset   matter_id -> seq: every matter
  yz:seq:matter                   string the matters' sequence (their order)
The room directory (signaling/room_directory.py; the queue script writes and drops entries):
  yz:room:<room_id>               hash   room_id, node, ticket_id, department, staff, created_at,
                                         participants (count, from the host's heartbeat),
                                         invite:<dept> (JSON of a pending 会商 invitation),
                                         joined:<dept> (the invitee who took it),
                                         lost_node, lost_at (moved from a dead process)
  yz:roomtoken:<sha>              hash   room_id, role, participant_id, name, department,
                                         ticket_id                       (expires: 4 h)
  yz:guest:<username>             string the room a staff member joined by invitation (4 h)
The 一次性告知单 of a room (signaling/notice_store.py; changed under WATCH):
  yz:notice:<room_id>             string JSON of the notice (signaling/notice.py): parts by
                                         department, revision, sealed_at (expires: 24 h after
                                         the last edit; 90 d once sealed)
  yz:notice:<room_id>:sealed      string JSON of the sealed, signed envelope (90 d)
  yz:notice:<room_id>:links       set    <sha> of the read-only links' tokens (90 d)
Statistics (signaling/stats_store.py; counters from the queue log, by the hall's calendar):
  yz:stats:day:<day>:<dept>:<hall>
                                  hash   a day's (YYYY-MM-DD) counters of a department and hall
                                         ('' for no registered kiosk): signaling.stats.FIELDS
                                         (counts, talk_s, wait buckets w0.., ratings r1..r5)
                                         (expires: 401 d after the last change)
  yz:stats:month:<month>:<dept>:<hall>
                                  hash   the same for a month (YYYY-MM)   (expires: 401 d)
  yz:stats:cells:<period>         set    JSON [dept, hall] of the rollups of a day or month
                                         (expires: 401 d)
  yz:stats:ticket:<ticket_id>     hash   day, department, hall, answered, joint: where the
                                         ticket's entries count                (expires: 3 d)
  yz:stats:cursor                 string the id of the last queue-log entry counted
  yz:stats:lock                   string one process counts at a time (token, 30 s expiry)
The node registry (signaling/nodes.py; liveness is yz:nodes above):
  yz:nodeinfo:<node>              hash   node, name, base (the nginx path prefix that reaches it
                                         alone, '' for none), address, pid, rooms, participants,
                                         cpu (% of one core, its own process), load, updated
                                         (written every second; expires: 10 s)
  yz:nodecmd:<node>               channel pub/sub: JSON commands for that node (open a room)
  yz:nodereply:<request_id>       list   the node's JSON answer to one command (expires: 30 s)
Recordings (built by recordings/ itself, which imports nothing above it; listed for the whole
picture):
  yz:recordings                   zset   recording_id -> started_at      (recordings/archive.py)
  yz:recording:<id>               hash   the recording's index entry, with staff_ids
                                         (usernames), rating, rated_at, hold
  yz:manifest:head                hash   seq, hash, recording_id of the newest integrity-chain
                                         link (recordings/manifest.py); changed under WATCH
  yz:manifest:lock                string one sealer at a time (token, 30 s expiry)
  yz:audit                        stream the audit log: seq, prev, time, who, action, target,
                                         recording_id, department, remote, detail, before,
                                         after, mac (HMAC-SHA-256 chain); trimmed by age
                                         (audit_keep_days, ≥ 190 d) behind an anchor
  yz:audit:head                   hash   seq, mac, id, sig of the newest audit entry
  yz:audit:anchor                 hash   seq, mac, id, time, sig of the newest trimmed one
                                         (recordings/audit.py)
  yz:alerts                       stream supervisors' alerts, trimmed by age to 30 d
                                         (recordings/alerts.py)
  yz:alerts:ack                   hash   alert id -> JSON {by, at} of its acknowledgement
  yz:alert:once:<kind>:<subject>  string one alert per subject (SET NX, 24 h)
  yz:export:<id>                  hash   a composite export job: state, progress, error,
                                         error_en, size, updated        (recordings/jobs.py)
  yz:export:lock:<id>             string one process runs a recording's export
  yz:recovering:<id>              string one process recovers a crashed recording (300 s)
                                         (recordings/recovery.py)
Pub/sub channels: Socket.IO's between processes is ``yunzhen-socketio`` (server/app.py), and
  yz:sessions:ended               channel ended login sessions, JSON of
                                         signaling.sessions.EndedSessions (signaling/sessions.py)
  yz:devices:revoked              channel revoked kiosks, JSON {device_id} (signaling/devices.py)
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "yz:"
# The queue's score encoding: an ordinary-lane ticket scores LANE_SPLIT + seq, a booked one
# (预约, on time) BOOKED_LANE + seq, a priority one seq, so the priority lane (a hall guide's
# choice for those who cannot wait) comes first, then bookings, then walk-ins, each lane first
# come, first served.
LANE_SPLIT = 1_000_000_000_000
BOOKED_LANE = LANE_SPLIT // 2
# The queue log keeps about this many entries (XADD MAXLEN ~).
LOG_MAXLEN = 100_000

_FIELD = re.compile(r"\{(\w+)\}")


class Family:
    """A family of keys: PREFIX, then a pattern whose ``{field}`` parts are filled in, in order
    (``TICKET("t1")`` is ``yz:ticket:t1``)."""

    __slots__ = ("fields", "pattern", "template")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.fields = tuple(_FIELD.findall(pattern))
        self.template = PREFIX + _FIELD.sub("{}", pattern)

    def __call__(self, *parts: str) -> str:
        if len(parts) != len(self.fields):
            raise TypeError(f"{self.pattern} takes {len(self.fields)} part(s), not {len(parts)}")
        return self.template.format(*parts)

    def __repr__(self) -> str:
        return f"Family({self.pattern!r})"

    def pieces(self) -> list[tuple[bool, str]]:
        """The key as (is_field, text) pieces in order, literal text first (PREFIX included):
        to build the same keys in another language."""
        split = _FIELD.split(PREFIX + self.pattern)
        return [(i % 2 == 1, piece) for i, piece in enumerate(split) if piece]

    @property
    def documented_as(self) -> str:
        """How the layout above writes the family: ``yz:ticket:<ticket_id>``."""
        return PREFIX + _FIELD.sub(r"<\1>", self.pattern)


# queue, tickets, presence (signaling/store.py, signaling/queue.lua)
DEPTS = PREFIX + "depts"
DEPT = Family("dept:{dept}")
USER = Family("user:{username}")
USERS = PREFIX + "users"
PASSWORDS = Family("passwords:{username}")
FAILURES = Family("failures:{username}")
LOCKED = Family("locked:{username}")
ADDRESS_FAILURES = Family("addrfail:{address}")
USER_SESSIONS = Family("usersessions:{username}")
SESSIONS_ENDED = PREFIX + "sessions:ended"
STAFF_USERS = PREFIX + "staffusers"
MEMBERS = Family("members:{pool}")
SESSION = Family("session:{sha}")
TICKET_SEQ = PREFIX + "seq:ticket"
NUMBER_SEQ = Family("seq:number:{dept}:{lane}:{day}")
TICKET = Family("ticket:{ticket_id}")
DECLINED = Family("ticket:{ticket_id}:declined")
QUEUE = Family("queue:{dept}")
RINGING = PREFIX + "ringing"
STAFF = Family("staff:{username}")
AVAILABLE = Family("available:{pool}")
WRAPUP = PREFIX + "wrapup"
CONNS = Family("conns:{kind}:{ident}")
NODE = Family("node:{node}:{kind}")
NODES = PREFIX + "nodes"
STAFF_GONE = PREFIX + "staff_gone"
TICKET_GONE = PREFIX + "ticket_gone"
HANDLED = Family("handled:{dept}")
CALLBACKS = Family("callbacks:{dept}")
GUIDE = Family("guide:{username}")
ADDRESS_TICKETS = Family("addrtickets:{address}")
LIMIT = Family("limit:{rule}:{subject}")
DEVICES = PREFIX + "devices"
DEVICE = Family("device:{device_id}")
DEVICE_TOKEN = Family("devicetoken:{sha}")
DEVICES_REVOKED = PREFIX + "devices:revoked"
LOG = PREFIX + "log"
# acknowledged means replicated (signaling/durable.py)
ACKNOWLEDGED = PREFIX + "acknowledged"
# 差评 rectification cases (signaling/cases.py)
CASE_SEQ = PREFIX + "seq:case"
CASE = Family("case:{case_id}")
CASE_HISTORY = Family("case:{case_id}:history")
CASES = PREFIX + "cases"
DEPT_CASES = Family("cases:{dept}")
OPEN_CASES = PREFIX + "opencases"
# the room directory (signaling/room_directory.py)
ROOM = Family("room:{room_id}")
ROOM_TOKEN = Family("roomtoken:{sha}")
GUEST = Family("guest:{username}")
# the 一次性告知单 (signaling/notice_store.py)
NOTICE = Family("notice:{room_id}")
NOTICE_SEALED = Family("notice:{room_id}:sealed")
NOTICE_LINKS = Family("notice:{room_id}:links")
# appointments (signaling/bookings.py)
BOOKING_RULES = Family("bookingrules:{dept}")
BOOKING = Family("booking:{code}")
BOOKING_SLOT = Family("bookingslot:{dept}:{start}")
BOOKINGS_DAY = Family("bookings:day:{day}")
BOOKINGS_PENDING = PREFIX + "bookings:pending"
# the matter catalogue (signaling/matters.py)
MATTER = Family("matter:{matter_id}")
MATTERS_OF = Family("matters:{dept}")
MATTERS = PREFIX + "matters"
MATTER_SEQ = PREFIX + "seq:matter"
# statistics (signaling/stats_store.py)
STATS_DAY = Family("stats:day:{day}:{dept}:{hall}")
STATS_MONTH = Family("stats:month:{month}:{dept}:{hall}")
STATS_CELLS = Family("stats:cells:{period}")
STATS_TICKET = Family("stats:ticket:{ticket_id}")
STATS_CURSOR = PREFIX + "stats:cursor"
STATS_LOCK = PREFIX + "stats:lock"
# the node registry and its command channels (signaling/nodes.py)
NODE_INFO = Family("nodeinfo:{node}")
NODE_COMMANDS = Family("nodecmd:{node}")
NODE_REPLY = Family("nodereply:{request_id}")


def hash_token(token: str) -> str:
    """A secret token as keys and hashes keep it: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def signaling_keys() -> dict[str, str | Family]:
    """Every key and family above by its name: the queue script's prelude gets them all."""
    return {name: value for name, value in globals().items()
            if name.isupper() and name != "PREFIX" and isinstance(value, str | Family)}
