"""Rooms: participants, their peer connections, and encoded-media forwarding (pass-through SFU)."""
