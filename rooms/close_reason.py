"""Why a room or a participant's connection ended: one enum, logged with every close."""

from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    HANGUP = "hangup"
    EMPTY = "empty"
    SERVER_SHUTDOWN = "server_shutdown"
    ERROR = "error"
    LEFT = "left"
    # A participant's connection dropped and they did not come back within the grace period.
    RECONNECT_TIMEOUT = "reconnect_timeout"
    # A participant's old connection, replaced by their rejoin (a reload, a reconnection).
    REPLACED = "replaced"
    # This process was taken for dead (stopped for longer than its heartbeat's TTL) and the room
    # re-created on another one: this process lets it go without a word to anybody.
    MOVED = "moved"
