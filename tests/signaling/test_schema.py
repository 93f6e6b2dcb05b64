from typing import Any

import pytest

from signaling.errors import SignalError
from signaling.schema import parse


def test_a_valid_payload_passes_through() -> None:
    assert parse("/kiosk", "ticket:create", {"department": "tax", "consent": True}, 65536) == {
        "department": "tax", "consent": True}
    assert parse("/room", "room:hangup", None, 65536) == {}


@pytest.mark.parametrize("payload", [
    "tax",
    ["tax"],
    {"department": "tax"},
    {"department": "tax", "consent": True, "extra": 1},
    {"department": 7, "consent": True},
    {"department": "", "consent": True},
    {"department": "x" * 65, "consent": True},
    {"department": "tax", "consent": "yes"},
])
def test_malformed_ticket_payloads_are_refused(payload: Any) -> None:
    with pytest.raises(SignalError) as info:
        parse("/kiosk", "ticket:create", payload, 65536)
    assert info.value.code == "invalid_payload"


@pytest.mark.parametrize("rating", [0, 6, True, "5", 4.5])
def test_rating_must_be_a_whole_number_from_one_to_five(rating: Any) -> None:
    with pytest.raises(SignalError):
        parse("/kiosk", "rating:submit", {"ticket_id": "t", "token": "k", "rating": rating},
              65536)


def test_oversized_payload_and_unknown_event_are_refused() -> None:
    with pytest.raises(SignalError, match="larger"):
        parse("/room", "room:answer", {"sdp": "v=0" + "a" * 5000}, 2048)
    with pytest.raises(SignalError, match="unknown event"):
        parse("/kiosk", "ticket:steal", {}, 65536)


def test_error_answers_carry_chinese_and_english_messages() -> None:
    answer = SignalError("unknown_department", "nope").to_dict()
    assert answer["ok"] is False
    assert answer["error"]["code"] == "unknown_department"
    assert "部门" in answer["error"]["message"]
    assert answer["error"]["message_en"]
