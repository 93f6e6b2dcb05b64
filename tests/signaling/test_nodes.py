"""Placement by load in the node registry (signaling/nodes.py) against a real Redis: a room goes
to the least-loaded live node that pages can reach through its path, and a node that nothing
forwards to alone (no path: a process not behind the launcher's nginx) places every room here."""

from __future__ import annotations

import time

from signaling.nodes import Nodes
from signaling.store import Store


async def _node(store: Store, node: str, base: str, rooms: list[int]) -> Nodes:
    nodes = Nodes(store, node, name=node, base=base, address="127.0.0.1:1",
                  room_sizes=lambda: rooms)
    await store.heartbeat(node, time.time())
    await nodes.write()
    return nodes


async def test_a_room_goes_to_the_least_loaded_node_with_a_path(store: Store) -> None:
    here = await _node(store, "n1", "/n/w1", [3, 3])
    await _node(store, "n2", "/n/w2", [3])
    await _node(store, "n3", "", [])  # idle, but no page can reach it alone
    chosen = await here.choose()
    assert chosen is not None and chosen.node == "n2"
    # Counted at once: n2 now carries one more room than n4, which has the load n2 had.
    await _node(store, "n4", "/n/w4", [3])
    again = await here.choose()
    assert again is not None and again.node == "n4"


async def test_a_node_without_a_path_places_nothing_elsewhere(store: Store) -> None:
    here = await _node(store, "n1", "", [3, 3, 3])
    await _node(store, "n2", "/n/w2", [])
    assert await here.choose() is None
