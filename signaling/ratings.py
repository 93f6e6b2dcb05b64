"""好差评: the applicant's rating of each department that served them, its five levels and the
fixed reasons they may tick; checked here before the queue script stores it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from signaling.errors import SignalError
from signaling.schema import ID_MAX

logger = logging.getLogger(__name__)

# 非常满意(5), 满意(4), 基本满意(3), 不满意(2), 非常不满意(1); 1 and 2 open a case.
LEVELS = (1, 2, 3, 4, 5)
BAD_SCORES = (1, 2)
# The reasons an applicant may tick (texts in web/static/js/i18n.js, `reason.<code>`): those of
# a bad rating for 1 to 3, those of a good one for 3 to 5.
BAD_REASONS = ("unclear_notice", "long_wait", "attitude", "unresolved", "slow")
GOOD_REASONS = ("clear", "friendly", "efficient", "complete_notice")
COMMENT_MAX = 200


@dataclass(frozen=True)
class Rating:
    """One department's rating by the applicant."""
    department: str
    score: int
    reasons: tuple[str, ...] = ()
    comment: str = ""
    staff: str = field(default="", compare=False)  # who served for it, filled in when stored

    def __post_init__(self) -> None:
        if not isinstance(self.department, str) or not 0 < len(self.department) <= ID_MAX:
            raise SignalError("invalid_payload.ratings", reason="department")
        if isinstance(self.score, bool) or self.score not in LEVELS:
            raise SignalError("invalid_payload.ratings", reason="score must be 1 to 5")
        allowed = allowed_reasons(self.score)
        if len(set(self.reasons)) != len(self.reasons) \
                or any(r not in allowed for r in self.reasons):
            raise SignalError("invalid_payload.ratings",
                              reason=f"reasons for {self.score}: {', '.join(allowed)}")
        if len(self.comment) > COMMENT_MAX:
            raise SignalError("invalid_payload.ratings",
                              reason=f"comment longer than {COMMENT_MAX}")

    @property
    def bad(self) -> bool:
        return self.score in BAD_SCORES

    def to_dict(self) -> dict[str, Any]:
        return {"department": self.department, "score": self.score,
                "reasons": list(self.reasons), "comment": self.comment, "staff": self.staff}


def allowed_reasons(score: int) -> tuple[str, ...]:
    return (BAD_REASONS if score <= 3 else ()) + (GOOD_REASONS if score >= 3 else ())


def parse_ratings(data: dict[str, Any], own_department: str) -> list[Rating]:
    """The ratings of a `rating:submit` payload: `rating` (one score for the ticket's own
    department, as before 会商 could be rated) or `ratings` (one entry per department), not both;
    each department at most once."""
    if ("rating" in data) == ("ratings" in data):
        raise SignalError("invalid_payload.ratings", reason="give rating or ratings")
    if "rating" in data:
        return [Rating(own_department, data["rating"])]
    out: list[Rating] = []
    for entry in data["ratings"]:
        if not isinstance(entry, dict) or not set(entry) <= {"department", "score", "reasons",
                                                             "comment"}:
            raise SignalError("invalid_payload.ratings", reason="an entry is not "
                              "{department, score, reasons, comment}")
        department, score = entry.get("department"), entry.get("score")
        reasons, comment = entry.get("reasons", []), entry.get("comment", "")
        if not isinstance(department, str):
            raise SignalError("invalid_payload.ratings", reason="department")
        if not isinstance(score, int):
            raise SignalError("invalid_payload.ratings", reason="score must be 1 to 5")
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons) \
                or not isinstance(comment, str):
            raise SignalError("invalid_payload.ratings", reason="reasons or comment")
        out.append(Rating(department, score, tuple(reasons), comment.strip()))
    if not out:
        raise SignalError("invalid_payload.ratings", reason="no department rated")
    if len({r.department for r in out}) != len(out):
        raise SignalError("invalid_payload.ratings", reason="a department rated twice")
    return out
