"""Command line: `python -m server serve [--demo] [--workers N|auto]` runs the service (one
process, or N workers behind nginx: server/workers.py); `python -m server nginx-config --node
NAME=HOST:PORT …` prints the nginx configuration for processes on several machines; `python -m
server verify [recording_id]` checks the recording archive against its integrity chain; `python
-m server reindex` rebuilds the recordings index in Redis from the files on disk; `python -m
server accounts list|add|disable|enable|unlock|reset-password|reset-2fa` administers accounts
(the first admin of a new installation among them); `python -m server audit verify` checks the
audit log's chain."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from recordings import manifest
from recordings.audit import Audit
from rooms.roles import ACCOUNT_ROLES
from server import cli_audit, event_loop, gc_policy
from server.app import create_app
from server.cli_redis import cli_redis, private_redis_pid
from server.config import Config, ConfigError, load_config
from server.data_keys import audit_key
from server.http.devices import HideDeviceTokens
from server.keys import REDIS_URL
from server.nginx import NginxNode, render
from server.redis_server import RedisStartError
from server.seed import DEMO_ACCOUNTS, DEMO_PASSWORD
from server.workers import Launcher, worker_count
from signaling.account_admin import AccountAdmin, Actor, Profile
from signaling.accounts import Accounts, User
from signaling.errors import SignalError
from signaling.sessions import Sessions
from signaling.store import Store


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
    which = ("Sentinel" if config.redis_sentinels else "external") if config.external_redis \
        else "private, AOF under the data directory"
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
    serve.add_argument("--workers", help="N worker processes behind nginx (N or auto: one per "
                                         "core); without it, one process serves alone")
    serve.add_argument("--node-name", help="this process's stable name among several (w1, …)")
    nginx_config = sub.add_parser(
        "nginx-config", help="print the nginx configuration for processes on several machines")
    nginx_config.add_argument("--node", action="append", default=[], metavar="NAME=HOST:PORT",
                              help="a server process (repeat for each)")
    nginx_config.add_argument("--listen", default="80", help="nginx's host:port (default 80)")
    nginx_config.add_argument("--run-dir", default="/run/nginx-yunzhen",
                              help="nginx's pid and temporary files")
    nginx_config.add_argument("--log-dir", default="/var/log/nginx", help="nginx's logs")
    verify = sub.add_parser("verify", help="check recordings against the integrity chain")
    verify.add_argument("recording_id", nargs="?", help="one recording (default: all)")
    verify.add_argument("--config", type=Path, help="TOML configuration file")
    reindex = sub.add_parser("reindex", help="rebuild the recordings index from the files")
    reindex.add_argument("--config", type=Path, help="TOML configuration file")
    _accounts_parser(sub)
    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_verify = audit_sub.add_parser(
        "verify", help="check the audit log's chain: OK, or the first broken or missing entry")
    audit_verify.add_argument("--config", type=Path, help="TOML configuration file")
    args = parser.parse_args(argv)
    if args.command == "audit":
        return cli_audit.verify(args.config)
    if args.command == "verify":
        return _verify(args.config, args.recording_id)
    if args.command == "reindex":
        return _reindex(args.config)
    if args.command == "accounts":
        return _accounts(args)
    if args.command == "nginx-config":
        return _nginx_config(args)

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").addFilter(HideDeviceTokens())
    try:
        config = load_config(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                       ("node_name", args.node_name)) if v}
        if args.demo:
            overrides["demo"] = True
        config = replace(config, **overrides)
        workers = worker_count(args.workers) if args.workers is not None else 0
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if workers:
        launcher = Launcher(config, workers, config_path=args.config, demo=config.demo)
        redis = launcher.redis_url or ",".join(config.redis_sentinels)
        banner = _banner(config, redis) + "\n" + "\n".join(
            f"  Worker {w.name:<16} {w.address} (through nginx: /n/{w.name}/)"
            for w in launcher.workers)
        return asyncio.run(launcher.run(banner))
    if not config.demo:
        refused = _refuse_without_admin(config)
        if refused:
            return refused
    try:
        app = create_app(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    gc_policy.tune()
    # run_app calls `print` once the socket listens, so the URLs printed are ready to open.
    # A worker behind the launcher says only that it is ready: the launcher prints the URLs.
    ready = (lambda _: print(f"worker {config.node_name} ready on {config.host}:{config.port}",
                             flush=True)) if config.node_path \
        else (lambda _: print(_banner(config, app[REDIS_URL]), flush=True))
    loop = event_loop.new_loop(config.event_loop)
    logging.getLogger(__name__).info("event loop: %s", event_loop.name(loop))
    web.run_app(app, host=config.host, port=config.port, print=ready, loop=loop)
    return 0


def _nginx_config(args: argparse.Namespace) -> int:
    try:
        nodes = [NginxNode.parse(text) for text in args.node]
        print(render(nodes, args.listen, Path(args.run_dir), Path(args.log_dir),
                     access_log=True), end="")
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _redis_head(config: Config, recording_id: str | None,
                      report: manifest.Report | None) -> dict[str, str] | None:
    """The chain head from Redis (and an audit entry once ``report`` is known), when the
    configuration names an external Redis; the private one runs only inside `serve`."""
    from recordings.archive import HEAD
    from recordings.audit import Audit
    from server.redis_connect import RedisConnector

    connector = RedisConnector(config, config.redis_url)
    client = connector.client(decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
    try:
        if report is None:
            head: dict[str, str] = await client.hgetall(HEAD)  # type: ignore[assignment]
            return head or None
        audit = Audit(client, audit_key(config, create=False),
                      keep_days=config.audit_keep_days)
        await audit.append(f"cli:{getpass.getuser()}", "verify",
                           recording_id=recording_id or "", remote="local",
                           detail="ok" if report.ok else f"{len(report.problems)} problem(s)")
        return None
    finally:
        await client.aclose()
        await connector.aclose()


def _verify(config_path: Path | None, recording_id: str | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    root = config.recordings_dir
    head = None
    if config.external_redis:
        try:
            head = asyncio.run(_redis_head(config, recording_id, None))
        except Exception as exc:  # Redis is optional here: the files carry the chain
            print(f"Redis not reachable ({exc}); checking from the files alone", file=sys.stderr)
    else:
        print("no redis_url or redis_sentinels configured: checking from the files alone",
              file=sys.stderr)
    report = manifest.verify(root, recording_id, head)
    for problem in report.problems:
        print(problem)
    what = f"recording {recording_id}" if recording_id else f"{report.recordings} recording(s)"
    print(f"{'OK' if report.ok else 'FAILED'}: {what}, {report.links} chain link(s), "
          f"{len(report.problems)} problem(s)")
    if config.external_redis:
        try:
            asyncio.run(_redis_head(config, recording_id, report))
        except Exception:
            pass
    return 0 if report.ok else 1


async def _run_reindex(config: Config) -> dict[str, int]:
    from recordings.archive import Archive
    from recordings.audit import Audit
    from server.redis_connect import RedisConnector
    from server.redis_server import EmbeddedRedis

    embedded = None if config.external_redis else EmbeddedRedis(config.redis_dir,
                                                               config.redis_server_binary)
    if embedded is not None:
        await embedded.start()
    connector = RedisConnector(config, embedded.url if embedded else config.redis_url)
    client = connector.client(decode_responses=True, socket_timeout=30, socket_connect_timeout=5)
    try:
        audit = Audit(client, audit_key(config), keep_days=config.audit_keep_days)
        return await Archive(client, config.recordings_dir, audit).reindex()
    finally:
        await client.aclose()
        await connector.aclose()
        if embedded is not None:
            await embedded.stop()


def _reindex(config_path: Path | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not config.external_redis:
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


# accounts ----------------------------------------------------------------------------------------
FIRST_ADMIN = "python -m server accounts add admin --name 管理员 --role admin"


def _accounts_parser(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="list, add, disable, enable, unlock accounts, "
                                               "reset a password or second factor")
    verbs = accounts.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="every account and its state")
    add = verbs.add_parser("add", help="a new account; prints its one-time password")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--role", required=True, choices=[str(r) for r in ACCOUNT_ROLES])
    add.add_argument("--departments", default="", help="department ids, comma separated")
    for verb, text in (("disable", "disable an account and end its sessions"),
                       ("enable", "enable a disabled account"),
                       ("unlock", "lift a lockout after failed sign-ins"),
                       ("reset-password", "a new one-time password; ends its sessions"),
                       ("reset-2fa", "forget the second factor; set up again at next sign-in")):
        verbs.add_parser(verb, help=text).add_argument("username")
    for parser in (accounts, *verbs.choices.values()):
        parser.add_argument("--config", type=Path, help="TOML configuration file")


def _cli_audit(config: Config, client: Any) -> Audit:
    return Audit(client, audit_key(config), keep_days=config.audit_keep_days)


def _account_line(user: User) -> str:
    state = ["disabled" if user.disabled else "enabled"]
    if user.locked_for:
        state.append(f"locked {-(-user.locked_for // 60)} min")
    if user.totp_enrolled:
        state.append("2FA")
    if user.must_change:
        state.append("must change password")
    if user.demo:
        state.append("demo")
    return (f"{user.username:<16} {user.role:<10} {','.join(user.departments) or '-':<20} "
            f"{', '.join(state):<32} {user.display_name}")


async def _run_accounts(config: Config, args: argparse.Namespace) -> str:
    """Do one `accounts` verb; returns what to print. Refusals raise SignalError."""
    async with cli_redis(config) as client:
        accounts = Accounts(client, config.accounts)
        service = AccountAdmin(accounts, Sessions(client, accounts, config.accounts),
                               Store(client, config.signaling), _cli_audit(config, client))
        actor = Actor(f"cli:{getpass.getuser()}", "local")
        if args.verb == "list":
            users = await accounts.users()
            head = f"{'USERNAME':<16} {'ROLE':<10} {'DEPARTMENTS':<20} {'STATE':<32} NAME"
            return "\n".join([head, *(_account_line(u) for u in users)])
        username = args.username
        if args.verb == "add":
            departments = tuple(d.strip() for d in args.departments.split(",") if d.strip())
            user, password = await service.create(actor, username, Profile(
                display_name=args.name, role=args.role, departments=departments))
            return (f"created {user.username} ({user.role}); one-time password: {password}\n"
                    "It is shown only this once and must be changed at the first sign-in.")
        if args.verb == "enable":
            await service.set_disabled(actor, username, False)
            return f"{username}: enabled"
        if args.verb == "disable":
            await service.set_disabled(actor, username, True)
            warning = "" if await accounts.has_admin() else (
                "\nNo enabled admin account is left: the service will not start until one is "
                f"enabled (python -m server accounts enable USERNAME) or added ({FIRST_ADMIN}).")
            return f"{username}: disabled; its sessions are ended{warning}"
        if args.verb == "unlock":
            await service.unlock(actor, username)
            return f"{username}: unlocked"
        if args.verb == "reset-password":
            _, password = await service.reset_password(actor, username)
            return (f"{username}: new one-time password: {password}\n"
                    "It is shown only this once and must be changed at the next sign-in; "
                    "the account's sessions are ended.")
        await service.reset_totp(actor, username)
        return f"{username}: second factor reset; set up again at the next sign-in"


def _accounts(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        print(asyncio.run(_run_accounts(config, args)))
    except SignalError as exc:
        print(f"refused: {exc.message_en} ({exc.message})", file=sys.stderr)
        return 1
    except (OSError, RedisError, RedisStartError) as exc:
        print(f"Redis not reachable: {exc}", file=sys.stderr)
        return 1
    return 0


async def _has_admin(config: Config) -> bool:
    async with cli_redis(config) as client:
        return await Accounts(client, config.accounts).has_admin()


def _refuse_without_admin(config: Config) -> int:
    """A service without demo data needs an enabled admin account before it starts (nobody
    could create the others): 0 when it has one, else the exit code after saying how."""
    try:
        if asyncio.run(_has_admin(config)):
            return 0
    except (OSError, RedisError, RedisStartError) as exc:
        print(f"Redis not reachable: {exc}", file=sys.stderr)
        return 1
    print("No enabled admin account: the service does not start without one. Create the first "
          f"admin with\n  {FIRST_ADMIN}\n(it prints a one-time password, changed at the first "
          "sign-in), or try the service with demo accounts: serve --demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
