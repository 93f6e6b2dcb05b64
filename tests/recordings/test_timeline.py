"""Timeline building is pure: values in, a dict out."""

from __future__ import annotations

import pytest

from recordings.timeline import ParticipantEntry, TrackEntry, build_timeline, make_event

META = {"ticket_id": "t1", "ticket_number": "税A001", "department": "tax", "other": 1}


def _participants() -> list[ParticipantEntry]:
    return [ParticipantEntry("a", "applicant", "张三", None, joined_at=100.0, left_at=130.0),
            ParticipantEntry("b", "staff", "李四", "tax", joined_at=101.0)]


def _tracks() -> list[TrackEntry]:
    return [TrackEntry("b-video-1", "b", "video", "vp8", "b-video-1.webm", 102.5, 900),
            TrackEntry("a-audio-1", "a", "audio", "opus", "a-audio-1.webm", 101.5, 1500)]


def test_open_timeline_is_incomplete_and_keeps_participants_present() -> None:
    timeline = build_timeline(room_id="r1", meta=META, started_at=100.0, ended_at=None,
                              participants=_participants(), tracks=[], events=[])
    assert timeline["complete"] is False
    assert timeline["ended_at"] is None and timeline["duration"] is None
    assert timeline["participants"][1]["left_at"] is None
    assert timeline["rating"] is None
    assert timeline["recording_id"] == timeline["room_id"] == "r1"
    assert "other" not in timeline


def test_closed_timeline_is_complete_sorted_and_closes_open_participants() -> None:
    events = [make_event(120.0, "leave", {"participant_id": "a"}),
              make_event(101.0, "join", {"participant_id": "b", "role": "staff"})]
    timeline = build_timeline(room_id="r1", meta=META, started_at=100.0, ended_at=160.25,
                              participants=_participants(), tracks=_tracks(), events=events)
    assert timeline["complete"] is True
    assert timeline["duration"] == 60.25
    assert timeline["ticket_number"] == "税A001" and timeline["department"] == "tax"
    assert [p["left_at"] for p in timeline["participants"]] == [130.0, 160.25]
    assert [t["track_id"] for t in timeline["tracks"]] == ["a-audio-1", "b-video-1"]
    assert timeline["tracks"][0] == {"track_id": "a-audio-1", "participant_id": "a",
                                     "kind": "audio", "codec": "opus",
                                     "file": "a-audio-1.webm", "started_at": 101.5,
                                     "packets": 1500}
    assert [e["type"] for e in timeline["events"]] == ["join", "leave"]
    assert timeline["events"][0] == {"t": 101.0, "type": "join", "participant_id": "b",
                                     "role": "staff"}


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError):
        make_event(1.0, "x", {"t": 2})
    with pytest.raises(ValueError):
        make_event(1.0, "", {})
    with pytest.raises(ValueError):
        TrackEntry("x", "a", "data", "vp8", "x.webm", 1.0, 0)
    with pytest.raises(ValueError):
        TrackEntry("x", "a", "video", "vp8", "../x.webm", 1.0, 0)
    with pytest.raises(ValueError):
        ParticipantEntry("a", "staff", "a", None, joined_at=10.0, left_at=5.0)
    with pytest.raises(ValueError):
        build_timeline(room_id="r", meta={}, started_at=10.0, ended_at=5.0, participants=[],
                       tracks=[], events=[])
