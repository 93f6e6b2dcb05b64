"""Room-layer errors. Each carries the name of its answer in the error catalogue
(signaling/errors.py, `from_room_error`), so the mapping lives in one place."""

from __future__ import annotations


class RoomError(Exception):
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RoomClosed(RoomError):
    code = "bad_state"


class AlreadyJoined(RoomError):
    code = "bad_state"


class RoomFull(RoomError):
    code = "room_full"


class NotJoined(RoomError):
    code = "bad_state"


class NoPendingOffer(RoomError):
    code = "bad_state"


class InvalidAnswer(RoomError):
    code = "invalid_payload"


class UnsupportedCodec(InvalidAnswer):
    """The answer has no codec in common with the server's one video codec."""

    code = "unsupported_codec"


class InvalidJoin(RoomError):
    code = "invalid_payload"


class ShareLimit(RoomError):
    code = "bad_state"


class ObserverOnly(RoomError):
    """A receive-only participant (a silent supervisor) tried to speak, show or write."""

    code = "forbidden"
