"""A call the ACD opened through real sockets: the room and both tokens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Call:
    room_id: str
    applicant_token: str
    staff_token: str
