"""`python -m server audit verify`: walks the audit log's chain on the service's Redis (external,
the running service's private one, or the private one started for the check) and prints OK or the
first broken or missing entry; the check itself is audited."""

from __future__ import annotations

import asyncio
import getpass
import sys
from pathlib import Path

from recordings.audit import Audit, ChainReport
from server.cli_redis import cli_redis
from server.config import Config, ConfigError, load_config
from server.data_keys import audit_key


def describe(report: ChainReport, config: Config) -> list[str]:
    """The report as the command prints it: one line when intact, else the first break (its
    stream id, seq, local time and what is wrong) and a count."""
    if report.first is None:
        trimmed = f" (seq {report.anchor_seq + 1} on; older entries trimmed by retention)" \
            if report.anchor_seq else ""
        return [f"OK: audit log intact, {report.entries} entr"
                f"{'y' if report.entries == 1 else 'ies'}{trimmed}, head seq {report.head_seq}"]
    first = report.first
    when = config.signaling.local_time(first.time).isoformat(timespec="seconds") \
        if first.time is not None else "-"
    seq = first.seq if first.seq is not None else "-"
    return [f"BROKEN: entry {first.entry_id or '-'}, seq {seq}, time {when}: {first.kind}: "
            f"{first.message}",
            f"{report.problems} break(s) in {report.entries} entries read; head seq "
            f"{report.head_seq}"]


async def _verify(config: Config, key: bytes) -> ChainReport:
    async with cli_redis(config) as client:
        audit = Audit(client, key, keep_days=config.audit_keep_days)
        report = await audit.verify()
        first = report.first
        await audit.append(f"cli:{getpass.getuser()}", "audit_verify", remote="local",
                           detail="ok" if first is None else
                           f"{first.kind} at seq {first.seq} ({first.entry_id}); "
                           f"{report.problems} break(s)")
        return report


def verify(config_path: Path | None) -> int:
    try:
        config = load_config(config_path)
        key = audit_key(config, create=False)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_verify(config, key))
    except Exception as exc:
        print(f"audit verify failed: {exc}", file=sys.stderr)
        return 2
    for line in describe(report, config):
        print(line)
    return 0 if report.ok else 1
