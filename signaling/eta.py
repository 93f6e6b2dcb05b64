"""Estimated waiting time: a pure rule, from the queue position, the staff on duty and how long
recent consultations of the department took."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Used until a department has handled some consultations.
DEFAULT_HANDLING_S = 300.0


def average_handling(recent: Sequence[float], default: float = DEFAULT_HANDLING_S) -> float:
    """Mean of the recent handling times, ignoring calls shorter than 10 s (misdials)."""
    useful = [t for t in recent if t >= 10]
    return sum(useful) / len(useful) if useful else default


def estimate_wait(position: int, on_duty: int, available: int, handling_s: float) -> float | None:
    """Seconds until the ticket at `position` (1-based) is likely answered.

    Tickets that the available staff can take now wait nothing; the rest wait a handling time for
    every full round of the staff on duty ahead of them. None when nobody is on duty."""
    if position <= 0:
        return 0.0
    if on_duty <= 0:
        return None
    ahead = position - available
    if ahead <= 0:
        return 0.0
    return math.ceil(ahead / on_duty) * handling_s
