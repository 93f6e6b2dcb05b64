"""Command line: `python -m server serve [--demo]` runs the service; `python -m server verify
[recording_id]` checks the recording archive against its integrity chain; `python -m server
reindex` rebuilds the recordings index in Redis from the files on disk."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from recordings import manifest
from server.app import create_app
from server.cli_redis import private_redis_pid
from server.config import Config, ConfigError, load_config
from server.keys import REDIS_URL
from server.seed import DEMO_ACCOUNTS, DEMO_PASSWORD


def _banner(config: Config, redis_url: str) -> str:
    base = f"http://{config.host}:{config.port}"
    lines = [
        "",
        "云诊 Yunzhen is running.",
        f"  Kiosk (applicants)      {base}/",
        f"  Staff desk              {base}/staff",
        f"  Supervisor              {base}/supervisor",
        f"  Admin                   {base}/admin",
        f"  Audit (auditor)         {base}/audit",
    ]
    if config.demo:
        lines.append(f"  Demo logins (password {DEMO_PASSWORD}; demo accounts only: no second "
                     "factor, no forced password change):")
        for username, _name, role, departments in DEMO_ACCOUNTS:
            where = f" ({', '.join(departments)})" if departments else ""
            lines.append(f"    {username:<12} {role}{where}")
        lines.append("  Accounts created on the admin page follow the rules: a one-time password "
                     "changed at first sign-in, a second factor for admin, auditor and supervisor.")
    which = "external" if config.redis_url else "private, AOF under the data directory"
    lines.append(f"  Redis                   {redis_url} ({which})")
    lines.append(f"  Data directory          {config.data_dir.resolve()}")
    lines.append("  Press Ctrl+C to stop.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="云诊 Yunzhen server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--demo", action="store_true", help="seed demo departments and accounts")
    verify = sub.add_parser("verify", help="check recordings against the integrity chain")
    verify.add_argument("recording_id", nargs="?", help="one recording (default: all)")
    verify.add_argument("--config", type=Path, help="TOML configuration file")
    reindex = sub.add_parser("reindex", help="rebuild the recordings index from the files")
    reindex.add_argument("--config", type=Path, help="TOML configuration file")
    args = parser.parse_args(argv)
    if args.command == "verify":
        return _verify(args.config, args.recording_id)
    if args.command == "reindex":
        return _reindex(args.config)

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
        if args.demo:
            overrides["demo"] = True
        config = replace(config, **overrides)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # run_app calls `print` once the socket listens, so the URLs printed are ready to open.
    web.run_app(app, host=config.host, port=config.port,
                print=lambda _: print(_banner(config, app[REDIS_URL]), flush=True))
    return 0


async def _redis_head(config: Config, recording_id: str | None,
                      report: manifest.Report | None) -> dict[str, str] | None:
    """The chain head from Redis (and an audit entry once ``report`` is known), when the
    configuration names an external Redis; the private one runs only inside `serve`."""
    import redis.asyncio as aioredis

    from recordings.archive import HEAD
    from recordings.audit import Audit

    client = aioredis.from_url(config.redis_url, decode_responses=True, socket_timeout=5,
                               socket_connect_timeout=5)
    try:
        if report is None:
            head: dict[str, str] = await client.hgetall(HEAD)  # type: ignore[assignment]
            return head or None
        await Audit(client).append(f"cli:{getpass.getuser()}", "verify",
                                   recording_id=recording_id or "", remote="local",
                                   detail="ok" if report.ok else
                                   f"{len(report.problems)} problem(s)")
        return None
    finally:
        await client.aclose()


def _verify(config_path: Path | None, recording_id: str | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    root = config.recordings_dir
    head = None
    if config.redis_url:
        try:
            head = asyncio.run(_redis_head(config, recording_id, None))
        except Exception as exc:  # Redis is optional here: the files carry the chain
            print(f"Redis not reachable ({exc}); checking from the files alone", file=sys.stderr)
    else:
        print("no redis_url configured: checking from the files alone", file=sys.stderr)
    report = manifest.verify(root, recording_id, head)
    for problem in report.problems:
        print(problem)
    what = f"recording {recording_id}" if recording_id else f"{report.recordings} recording(s)"
    print(f"{'OK' if report.ok else 'FAILED'}: {what}, {report.links} chain link(s), "
          f"{len(report.problems)} problem(s)")
    if config.redis_url:
        try:
            asyncio.run(_redis_head(config, recording_id, report))
        except Exception:
            pass
    return 0 if report.ok else 1


async def _run_reindex(config: Config) -> dict[str, int]:
    import redis.asyncio as aioredis

    from recordings.archive import Archive
    from server.redis_server import EmbeddedRedis

    embedded = None if config.redis_url else EmbeddedRedis(config.redis_dir,
                                                          config.redis_server_binary)
    if embedded is not None:
        await embedded.start()
    client = aioredis.from_url(embedded.url if embedded else config.redis_url,
                               decode_responses=True, socket_timeout=30,
                               socket_connect_timeout=5)
    try:
        return await Archive(client, config.recordings_dir).reindex()
    finally:
        await client.aclose()
        if embedded is not None:
            await embedded.stop()


def _reindex(config_path: Path | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not config.redis_url:
        # The private Redis belongs to the running service; a second redis-server on the same
        # AOF would corrupt it.
        pid = private_redis_pid(config.redis_dir)
        if pid is not None:
            print(f"the service is running (its redis-server, pid {pid}, uses "
                  f"{config.redis_dir}): stop it first", file=sys.stderr)
            return 2
    try:
        counts = asyncio.run(_run_reindex(config))
    except Exception as exc:
        print(f"reindex failed: {exc}", file=sys.stderr)
        return 1
    print(f"OK: {counts['indexed']} recording(s) indexed from {config.recordings_dir} "
          f"({counts['ratings']} rated, {counts['holds']} on legal hold), "
          f"{counts['skipped']} skipped (still open or unreadable), "
          f"{counts['removed']} entr{'y' if counts['removed'] == 1 else 'ies'} without files "
          f"removed" + (", chain head restored" if counts["head_restored"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
