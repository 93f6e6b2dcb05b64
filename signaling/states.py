"""The states of the queue: a staff member's presence and a ticket's status. The values are the
strings kept in Redis and sent to clients; the queue script gets the same names (signaling/queue.py
writes them into its prelude), so Python and Lua cannot spell them differently."""

from __future__ import annotations

from enum import StrEnum


class Presence(StrEnum):
    AVAILABLE = "available"  # may be rung
    AWAY = "away"            # paused by choice, or by the server after missed rings
    OFFLINE = "offline"      # no desk socket (after the reconnect grace), or signed off
    RINGING = "ringing"      # rung for one ticket
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"      # after a call, for the department's wrap-up time


class TicketStatus(StrEnum):
    WAITING = "waiting"
    RINGING = "ringing"
    CONNECTED = "connected"
    ENDED = "ended"          # the call is over
    CANCELLED = "cancelled"  # by the applicant
    ABANDONED = "abandoned"  # the applicant's sockets were gone past the grace
