"""Socket.IO's JSON codec (signaling/fastjson.py) accepts and refuses what the standard library
does, and writes what it reads back."""

from __future__ import annotations

import json
import math

import pytest

from signaling.fastjson import FastJson


def test_round_trip_of_what_the_service_sends() -> None:
    payload = {"number": "TA001", "name_zh": "税务", "position": 3, "eta_seconds": None,
               "created_at": 1733312345.123456, "also": ["market"], "priority": False}
    text = FastJson.dumps(payload, separators=(",", ":"))
    assert FastJson.loads(text) == payload == json.loads(text)
    assert FastJson.loads(text.encode()) == payload


def test_what_orjson_refuses_is_decided_as_the_standard_library_does() -> None:
    with pytest.raises(RecursionError):
        FastJson.loads("[" * 100_000 + "]" * 100_000)
    assert math.isnan(FastJson.loads("[NaN]")[0])
    assert FastJson.loads('"\\ud800"') == "\ud800"
    with pytest.raises(ValueError):
        FastJson.loads("{not json")
    assert FastJson.dumps({1: 2 ** 70}) == json.dumps({1: 2 ** 70})
    assert json.loads(FastJson.dumps({1: "a"})) == {"1": "a"}
