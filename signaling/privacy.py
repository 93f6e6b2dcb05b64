"""Personal data rules (PIPL): the version of the kiosk's notices an applicant consents to, and how
a phone number is shown to anyone but the staff who call back (masked). Pure."""

from __future__ import annotations

# The kiosk's privacy notices (the recording notice and the call-back form's text) as the
# applicant is shown them. Change it whenever either text changes in substance: a ticket and a
# call-back request record the version consented to, and a recording's timeline carries it.
CONSENT_NOTICE_VERSION = "2026-12-01"

# Numbers with at least this many digits (a mainland mobile number has 11) keep their first 3
# and last 4 digits; shorter ones (a landline without area code) keep only the last 2, or they
# would be almost fully readable.
LONG_NUMBER = 11


def mask_phone(phone: str) -> str:
    """A phone number as everyone but the calling-back staff sees it: 138****1234.

    Only the digits count (spaces, dashes and a leading + go); every digit that is hidden becomes
    one `*`."""
    digits = "".join(c for c in phone if "0" <= c <= "9")
    if len(digits) >= LONG_NUMBER:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    shown = min(2, len(digits) // 2)
    return "*" * (len(digits) - shown) + digits[len(digits) - shown:]
