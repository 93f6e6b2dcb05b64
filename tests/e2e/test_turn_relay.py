"""TURN with time-limited credentials, for real: Debian's coturn on loopback with use-auth-secret,
the service handing each participant a credential on room:join, and a kiosk browser allowed only
relay candidates (iceTransportPolicy "relay"), so its media can only flow through coturn. The
kiosk decodes the staff's video and the staff the kiosk's, and the kiosk's selected candidate
pair is a relay candidate, over UDP and over TCP to the TURN server."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.config import Config
from tests.support.browser import TRACK_PEER_CONNECTIONS, login
from tests.support.pages import wait_media
from tests.support.server import LiveServer, start_server

pytestmark = pytest.mark.browser

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
REALM = "yunzhen.test"

# Test-only instrumentation, added with page.add_init_script: every RTCPeerConnection the page
# makes may use relay candidates only, and the configuration the page asked for is kept in
# window.__iceConfigs. It wraps whatever RTCPeerConnection is there (TRACK_PEER_CONNECTIONS may
# run before or after it), so the two compose in either order.
FORCE_RELAY = """
window.__iceConfigs = [];
const Inner = window.RTCPeerConnection;
window.RTCPeerConnection = function (config, ...rest) {
  window.__iceConfigs.push(JSON.parse(JSON.stringify(config || {})));
  return new Inner(Object.assign({}, config || {}, {iceTransportPolicy: 'relay'}), ...rest);
};
window.RTCPeerConnection.prototype = Inner.prototype;
"""

# page.evaluate(SELECTED_PAIRS): for each peer connection, the selected candidate pair's local and
# remote candidates (transport → selectedCandidatePairId → candidate-pair → local-candidate), and
# the types of all local candidates gathered.
SELECTED_PAIRS = """
async () => {
  const out = [];
  for (const pc of window.__pcs) {
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const localTypes = [];
    report.forEach((s) => { if (s.type === 'local-candidate') localTypes.push(s.candidateType); });
    const pick = (c) => c && {type: c.candidateType, address: c.address, port: c.port,
                              protocol: c.protocol, relayProtocol: c.relayProtocol || null,
                              url: c.url || null};
    report.forEach((s) => {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) return;
      const pair = byId.get(s.selectedCandidatePairId);
      out.push({state: pair && pair.state,
                local: pick(pair && byId.get(pair.localCandidateId)),
                remote: pick(pair && byId.get(pair.remoteCandidateId)),
                localTypes});
    });
  }
  return out;
}
"""


@dataclass
class Coturn:
    port: int
    secret: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


def _free_port() -> int:
    """A loopback port free for both UDP and TCP (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")


@pytest.fixture
def coturn(tmp_path: Path) -> Any:
    if not Path(TURNSERVER).exists():
        pytest.fail(f"coturn's turnserver is not installed at {TURNSERVER}: run ./yunzhen.sh test")
    port, secret = _free_port(), secrets.token_urlsafe(24)
    state = tmp_path / "coturn"
    state.mkdir()
    log = state / "turnserver.log"
    process = subprocess.Popen([
        TURNSERVER, "-n",                       # no configuration file: everything is here
        "--listening-ip=127.0.0.1", f"--listening-port={port}", "--relay-ip=127.0.0.1",
        "--min-port=49152", "--max-port=65535",
        "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={REALM}",
        "--fingerprint", "--allow-loopback-peers", "--no-multicast-peers",
        "--no-tls", "--no-dtls", "--no-cli",
        f"--log-file={log}", "--simple-log", "--no-stdout-log", "--verbose",
        f"--pidfile={state / 'turnserver.pid'}", f"--userdb={state / 'turndb'}",
    ], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    turn = Coturn(port=port, secret=secret, log=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"turnserver exited with {process.returncode}:\n{turn.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"turnserver did not listen on {port}:\n{turn.log_text()}")
                time.sleep(0.05)
        yield turn
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["udp", "tcp"])
async def turn_service(request: pytest.FixtureRequest, coturn: Coturn, config: Config,
                       redis_client: aioredis.Redis) -> AsyncIterator[tuple[LiveServer, str]]:
    """The service with TURN over one transport to the loopback coturn (sharing its secret)."""
    transport = request.param
    url = f"turn:127.0.0.1:{coturn.port}?transport={transport}"
    media = replace(config.media, turn_urls=(url,), turn_secret=coturn.secret, turn_ttl=600)
    live = await start_server(replace(config, media=media))
    try:
        yield live, transport
    finally:
        await live.runner.cleanup()


async def _page(browser: Any, *, relay_only: bool) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.add_init_script(TRACK_PEER_CONNECTIONS)
    if relay_only:
        await page.add_init_script(FORCE_RELAY)
    return page


async def _selected_pairs(page: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pairs: list[dict[str, Any]] = await page.evaluate(SELECTED_PAIRS)
        if pairs and all(p["state"] == "succeeded" and p["local"] for p in pairs):
            return pairs
        if time.monotonic() > deadline:
            pytest.fail(f"no selected candidate pair: {pairs}")
        await asyncio.sleep(0.2)


async def test_a_relay_only_kiosk_gets_media_through_coturn_with_its_join_credential(
        turn_service: tuple[LiveServer, str], coturn: Coturn, browser: Any) -> None:
    from playwright.async_api import expect

    server, transport = turn_service
    kiosk = await _page(browser, relay_only=True)
    staff = await _page(browser, relay_only=False)

    await login(staff, f"{server.url}/staff", "tax01")
    await staff.get_by_test_id("presence-available").click()
    await expect(staff.get_by_test_id("presence-available")).to_have_attribute(
        "aria-pressed", "true")
    await kiosk.goto(server.url + "/")
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("consent-accept").check()
    await kiosk.get_by_test_id("start-consult").click()
    await expect(staff.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await staff.get_by_test_id("accept-call").click()

    try:
        # Both decode each other's video and hear each other, the kiosk's side all relayed.
        kiosk_stats = await wait_media(kiosk, frames=30)
        staff_stats = await wait_media(staff, frames=30)
        pairs = await _selected_pairs(kiosk)
    except BaseException:
        print(coturn.log_text()[-6000:])
        raise
    assert kiosk_stats["pcs"] == staff_stats["pcs"] == 1

    # The kiosk's page was handed a credential for its own participant id, made from the secret.
    configs = await kiosk.evaluate("window.__iceConfigs")
    assert len(configs) == 1
    (turn,) = configs[0]["iceServers"]
    assert turn["urls"] == [f"turn:127.0.0.1:{coturn.port}?transport={transport}"]
    expiry, participant_id = turn["username"].split(":", 1)
    assert participant_id.startswith("a")
    assert 0 < int(expiry) - time.time() <= 600

    # The selected pair's local candidate is a relay candidate on coturn, reached over the
    # transport the service named; the browser gathered no other kind.
    (pair,) = pairs
    assert pair["local"]["type"] == "relay", pairs
    assert pair["local"]["relayProtocol"] == transport, pairs
    assert pair["local"]["address"] == "127.0.0.1", pairs
    assert set(pair["localTypes"]) == {"relay"}, pairs
    # The server's side is its announced host candidate.
    assert pair["remote"]["type"] == "host" and pair["remote"]["address"] == "127.0.0.1", pairs

    # coturn authenticated the allocation with that time-limited username.
    log = coturn.log_text()
    assert f"user <{turn['username']}>" in log, log[-4000:]
    assert "ALLOCATE processed, success" in log, log[-4000:]
