"""The serving process's event loop, uvloop against asyncio's own (server/event_loop.py), side by
side in one run, on the two paths whose cost is per message: dispatch and RTP forwarding.

Each round runs both loops, one after the other (the order flips every round, so a machine that
drifts during the run does not favour one), each on its own fresh server with
``YUNZHEN_EVENT_LOOP`` set:
- **dispatch** (bench/dispatch.py): 2,000 Socket.IO connections; ring latency at 50 tickets/s
  (open loop, ``--tickets``), then the closed loop at 12 workers per department: dispatches/s
  and the server's CPU per dispatch;
- **rtp** (bench/rooms.py): 5 three-person rooms on media.forwarding = rtp, the recording on:
  server CPU per forwarded packet and the subscribers' frame rate.

The headline of each figure is the median over the rounds; ``uvloop_vs_asyncio`` is the ratio
of the medians (dispatches/s: higher is better; CPU per dispatch and per packet: lower is).
Writes bench/results/event_loop.json.

    python -m bench.event_loop [--rounds 2] [--seconds 15] [--tickets 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from typing import Any

from bench import dispatch, rooms
from bench.common import ROOT, merge_results
from server.event_loop import LOOPS

RESULTS = ROOT / "bench" / "results" / "event_loop.json"
ROOMS_PLAN = "rt3:5"
DISPATCH_LEVEL = 12
# What each run keeps: (path, key in the results). Lower is better for all but dispatches/s.
DISPATCH_KEYS = ("dispatches_per_s", "dispatch_server_cpu_ms_per_dispatch",
                 "ring_latency_p50_ms", "ring_latency_p99_ms", "dispatch_clients_cpu_pct",
                 "dispatch_machine_busy_pct")
RTP_KEYS = ("us_per_forwarded_packet", "server_cpu_pct", "fps_received_min", "delivered_min",
            "machine_busy_pct")
HIGHER_IS_BETTER = {"dispatches_per_s", "fps_received_min", "delivered_min"}


async def one_round(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["YUNZHEN_EVENT_LOOP"] = kind
    try:
        figures = await dispatch.run(dispatch.parse_args([
            "--levels", str(DISPATCH_LEVEL), "--no-two-procs", "--tickets", str(args.tickets),
            "--window", str(args.seconds), "--anatomy", "0", "--lua-seconds", "0"]))
        out = {"dispatch": {k: figures.get(k) for k in DISPATCH_KEYS}}
        media = await rooms.run(rooms.parse_args([
            "--plan", ROOMS_PLAN, "--seconds", str(args.seconds), "--late-joins", "0"]))
        run = media["rooms_detail"]["runs"]["rtp_3p_x5"]
        out["rtp"] = {k: run.get(k) for k in RTP_KEYS} | (
            {"error": run["error"]} if "error" in run else {})
        return out
    finally:
        os.environ.pop("YUNZHEN_EVENT_LOOP", None)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, keys in (("dispatch", DISPATCH_KEYS), ("rtp", RTP_KEYS)):
        out[path] = {}
        for key in keys:
            values = [r[path][key] for r in runs if isinstance(r[path].get(key), int | float)]
            if values:
                out[path][key] = round(statistics.median(values), 3)
    return out


def compare(by_loop: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each loop's medians (``event_loop``) and uvloop's over asyncio's (``uvloop_vs_asyncio``,
    keyed ``path.figure``)."""
    headline = {kind: medians(runs) for kind, runs in by_loop.items()}
    ratios: dict[str, float] = {}
    for path in ("dispatch", "rtp"):
        for key, uv in headline["uvloop"][path].items():
            base = headline["asyncio"][path].get(key)
            if base:
                ratios[f"{path}.{key}"] = round(uv / base, 3)
    return {"event_loop": headline, "uvloop_vs_asyncio": ratios}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    by_loop: dict[str, list[dict[str, Any]]] = {kind: [] for kind in LOOPS}
    for n in range(args.rounds):
        order = LOOPS if n % 2 == 0 else tuple(reversed(LOOPS))
        this: dict[str, Any] = {}
        for kind in order:
            print(f"==> round {n + 1}, {kind}", flush=True)
            this[kind] = await one_round(kind, args)
            by_loop[kind].append(this[kind])
            print(f"    {this[kind]}", flush=True)
        rounds.append({"order": list(order), **this})
    return {
        **compare(by_loop),
        "event_loop_rounds": rounds,
        "event_loop_basis": (
            f"median of {args.rounds} round(s), both loops in each, order flipped each round; "
            f"dispatch: 2,000 sockets, ring latency at 50 tickets/s over {args.tickets} tickets, "
            f"closed loop at {DISPATCH_LEVEL} workers per department over {args.seconds} s; "
            f"rtp: 5 three-person rooms on media.forwarding = rtp over {args.seconds} s; "
            f"ratios are uvloop / asyncio of the medians ({', '.join(sorted(HIGHER_IS_BETTER))}: "
            "higher is better; the others: lower is)"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.event_loop")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--tickets", type=int, default=1000,
                        help="tickets of the ring-latency phase (at 50/s)")
    args = parser.parse_args(argv)
    merge_results("event_loop", asyncio.run(run(args)), path=RESULTS)
    print(f"==> {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
