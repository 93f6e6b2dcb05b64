"""Why a room or a participant's connection ended: one enum, logged with every close."""

from __future__ import annotations

from enum import StrEnum


class CloseReason(StrEnum):
    HANGUP = "hangup"
    EMPTY = "empty"
    SERVER_SHUTDOWN = "server_shutdown"
    ERROR = "error"
    LEFT = "left"
