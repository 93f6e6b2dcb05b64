"""The audit log is a keyed hash chain: verify names the first edited, deleted or reordered entry,
a forged anchor or head, and entries deleted at the end; trimming by age leaves a chain that still
verifies; appenders on separate connections build one chain; `python -m server audit verify`
prints the first break and exits 1."""

from __future__ import annotations

import asyncio
import getpass
import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from recordings.audit import ANCHOR, AUDIT, HEAD, Audit, ChainReport, entry_mac
from tests.support.audit import AUDIT_KEY, Rows, audit_rows, rewrite_audit

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0


async def _filled(redis_client: aioredis.Redis, count: int = 6) -> Audit:
    audit = Audit(redis_client, AUDIT_KEY)
    for n in range(count):
        await audit.append(f"user{n}", "view", recording_id=f"r{n}", remote="127.0.0.1",
                           before={"n": n} if n == 2 else None, after={"名": "改"})
    return audit


def _first(report: ChainReport) -> tuple[str, str, int | None]:
    assert not report.ok and report.first is not None
    return report.first.kind, report.first.entry_id, report.first.seq


async def test_an_intact_chain_verifies_and_every_entry_links_to_the_one_before(
        redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client)
    rows = await audit_rows(redis_client)
    assert [f["seq"] for _, f in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[0][1]["prev"] == ""
    assert all(rows[n][1]["prev"] == rows[n - 1][1]["mac"] for n in range(1, 6))
    assert all(f["mac"] == entry_mac(AUDIT_KEY, f) for _, f in rows)
    assert rows[2][1]["before"] == '{"n": 2}' and rows[0][1]["after"] == '{"名": "改"}'
    head = await redis_client.hgetall(HEAD)  # type: ignore[misc]
    assert (head["seq"], head["mac"], head["id"]) == ("6", rows[5][1]["mac"], rows[5][0])
    report = await audit.verify()
    assert report.ok and report.entries == 6 and report.head_seq == 6 and report.problems == 0
    # Another key does not verify a single entry.
    other = await Audit(redis_client, bytes(32)).verify()
    assert _first(other) == ("edited", rows[0][0], 1)


async def test_an_edited_entry_is_named(redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client)
    rows = await audit_rows(redis_client)

    def edit(rows: Rows) -> Rows:
        rows[3][1]["who"] = "somebody_else"  # same place, same seq, prev and mac
        return rows

    await rewrite_audit(redis_client, edit)
    report = await audit.verify()
    assert _first(report) == ("edited", rows[3][0], 4)
    assert report.problems == 1  # the entries after it still link to its (stored) MAC
    assert report.first is not None and report.first.time is not None


async def test_a_deleted_entry_in_the_middle_is_named(redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client)
    rows = await audit_rows(redis_client)
    await redis_client.xdel(AUDIT, rows[2][0])
    report = await audit.verify()
    assert _first(report) == ("missing", rows[3][0], 4)
    assert report.first is not None and "seq 3 missing" in report.first.message


async def test_deleting_the_last_entries_is_named_by_the_head(
        redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client)
    rows = await audit_rows(redis_client)
    await redis_client.xdel(AUDIT, rows[5][0])
    report = await audit.verify()
    assert _first(report) == ("truncated", rows[5][0], 6)
    await redis_client.xdel(AUDIT, rows[4][0])
    report = await audit.verify()
    assert report.first is not None and "seq 5–6 missing at the end" in report.first.message
    # Moving the head back onto the last entry that is left takes the key.
    await redis_client.hset(HEAD, mapping={"seq": "4", "mac": rows[3][1]["mac"],
                                           "id": rows[3][0]})
    assert _first(await audit.verify()) == ("head", rows[3][0], 4)
    await redis_client.delete(HEAD)
    assert _first(await audit.verify())[0] == "head"


async def test_reordered_entries_are_named_where_the_order_breaks(
        redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client)
    rows = await audit_rows(redis_client)

    def swap(rows: Rows) -> Rows:
        # Same stream ids, the contents of seq 3 and seq 4 trade places.
        (id3, f3), (id4, f4) = rows[2], rows[3]
        rows[2], rows[3] = (id3, f4), (id4, f3)
        return rows

    await rewrite_audit(redis_client, swap)
    report = await audit.verify()
    assert _first(report) == ("reordered", rows[2][0], 4)
    assert report.first is not None and "seq 3 was expected here" in report.first.message


async def test_entries_replaced_by_a_valid_chain_of_another_log_break_the_link(
        redis_client: aioredis.Redis) -> None:
    """Entries moved in from another chain under the same key carry valid MACs and the right
    seq, but do not follow this chain's entries."""
    await _filled(redis_client, 4)
    rows = await audit_rows(redis_client)
    await redis_client.delete(AUDIT, HEAD)
    other = await _filled(redis_client, 4)
    foreign = await audit_rows(redis_client)

    def splice(_: Rows) -> Rows:
        return [rows[0], rows[1], (foreign[0][0], foreign[2][1]), (foreign[1][0], foreign[3][1])]

    await rewrite_audit(redis_client, splice)
    assert _first(await other.verify()) == ("link", foreign[0][0], 3)


async def test_a_forged_anchor_and_a_trim_without_one_are_named(
        redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client)
    rows = await audit_rows(redis_client)
    # Deleting the oldest entries (as trimming would, but without the anchor trimming writes).
    await redis_client.xtrim(AUDIT, minid=rows[2][0], approximate=False)
    assert _first(await audit.verify()) == ("missing", rows[2][0], 3)
    # An anchor made to cover them needs the key.
    await redis_client.hset(ANCHOR, mapping={"seq": "2", "mac": rows[1][1]["mac"],
                                             "id": rows[1][0], "time": rows[1][1]["time"],
                                             "sig": "0" * 64})
    assert _first(await audit.verify()) == ("anchor", rows[1][0], 2)


async def test_trimming_by_age_leaves_an_anchor_and_a_chain_that_verifies(
        redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client, 4)
    await asyncio.sleep(0.01)  # the next entries get later stream ids (server time, ms)
    for n in range(3):
        await audit.append("late", "list", detail=str(n))
    rows = await audit_rows(redis_client)
    # 190 days after the 4th entry: the first four are past the window, and go.
    fourth_ms = int(rows[3][0].split("-")[0])
    audit.clock = lambda: (fourth_ms + 1.5) / 1000 + 190 * DAY
    await audit.append("later", "list")
    left = await audit_rows(redis_client)
    assert [f["seq"] for _, f in left] == ["5", "6", "7", "8"]
    anchor = await redis_client.hgetall(ANCHOR)  # type: ignore[misc]
    assert (anchor["seq"], anchor["mac"], anchor["id"]) == ("4", rows[3][1]["mac"], rows[3][0])
    report = await audit.verify()
    assert report.ok and report.anchor_seq == 4 and report.entries == 4 and report.head_seq == 8
    # A deletion of the oldest entries left is still found: the anchor says where they start.
    await redis_client.xdel(AUDIT, left[0][0])
    assert _first(await audit.verify()) == ("missing", left[1][0], 6)


async def test_an_edited_entry_is_never_trimmed_into_the_anchor(
        redis_client: aioredis.Redis) -> None:
    """Trimming signs the anchor over the newest trimmed entry; a forged one is not signed over:
    it stays past its time, and verify keeps naming it."""
    audit = await _filled(redis_client, 3)
    rows = await audit_rows(redis_client)

    def edit(rows: Rows) -> Rows:
        rows[2][1]["detail"] = "nothing to see"
        return rows

    await rewrite_audit(redis_client, edit)
    await asyncio.sleep(0.01)
    third_ms = int(rows[2][0].split("-")[0])
    audit.clock = lambda: (third_ms + 1.5) / 1000 + 190 * DAY
    await audit.append("later", "list")  # every entry before it is past the window
    assert await redis_client.exists(ANCHOR) == 0
    assert await redis_client.xlen(AUDIT) == 4
    assert _first(await audit.verify()) == ("edited", rows[2][0], 3)


async def test_two_appenders_on_separate_connections_build_one_chain(
        redis_url: str, redis_client: aioredis.Redis) -> None:
    first = aioredis.from_url(redis_url, decode_responses=True)
    second = aioredis.from_url(redis_url, decode_responses=True)
    try:
        one, two = Audit(first, AUDIT_KEY), Audit(second, AUDIT_KEY)
        await asyncio.gather(*(
            (one if n % 2 else two).append(f"p{n % 2}", "view", detail=str(n))
            for n in range(200)))
    finally:
        await first.aclose()
        await second.aclose()
    rows = await audit_rows(redis_client)
    assert [int(f["seq"]) for _, f in rows] == list(range(1, 201))
    assert sorted(int(f["detail"]) for _, f in rows) == list(range(200))
    assert {f["who"] for _, f in rows} == {"p0", "p1"}
    report = await Audit(redis_client, AUDIT_KEY).verify()
    assert report.ok and report.entries == 200 and report.head_seq == 200


def _cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", "audit", "verify"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


async def test_the_audit_verify_command_prints_the_first_break_and_exits_1(
        redis_client: aioredis.Redis, redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "YUNZHEN_DATA_DIR": str(tmp_path), "YUNZHEN_REDIS_URL": redis_url}
    env.pop("YUNZHEN_CONFIG", None)
    env.pop("YUNZHEN_AUDIT_KEY", None)
    # No key anywhere: the command says so rather than making one that verifies nothing.
    result = _cli(env)
    assert result.returncode == 2 and "no audit key" in result.stderr
    env["YUNZHEN_AUDIT_KEY"] = AUDIT_KEY.hex()
    audit = await _filled(redis_client)
    result = _cli(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: audit log intact, 6 entries, head seq 6")
    rows = await audit_rows(redis_client)
    await redis_client.xdel(AUDIT, rows[3][0])
    result = _cli(env)
    assert result.returncode == 1, result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"BROKEN: entry {rows[4][0]}, seq 5, time 20"), line
    assert "missing: seq 4 missing before it (deleted)" in line
    # Each run is audited, with who ran it and what it found.
    runs = [f for _, f in await audit_rows(redis_client) if f["action"] == "audit_verify"]
    assert [(f["who"], f["detail"]) for f in runs] == [
        (f"cli:{getpass.getuser()}", "ok"),
        (f"cli:{getpass.getuser()}", f"missing at seq 5 ({rows[4][0]}); 1 break(s)")]
    assert not (await audit.verify()).ok


async def test_the_audit_verify_command_starts_the_private_redis_when_the_service_is_down(
        tmp_path: Path) -> None:
    env = {**os.environ, "YUNZHEN_DATA_DIR": str(tmp_path), "YUNZHEN_AUDIT_KEY": AUDIT_KEY.hex()}
    for name in ("YUNZHEN_CONFIG", "YUNZHEN_REDIS_URL"):
        env.pop(name, None)
    result = _cli(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: audit log intact, 0 entries, head seq 0")
    # Its own run went into the private Redis's log (AOF under the data directory).
    result = _cli(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: audit log intact, 1 entry, head seq 1")


async def test_a_garbled_head_does_not_stop_the_log_and_verify_reports_it(
        redis_client: aioredis.Redis) -> None:
    audit = await _filled(redis_client, 2)
    await redis_client.hset(HEAD, "seq", "garbage")
    await Audit(redis_client, AUDIT_KEY).append("after", "login")
    rows = await audit_rows(redis_client)
    assert [f["seq"] for _, f in rows] == ["1", "2", "1"]
    assert _first(await audit.verify()) == ("reordered", rows[2][0], 1)
