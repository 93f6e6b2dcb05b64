"""rooms._native.Srtp (passthrough 16.) against pylibsrtp itself: two sessions made alike give the
same bytes, each side reads what the other wrote, and refusals are pylibsrtp's."""

from __future__ import annotations

import os
import struct

import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import passthrough

KEY = os.urandom(30)
PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80


def session(direction: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(policy=pylibsrtp.Policy(key=KEY, ssrc_type=direction,
                                                     srtp_profile=PROFILE))


def outbound() -> pylibsrtp.Session:
    return session(pylibsrtp.Policy.SSRC_ANY_OUTBOUND)


def inbound() -> pylibsrtp.Session:
    return session(pylibsrtp.Policy.SSRC_ANY_INBOUND)


def rtp_bytes(payload_type: int, marker: int, sequence: int, timestamp: int, ssrc: int,
              payload: bytes) -> bytes:
    """An RTP packet with no extension (RFC 3550)."""
    return struct.pack("!BBHII", 0x80, (marker << 7) | payload_type, sequence, timestamp,
                       ssrc) + payload


def rtcp(ssrc: int) -> bytes:
    """A receiver report with no report block (RFC 3550 6.4.2)."""
    return bytes((0x80, 201, 0, 1)) + ssrc.to_bytes(4, "big")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 0xFFFF),
       st.lists(st.tuples(st.integers(1, 100), st.binary(max_size=1300)), min_size=1,
                max_size=20))
def test_protected_bytes_are_pylibsrtps_and_each_side_reads_the_other(
        first: int, packets: list[tuple[int, bytes]]) -> None:
    python_out, native_out = outbound(), passthrough.native_srtp(outbound())
    python_in, native_in = inbound(), passthrough.native_srtp(inbound())
    sequence = first
    for step, payload in packets:
        # Onwards (across the wrap): libsrtp refuses to protect an index far behind.
        sequence = (sequence + step) & 0xFFFF
        data = rtp_bytes(96, 0, sequence, 1000, 0x1234, payload)
        protected = native_out.protect(data)
        assert protected == python_out.protect(data)
        assert len(protected) == len(data) + 10  # the 80-bit tag
        assert native_in.unprotect(protected) == data
        assert python_in.unprotect(protected) == data


def test_rtcp_is_protected_and_read_as_pylibsrtp_does() -> None:
    python_out, native_out = outbound(), passthrough.native_srtp(outbound())
    native_in = passthrough.native_srtp(inbound())
    for ssrc in (1, 2, 3):
        protected = native_out.protect_rtcp(rtcp(ssrc))
        assert protected == python_out.protect_rtcp(rtcp(ssrc))
        assert inbound().unprotect_rtcp(protected) == rtcp(ssrc)
        assert native_in.unprotect_rtcp(protected) == rtcp(ssrc)
    # A replay, and a forged tag, are refused as pylibsrtp refuses them.
    with pytest.raises(pylibsrtp.Error, match="replay"):
        native_in.unprotect_rtcp(protected)
    forged = bytearray(native_out.protect_rtcp(rtcp(9)))
    forged[-1] ^= 1
    with pytest.raises(pylibsrtp.Error, match="authentication"):
        native_in.unprotect_rtcp(bytes(forged))


def test_refusals_are_pylibsrtps() -> None:
    native_out, native_in = passthrough.native_srtp(outbound()), passthrough.native_srtp(inbound())
    data = rtp_bytes(96, 0, 7, 1000, 0x1234, b"media")
    protected = native_out.protect(data)
    assert native_in.unprotect(protected) == data
    # A replay, and a forgery, as pylibsrtp words them.
    with pytest.raises(pylibsrtp.Error, match="replay check failed"):
        native_in.unprotect(protected)
    forged = rtp_bytes(96, 0, 8, 1000, 0x1234, b"media") + bytes(10)
    with pytest.raises(pylibsrtp.Error, match="authentication failure"):
        native_in.unprotect(forged)
    # pylibsrtp's buffer: 1,500 bytes, less the room protecting may need.
    with pytest.raises(ValueError, match="packet is too long"):
        native_out.protect(data + bytes(1500 - 144 - len(data) + 1))
    assert len(native_out.protect(rtp_bytes(96, 0, 9, 1000, 0x1234, bytes(1500 - 144 - 12))))
    with pytest.raises(TypeError, match="packet must be bytes"):
        native_out.protect(bytearray(data))  # type: ignore[arg-type]


def test_the_hook_checks_the_session_it_is_given() -> None:
    class NotASession:
        _srtp = None

    with pytest.raises(RuntimeError, match="native SRTP hook"):
        passthrough.native_srtp(NotASession())  # type: ignore[arg-type]
