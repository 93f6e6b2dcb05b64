"""QR codes as SVG (via segno), for a screen or a phone to scan: a second factor's otpauth URI, a
kiosk's enrolment URL."""

from __future__ import annotations

import io

import segno


def qr_svg(text: str, title: str) -> str:
    """`text` as an SVG QR code (medium error correction), without an XML declaration, to put
    in a page as an image."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False,
                                     svgns=True, title=title)
    return out.getvalue().decode()
