"""`python -m server serve --demo --workers 2` behind a real nginx: the node registry, rooms
placed by load on either process, the desk's and the kiosk's sockets on different processes, the
participants joining through /n/<name>/ with media flowing, other_node answers with the right
base, a room moved to another node found again by its participants, a dead worker started again,
Ctrl+C stopping every process; and the refusals of bad --workers values."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rooms.client import RoomClient, RoomClientError
from signaling import keys
from signaling.client import SignalingClient, login_cookie
from tests.support.cluster import Cluster, alive, descendants
from tests.support.http import client_session, logged_in

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo12345"

pytestmark = pytest.mark.usefixtures("loopback_candidates")


async def _nodes(cluster: Cluster, count: int = 2) -> dict[str, dict[str, str]]:
    """name -> registry entry of the live nodes, once `count` are there."""
    for _ in range(100):
        live: list[str] = await cluster.redis.zrangebyscore(  # type: ignore[assignment]
            keys.NODES, time.time(), "+inf")
        rows: list[dict[str, str]] = [
            await cluster.redis.hgetall(keys.NODE_INFO(node))  # type: ignore[misc]
            for node in live]
        named = {row["name"]: row for row in rows if row}
        if len(named) >= count:
            return named
        await asyncio.sleep(0.1)
    pytest.fail(f"fewer than {count} live nodes in the registry")


async def _node_of(cluster: Cluster, kind: str, ident: str) -> str:
    for _ in range(50):
        nodes = await cluster.redis.hkeys(keys.CONNS(kind, ident))
        if nodes:
            [node] = nodes
            return str(node)
        await asyncio.sleep(0.1)
    pytest.fail(f"no node holds {kind} {ident}")


async def _desk(cluster: Cluster, username: str, sockets: list[SignalingClient]
                ) -> tuple[SignalingClient, str]:
    cookie = await login_cookie(cluster.url, username, PASSWORD)
    desk = await SignalingClient.connect(cluster.url, "/staff", cookie)
    sockets.append(desk)
    await desk.next("staff:state")
    await desk.request("presence:set", {"state": "available"})
    return desk, await _node_of(cluster, "staff", username)


async def _kiosk_ticket(cluster: Cluster, department: str, avoid: str,
                        sockets: list[SignalingClient]
                        ) -> tuple[SignalingClient, dict[str, Any], str]:
    """A kiosk socket with a ticket, on a process other than `avoid` (nginx spreads new
    connections by their count: a few tries at most)."""
    for _ in range(8):
        kiosk = await SignalingClient.connect(cluster.url, "/kiosk")
        ticket = (await kiosk.request("ticket:create", {"department": department,
                                                        "consent": True}))["ticket"]
        node = await _node_of(cluster, "ticket", ticket["ticket_id"])
        if node != avoid:
            sockets.append(kiosk)
            return kiosk, ticket, node
        await kiosk.request("ticket:cancel", {"ticket_id": ticket["ticket_id"],
                                              "token": ticket["token"]})
        await kiosk.close()
    pytest.fail("every kiosk socket landed on the desk's process")


async def _call(cluster: Cluster, staff: str, department: str,
                sockets: list[SignalingClient]) -> dict[str, Any]:
    desk, desk_node = await _desk(cluster, staff, sockets)
    kiosk, ticket, kiosk_node = await _kiosk_ticket(cluster, department, desk_node, sockets)
    await desk.next("call:incoming", ticket_id=ticket["ticket_id"])
    answer = await desk.request("call:accept", {"ticket_id": ticket["ticket_id"]})
    update = await kiosk.next("ticket:update", status="connected")
    entry = await cluster.redis.hgetall(keys.ROOM(answer["room"]["room_id"]))
    return {"staff": answer["room"], "applicant": update["room"], "entry": entry,
            "desk_node": desk_node, "kiosk_node": kiosk_node, "ticket": ticket}


async def _where(cluster: Cluster, room_id: str, token: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{cluster.url}/api/rooms/{room_id}/where",
            headers={"X-Room-Token": token}) as response:
        return response.status, await response.json()


async def test_two_workers_behind_nginx_place_route_and_move_rooms(
        cluster: Cluster) -> None:
    nodes = await _nodes(cluster)
    assert sorted(nodes) == ["w1", "w2"]
    assert {n["base"] for n in nodes.values()} == {"/n/w1", "/n/w2"}
    by_id = {row["node"]: name for name, row in nodes.items()}
    sockets: list[SignalingClient] = []
    peers: list[RoomClient] = []
    try:
        # The desk's socket and the kiosk's are on different processes; the first room goes to
        # the less loaded one, the second (the first one's node now carries a room) to the
        # other.
        first = await _call(cluster, "tax01", "tax", sockets)
        assert first["desk_node"] != first["kiosk_node"]
        host = first["entry"]["node"]
        assert first["staff"]["base"] == first["applicant"]["base"] == f"/n/{by_id[host]}"
        await asyncio.sleep(1.2)  # both nodes' next registry writes count the room
        second = await _call(cluster, "market01", "market", sockets)
        other = second["entry"]["node"]
        assert other != host
        assert second["staff"]["base"] == f"/n/{by_id[other]}"
        loads = {by_id[n]: float((await cluster.redis.hgetall(keys.NODE_INFO(n)))["load"])
                 for n in (host, other)}
        assert all(load >= 2 for load in loads.values()), loads

        # Staff and applicant join through the hosting node's prefix; media flows both ways.
        room_id = first["staff"]["room_id"]
        staff = await RoomClient.connect(cluster.url, room_id, first["staff"]["token"],
                                         name="staff", base=first["staff"]["base"])
        peers.append(staff)
        applicant = await RoomClient.connect(cluster.url, room_id,
                                             first["applicant"]["token"], name="applicant",
                                             base=first["applicant"]["base"])
        peers.append(applicant)
        await staff.wait_for_video(10, 30)
        await applicant.wait_for_video(10, 30)

        # The other process answers other_node with the right base (socket and HTTP).
        wrong = f"/n/{by_id[other]}"
        with pytest.raises(RoomClientError) as refused:
            await RoomClient.connect(cluster.url, room_id, first["staff"]["token"],
                                     base=wrong, video=False, audio=False)
        assert refused.value.code == "other_node"
        async with client_session() as supervisor:
            await logged_in(supervisor, cluster.url, "supervisor")
            response = await supervisor.post(
                f"{cluster.url}{wrong}/api/rooms/{room_id}/observe", json={})
            body = await response.json()
            assert (response.status, body["error"]["code"], body["error"]["base"]) == (
                409, "other_node", first["staff"]["base"])
            response = await supervisor.post(
                f"{cluster.url}{first['staff']['base']}/api/rooms/{room_id}/observe", json={})
            body = await response.json()
            assert response.status == 200, body
            assert body["room"]["base"] == first["staff"]["base"]
        assert await _where(cluster, room_id, first["staff"]["token"]) == (
            200, {"ok": True, "room_id": room_id, "base": first["staff"]["base"]})
        status, body = await _where(cluster, room_id, second["staff"]["token"])
        assert (status, body["error"]["code"]) == (403, "forbidden")
        assert body["error"]["message_en"] == "The room token is not valid."

        # The room moves to the other node (what the node-loss take-over does: the directory
        # entry names the new node, which opens it; a node the entry does not name would not),
        # and its first node dies.
        await cluster.redis.hset(keys.ROOM(room_id), "node", other)
        reply = "move-test"
        await cluster.redis.publish(keys.NODE_COMMANDS(other), json.dumps({
            "op": "open_room", "reply": reply,
            "args": {"room_id": room_id, "ticket_id": first["ticket"]["ticket_id"],
                     "staff": "tax01", "now": time.time()}}))
        answer = await cluster.redis.blpop([keys.NODE_REPLY(reply)], timeout=5)
        assert answer is not None and json.loads(answer[1]) == {"node": other}
        await cluster.redis.srem(keys.NODE(host, "rooms"), room_id)
        os.kill(int(nodes[by_id[host]]["pid"]), signal.SIGKILL)
        new_base = f"/n/{by_id[other]}"
        # Asked at the public address, any live process says where the room is now; the
        # participants join there with the tokens they have.
        for _ in range(50):
            status, body = await _where(cluster, room_id, first["applicant"]["token"])
            if status == 200:
                break
            await asyncio.sleep(0.2)
        assert body["base"] == new_base
        for peer in peers:
            await peer.close()
        peers.clear()
        staff = await RoomClient.connect(cluster.url, room_id, first["staff"]["token"],
                                         name="staff", base=body["base"])
        peers.append(staff)
        applicant = await RoomClient.connect(cluster.url, room_id,
                                             first["applicant"]["token"], name="applicant",
                                             base=body["base"])
        peers.append(applicant)
        await staff.wait_for_video(10, 30)
        await applicant.wait_for_video(10, 30)

        # The dead worker is started again under its name, as a new node.
        for _ in range(150):
            again = await _nodes(cluster)
            if again[by_id[host]]["node"] != host:
                break
            await asyncio.sleep(0.2)
        assert again[by_id[host]]["node"] != host
        assert again[by_id[host]]["base"] == f"/n/{by_id[host]}"
    finally:
        for peer in peers:
            await peer.close()
        for client in sockets:
            await client.close()

    # Ctrl+C stops the workers, nginx and Redis: no process is left.
    below = descendants(cluster.process.pid)
    assert len(below) >= 4  # two workers, nginx (and its workers), redis-server
    cluster.process.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(cluster.process.wait, 40) == 0
    assert [pid for pid in below if alive(pid)] == []


@pytest.mark.parametrize("value", ["0", "65", "many", "-1"])
def test_bad_worker_counts_are_refused(value: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--demo", "--workers", value], cwd=ROOT,
        env={**os.environ, "YUNZHEN_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
        timeout=30)
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert not (tmp_path / "redis").exists()  # nothing was started


def test_nginx_config_for_several_machines(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "nginx-config", "--node", "w1=10.0.0.5:8101",
         "--node", "w2=10.0.0.6:8101", "--listen", "8080"], cwd=ROOT, capture_output=True,
        text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    conf = result.stdout
    assert "least_conn;" in conf and "server 10.0.0.5:8101;" in conf
    assert "location /n/w2/ {\n            proxy_pass http://yunzhen_w2/;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    for bad in (["--node", "w1"], ["--node", "W1=10.0.0.5:8101"],
                ["--node", "w1=10.0.0.5:99999"],
                ["--node", "w1=10.0.0.5:1", "--node", "w1=10.0.0.6:1"], []):
        result = subprocess.run([sys.executable, "-m", "server", "nginx-config", *bad],
                                cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, bad
        assert result.stderr.startswith("configuration error:"), bad
    # nginx itself accepts the configuration.
    (tmp_path / "run").mkdir()
    from server.nginx import NginxNode, render
    path = tmp_path / "nginx.conf"
    path.write_text(render([NginxNode("w1", "127.0.0.1:8101")], "127.0.0.1:18080",
                           tmp_path / "run", tmp_path))
    check = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(path)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
