"""A recording continued in a new part after its process died (recordings/parts.py): the dead
part's files are read back as crash recovery reads them, the new part writes new files after
them, the timeline lists both parts and a gap, and the finished recording is indexed, sealed
and verifies clean. Real files, written by the recorder and read back with PyAV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av

from recordings import parts, recovery
from recordings.archive import Archive
from recordings.audit import Audit
from recordings.export import export_recording
from recordings.recorder import Recorder, TrackRecorder
from tests.support.audit import AUDIT_KEY
from tests.support.export_media import Clock, opus_packets, vp8_packets

T0 = 1_800_000_000.0


def _first_part(directory: Path, clock: Clock) -> None:
    """Two participants, 2 s of audio and video each, then the process 'dies': the files stop
    where they are and the timeline on disk is the last checkpoint (incomplete)."""
    recorder = Recorder(directory, room_id=directory.name,
                        meta={"ticket_id": "t1", "ticket_number": "税A001",
                              "department": "tax"}, clock=clock)
    recorder.start()
    recorder.add_event("open")
    for pid, role in (("a-t1", "applicant"), ("s-tax01", "staff")):
        recorder.participant_joined(pid, role=role, name=pid, department=None)
    for track in _media(recorder, clock, seconds=2.0):
        track.close()  # the files as a killed process leaves them (the timeline is not closed)


def _media(recorder: Recorder, clock: Clock, seconds: float) -> list[TrackRecorder]:
    start = clock.now
    tracks = []
    for pid in ("a-t1", "s-tax01"):
        video = recorder.track(pid, "video", "vp8")
        audio = recorder.track(pid, "audio", "opus")
        tracks += [video, audio]
        for packet in vp8_packets(seconds):
            clock.now = start + (packet.pts or 0) / 90000
            video.write(packet)
        for packet in opus_packets(seconds):
            clock.now = start + (packet.pts or 0) / 48000
            audio.write(packet)
    clock.now = start + seconds
    return tracks


def test_the_dead_part_is_read_back_and_the_new_part_numbers_its_files_after_it(
        tmp_path: Path) -> None:
    directory = tmp_path / "r1"
    clock = Clock(T0)
    _first_part(directory, clock)
    on_disk = json.loads((directory / "timeline.json").read_text(encoding="utf-8"))
    assert on_disk["complete"] is False
    # The checkpoints kept who was in the call.
    assert {p["participant_id"] for p in on_disk["participants"]} == {"a-t1", "s-tax01"}

    previous = parts.read_back(directory, lost_node="nodeA", node="nodeB", now=T0 + 9)
    assert previous.started_at == T0
    assert sorted(t.file for t in previous.tracks) == [
        "a-t1-audio-1.webm", "a-t1-video-1.webm", "s-tax01-audio-1.webm",
        "s-tax01-video-1.webm"]
    assert previous.counters == {"a-t1-video": 1, "a-t1-audio": 1, "s-tax01-video": 1,
                                 "s-tax01-audio": 1}
    # The dead part ends with its last packet, not when the sweep noticed.
    assert T0 + 1.8 <= previous.lost_at <= T0 + 2.1
    assert previous.gap["reason"] == "node_lost"
    assert (previous.gap["from_node"], previous.gap["to_node"]) == ("nodeA", "nodeB")
    [part] = previous.parts
    assert part["node"] == "nodeA" and part["ended_at"] == previous.lost_at
    assert len(part["tracks"]) == 4


async def test_a_continued_recording_has_two_parts_a_gap_and_verifies(
        redis_client: Any, tmp_path: Path) -> None:
    archive = Archive(redis_client, tmp_path / "recordings", Audit(redis_client, AUDIT_KEY))
    directory = archive.root / "r-parts"
    clock = Clock(T0)
    _first_part(directory, clock)

    clock.now = T0 + 8.0  # the sweep, then the adoption
    recorder = Recorder(directory, room_id="r-parts",
                        meta={"ticket_id": "t1", "ticket_number": "税A001",
                              "department": "tax"}, clock=clock)
    recorder.continue_from(parts.read_back(directory, lost_node="nodeA", node="nodeB",
                                           now=clock.now))
    recorder.start()
    clock.now = T0 + 9.0  # the participants are back
    for pid, role in (("a-t1", "applicant"), ("s-tax01", "staff")):
        recorder.participant_joined(pid, role=role, name=pid, department=None)
    _media(recorder, clock, seconds=2.0)
    recorder.add_event("close", reason="hangup")
    summary = recorder.close()

    assert summary["complete"] is True
    assert summary["started_at"] == T0 and summary["ended_at"] == clock.now
    # One entry per participant across the gap.
    assert sorted(p["participant_id"] for p in summary["participants"]) == ["a-t1", "s-tax01"]
    files = sorted(t["file"] for t in summary["tracks"])
    assert files == sorted(f"{pid}-{kind}-{n}.webm" for pid in ("a-t1", "s-tax01")
                           for kind in ("audio", "video") for n in (1, 2))
    [gap] = [e for e in summary["events"] if e["type"] == "gap"]
    assert gap["reason"] == "node_lost" and gap["from_node"] == "nodeA"
    assert gap["to_node"] == "nodeB"
    assert T0 + 1.8 <= gap["t"] <= T0 + 2.1
    assert gap["until"] is not None and T0 + 9.0 <= gap["until"] <= T0 + 9.2
    first, second = summary["parts"]
    assert (first["part"], first["node"], first["started_at"]) == (1, "nodeA", T0)
    assert first["ended_at"] == gap["t"]
    assert (second["part"], second["node"], second["started_at"]) == (2, "nodeB", gap["until"])
    assert second["ended_at"] == summary["ended_at"]
    assert sorted(first["tracks"] + second["tracks"]) == sorted(t[:-5] for t in files)
    for name in files:  # every part's files play
        with av.open(str(directory / name)) as container:
            assert sum(1 for _ in container.demux(container.streams[0])) > 10

    # The composite export spans both parts: one cell per participant (a reconnect's newer
    # track replaces the older one in it), the gap in between without pictures.
    result = export_recording(directory, summary, tmp_path / "out" / "r-parts.mp4")
    assert result.cells == 2
    assert abs(result.duration - summary["duration"]) < 1.0

    # Not an orphan once finished; indexed and sealed once, covering both parts.
    assert await recovery.orphans(archive, [], clock.now + 60) == []
    await archive.index(summary)
    entry = await archive.entry("r-parts")
    assert entry is not None and entry["tracks"] == 8 and entry["complete"] is True
    report = await archive.verify("r-parts")
    assert report.ok, report


async def test_a_room_of_a_dead_process_not_swept_yet_is_no_orphan(
        redis_client: Any, tmp_path: Path) -> None:
    """Between the deadline and the sweep the room may still move to a live process: recovery
    waits for the sweep, and recovers once the dead node is gone from yz:nodes."""
    archive = Archive(redis_client, tmp_path / "recordings", Audit(redis_client, AUDIT_KEY))
    directory = archive.root / "r-unswept"
    _first_part(directory, Clock(T0))
    now = T0 + 100
    await redis_client.zadd("yz:nodes", {"n-dead": now - 1})
    await redis_client.hset("yz:room:r-unswept", "node", "n-dead")
    try:
        assert await recovery.orphans(archive, [], now) == []
        await redis_client.zrem("yz:nodes", "n-dead")
        assert [d.name for d in await recovery.orphans(archive, [], now)] == ["r-unswept"]
    finally:
        await redis_client.delete("yz:room:r-unswept", "yz:nodes")
