"""The Python participant (rooms.client.RoomClient) through the real server's Socket.IO signaling:
an applicant and a staff member join the room of an accepted call and see each other."""

from __future__ import annotations

from typing import Any

from rooms.client import RoomClient
from signaling.client import SignalingClient as SocketClient
from signaling.client import login_cookie


async def test_room_clients_see_each_other_through_the_server_and_hang_up(server: Any) -> None:
    kiosk = await SocketClient.connect(server.url, "/kiosk")
    staff = await SocketClient.connect(server.url, "/staff",
                                       await login_cookie(server.url, "tax01", "demo12345"))
    await staff.next("staff:state")
    ticket = (await kiosk.call("ticket:create", {"department": "tax", "consent": True}))["ticket"]
    await staff.call("presence:set", {"state": "available"})
    await staff.next("call:incoming")
    accepted = await staff.call("call:accept", {"ticket_id": ticket["ticket_id"]})
    update = await kiosk.next("ticket:update", status="connected")

    applicant = await RoomClient.connect(server.url, update["room"]["room_id"],
                                         update["room"]["token"], name="applicant",
                                         width=320, height=240)
    desk = await RoomClient.connect(server.url, accepted["room"]["room_id"],
                                    accepted["room"]["token"], name="staff",
                                    width=320, height=240)
    try:
        assert applicant.role == "applicant" and desk.role == "staff"
        await applicant.wait_for_video(15, timeout=10)
        await desk.wait_for_video(15, timeout=10)
        stats = desk.stats()[applicant.participant_id or ""]
        assert stats["audio_packets"] + stats["audio_frames"] > 0
        await desk.hangup()
        await applicant.peer.ended.wait()
        assert applicant.peer.ended_reason == "hangup"
    finally:
        await applicant.close()
        await desk.close()
        await kiosk.close()
        await staff.close()
