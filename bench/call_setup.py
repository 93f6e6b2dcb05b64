"""Call setup time in real Chromium: from the staff member's click on accept-call to the first
decoded remote video frame, on the kiosk and on the staff desk.

One real server (``python -m server serve --demo``, its private Redis) as a subprocess; one
Chromium with a fake camera and microphone; one staff page logged in once and reused; one kiosk
page reused from call to call (as a hall kiosk is). Each call: 税务 → consent → start; the staff
page is rung; accept; both pages poll getStats() every 20 ms in the page itself and note when
inbound video framesDecoded first exceeds 0; hang up, rate, back to start; the desk is available
again. Times are taken in the pages (performance.timeOrigin + performance.now(), one clock in
one browser), so Playwright's round trips are not in the figures.

    python -m bench.call_setup [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ServerProcess, merge_results, percentile
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, TRACK_PEER_CONNECTIONS, submit_login

# The tests' instrumentation (every RTCPeerConnection remembered), and a page-side watcher of
# the first decoded inbound frame.
INIT_SCRIPT = TRACK_PEER_CONNECTIONS + """
window.__now = () => performance.timeOrigin + performance.now();
window.__benchWatch = (fromIndex, intervalMs) => {
  const watch = {firstFrameAt: null, polls: 0, done: false};
  window.__watch = watch;
  const tick = async () => {
    if (watch.done) return;
    watch.polls += 1;
    for (const pc of window.__pcs.slice(fromIndex)) {
      let report;
      try { report = await pc.getStats(); } catch (e) { continue; }
      let decoded = 0;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') decoded += s.framesDecoded || 0;
      });
      if (decoded > 0) {
        watch.firstFrameAt = window.__now();
        watch.done = true;
        return;
      }
    }
    setTimeout(tick, intervalMs);
  };
  tick();
};
"""

MARK_ACCEPT_CLICK = """
() => {
  window.__acceptAt = null;
  const btn = document.querySelector('[data-testid=accept-call]');
  btn.addEventListener('click', () => { window.__acceptAt = window.__now(); },
                       {capture: true, once: true});
}
"""


async def _new_page(browser: Any) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.add_init_script(INIT_SCRIPT)
    return page


async def _wait_first_frames(kiosk: Any, staff: Any, timeout: float) -> tuple[float, float]:
    deadline = time.monotonic() + timeout
    while True:
        k = await kiosk.evaluate("window.__watch && window.__watch.firstFrameAt")
        s = await staff.evaluate("window.__watch && window.__watch.firstFrameAt")
        if k is not None and s is not None:
            return float(k), float(s)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no first frame within {timeout} s (kiosk {k}, staff {s})")
        await asyncio.sleep(0.05)


async def one_call(kiosk: Any, staff: Any, expect: Any, poll_ms: int) -> dict[str, float]:
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(staff.get_by_test_id("incoming-call")).to_be_visible(timeout=15_000)

    # Watch only peer connections made from now on (old ones of earlier calls stay listed).
    for page in (kiosk, staff):
        count = await page.evaluate("window.__pcs.length")
        await page.evaluate(f"window.__benchWatch({count}, {poll_ms})")
    await staff.evaluate(MARK_ACCEPT_CLICK)
    await staff.get_by_test_id("accept-call").click()
    kiosk_at, staff_at = await _wait_first_frames(kiosk, staff, timeout=20.0)
    accept_at = float(await staff.evaluate("window.__acceptAt"))
    polls = await kiosk.evaluate("window.__watch.polls"), await staff.evaluate(
        "window.__watch.polls")

    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("rating-5")).to_be_visible(timeout=15_000)
    await kiosk.get_by_test_id("rating-5").click()
    await kiosk.get_by_test_id("rating-submit").click()
    await expect(kiosk.get_by_test_id("thanks-back")).to_be_visible(timeout=10_000)
    await kiosk.get_by_test_id("thanks-back").click()
    await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible(timeout=10_000)
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true", timeout=15_000)
    kiosk_ms = kiosk_at - accept_at
    staff_ms = staff_at - accept_at
    return {"setup_ms": round(max(kiosk_ms, staff_ms), 1), "kiosk_ms": round(kiosk_ms, 1),
            "staff_ms": round(staff_ms, 1), "polls_kiosk": polls[0], "polls_staff": polls[1]}


async def run(calls: int, poll_ms: int, keep_log: Path | None = None) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    server = ServerProcess(["server", "serve", "--demo"], name="call-setup")
    server.keep_log = keep_log
    await server.start()
    results: list[dict[str, float]] = []
    warmup: dict[str, float] | None = None
    started = time.monotonic()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                               headless=True)
            try:
                staff = await _new_page(browser)
                await staff.goto(f"{server.url}/staff")
                await submit_login(staff, "tax01")
                await staff.get_by_test_id("presence-available").click()
                await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
                    "aria-pressed", "true")
                kiosk = await _new_page(browser)
                await kiosk.goto(server.url + "/")
                await expect(kiosk.get_by_test_id("dept-tax")).to_be_visible()

                warmup = await one_call(kiosk, staff, expect, poll_ms)
                print(f"warm-up call: {warmup}", flush=True)
                for n in range(calls):
                    result = await one_call(kiosk, staff, expect, poll_ms)
                    results.append(result)
                    print(f"call {n + 1}/{calls}: {result}", flush=True)
            finally:
                await browser.close()
    except BaseException:
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        await server.stop()

    setup = [r["setup_ms"] for r in results]
    kiosk_ms = [r["kiosk_ms"] for r in results]
    staff_ms = [r["staff_ms"] for r in results]
    return {
        "setup_p50_ms": round(percentile(setup, 50), 1),
        "setup_p95_ms": round(percentile(setup, 95), 1),
        "setup_kiosk_p50_ms": round(percentile(kiosk_ms, 50), 1),
        "setup_staff_p50_ms": round(percentile(staff_ms, 50), 1),
        "setup_min_ms": min(setup),
        "setup_max_ms": max(setup),
        "setup_calls": len(results),
        "setup_calls_over_2s": sum(1 for v in setup if v > 2000),
        "setup_warmup_call_ms": warmup["setup_ms"] if warmup else None,
        "setup_warmup_call": warmup,
        "setup_poll_interval_ms": poll_ms,
        "setup_wall_s": round(time.monotonic() - started, 1),
        "setup_definition": (
            "staff click on accept-call → first inbound video frame decoded (getStats "
            "framesDecoded > 0, polled in the page every poll interval) on BOTH the kiosk and "
            "the staff page; setup = the later of the two; one warm-up call not counted"),
        "calls": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.call_setup")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--poll-ms", type=int, default=20)
    parser.add_argument("--keep-log", type=Path, help="copy the server's log here at the end")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.calls, args.poll_ms, args.keep_log))
    merge_results("call_setup", figures)
    print({k: v for k, v in figures.items() if k != "calls"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
