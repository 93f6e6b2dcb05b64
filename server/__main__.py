"""Command line: `python -m server serve [--demo]` runs the service."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from server.app import create_app
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
    ]
    if config.demo:
        lines.append(f"  Demo logins (password {DEMO_PASSWORD}):")
        for username, _name, role, departments in DEMO_ACCOUNTS:
            where = f" ({', '.join(departments)})" if departments else ""
            lines.append(f"    {username:<12} {role}{where}")
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
