"""The resilience figures of issue 11 in one file, bench/results/resilience.json: how many malformed
inputs the service takes without a 5xx or a traceback (a run of the fuzzer, tests/fuzz/, which
this bench performs, or whose report it reads), how long it takes to come back from losing its
private Redis (bench/resilience_redis.py), and the soak's figures (bench/soak.py's
bench/results/soak.json, copied).

    python -m bench.resilience                          # fuzz + 3 Redis kills + the soak's figures
    python -m bench.resilience --fuzz-report r.json     # a fuzz run's report instead of a new run
    python -m bench.resilience --kills 0                # no Redis kills: redis_restart_s null
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, merge_results
from bench.soak import RESULTS as SOAK_RESULTS

RESULTS = ROOT / "bench" / "results" / "resilience.json"
SOAK_FIGURES = ("sockets", "sockets_kiosk", "sockets_staff", "minutes", "tickets",
                "tickets_lost", "double_booked", "ring_latency_p50_ms", "ring_latency_p99_ms",
                "rss_mb_start", "rss_mb_end", "redis_mb_start", "redis_mb_end")


def run_fuzz(scale: float, report: Path) -> dict[str, Any]:
    """`pytest tests/fuzz` with its report written to `report`; its exit status and time."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz",
         "-W", "ignore::hypothesis.errors.HypothesisWarning"],
        cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "YUNZHEN_FUZZ_REPORT": str(report),
             "YUNZHEN_FUZZ_SCALE": str(scale)})
    print(done.stdout[-2000:], flush=True)
    return {"fuzz_exit_status": done.returncode,
            "fuzz_seconds": round(time.monotonic() - started, 1)}


def fuzz_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Totals over the fuzz tests. `fuzz_5xx`: HTTP answers 500 or above, and socket events
    answered `internal` (the socket protocol's 500) or not answered at all."""
    tests = {name: {k: v for k, v in data.items() if k != "examples"}
             for name, data in report.items()}
    return {
        "fuzz_inputs": sum(t["inputs"] for t in tests.values()),
        "fuzz_5xx": sum(t["server_errors"] + t["unanswered"] for t in tests.values()),
        "fuzz_tracebacks": sum(t["tracebacks"] for t in tests.values()),
        "fuzz_error_lines": sum(t["error_lines"] for t in tests.values()),
        "fuzz_detail": tests,
    }


def soak_figures(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"soak": None}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"soak": {name: data.get(name) for name in SOAK_FIGURES}
            | {"machine": data.get("machines", {}).get("soak")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resilience")
    parser.add_argument("--fuzz-report", type=Path,
                        help="read this fuzz report ($YUNZHEN_FUZZ_REPORT of a run) instead")
    parser.add_argument("--fuzz-scale", type=float, default=1.0,
                        help="YUNZHEN_FUZZ_SCALE for the fuzz run (1: about 11,000 inputs)")
    parser.add_argument("--kills", type=int, default=3,
                        help="kill -9s of the private Redis (0: skip, redis_restart_s null)")
    parser.add_argument("--soak", type=Path, default=SOAK_RESULTS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    figures: dict[str, Any] = {}
    if args.fuzz_report is not None:
        report_path = args.fuzz_report
    else:
        report_path = Path(tempfile.mkdtemp(prefix="yunzhen-fuzz-")) / "report.json"
        figures.update(run_fuzz(args.fuzz_scale, report_path))
    figures.update(fuzz_figures(json.loads(report_path.read_text(encoding="utf-8"))))
    if args.kills > 0:
        from bench.resilience_redis import measure

        redis = asyncio.run(measure(args.kills))
        figures["redis_restart_s"] = redis["redis_restart_s"]
        figures["redis_restart_runs"] = redis["redis_restart_runs"]
        figures["redis_restart_tickets_lost"] = redis["tickets_lost"]
    else:
        figures["redis_restart_s"] = None
    figures.update(soak_figures(args.soak))
    print(json.dumps({k: v for k, v in figures.items() if k != "fuzz_detail"},
                     ensure_ascii=False, indent=1))
    merge_results("resilience", figures, path=args.out)
    print(f"==> {args.out}")
    return 0 if figures["fuzz_5xx"] == figures["fuzz_tracebacks"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
