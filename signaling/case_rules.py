"""The rules of a 差评 rectification case, pure: which step may follow which, what each needs, and
who may take it. opened → 回访核实 (callback) → 整改 (rectify) / 解释说明 (explain) / 申诉 (appeal,
decided by another supervisor: upheld closes the case as misjudged, rejected returns it to
rectify or explain) → 反馈 (feedback to the citizen) → 复核 (recheck) → closed."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from signaling.errors import SignalError

# A step's text (the call-back's outcome, what was rectified, the answer…), at most.
TEXT_MAX = 1000


class CaseState(StrEnum):
    OPENED = "opened"        # a bad rating opened it: call the citizen back
    VERIFIED = "verified"    # 回访核实 done: rectify, explain or appeal
    RECTIFIED = "rectified"  # 整改 done: answer the citizen
    EXPLAINED = "explained"  # 解释说明 done: answer the citizen
    APPEALED = "appealed"    # 申诉: another supervisor decides
    ANSWERED = "answered"    # 反馈 done: re-check
    CLOSED = "closed"


class Step(StrEnum):
    CALLBACK = "callback"    # 回访核实
    RECTIFY = "rectify"      # 整改
    EXPLAIN = "explain"      # 解释说明
    APPEAL = "appeal"        # 申诉
    DECIDE = "decide"        # the appeal's decision: upheld or rejected
    FEEDBACK = "feedback"    # 反馈
    RECHECK = "recheck"      # 复核


class Decision(StrEnum):
    UPHELD = "upheld"      # the rating was misjudged: the case closes
    REJECTED = "rejected"  # back to rectify or explain (no second appeal)


# step -> (the states it may follow, the state it leads to; DECIDE's depends on the decision)
_MOVES: dict[Step, tuple[tuple[CaseState, ...], CaseState]] = {
    Step.CALLBACK: ((CaseState.OPENED,), CaseState.VERIFIED),
    Step.RECTIFY: ((CaseState.VERIFIED,), CaseState.RECTIFIED),
    Step.EXPLAIN: ((CaseState.VERIFIED,), CaseState.EXPLAINED),
    Step.APPEAL: ((CaseState.VERIFIED,), CaseState.APPEALED),
    Step.DECIDE: ((CaseState.APPEALED,), CaseState.CLOSED),
    Step.FEEDBACK: ((CaseState.RECTIFIED, CaseState.EXPLAINED), CaseState.ANSWERED),
    Step.RECHECK: ((CaseState.ANSWERED,), CaseState.CLOSED),
}


@dataclass(frozen=True)
class CaseFlow:
    """Where a case stands: its state, who appealed (one appeal per case), and how it ended
    (rectified, explained or misjudged)."""
    state: CaseState = CaseState.OPENED
    appellant: str = ""
    resolution: str = ""

    def next_steps(self) -> tuple[Step, ...]:
        return tuple(step for step, (before, _) in _MOVES.items()
                     if self.state in before and not (step == Step.APPEAL and self.appellant))

    def apply(self, step: str, actor: str, text: str, decision: str = "") -> CaseFlow:
        """The case after `actor` took `step` with `text` (and `decision` for an appeal's);
        SignalError: a wrong step for the state (409), a missing or bad field (400), the
        appellant deciding their own appeal (403)."""
        try:
            move = Step(step)
        except ValueError:
            raise SignalError("invalid_payload.case_step",
                              reason=f"step must be one of {', '.join(Step)}") from None
        if not text.strip():
            raise SignalError("invalid_payload.case_step", reason="text is required")
        if len(text) > TEXT_MAX:
            raise SignalError("invalid_payload.case_step",
                              reason=f"text longer than {TEXT_MAX}")
        if move not in self.next_steps():
            raise SignalError("bad_state.case_step", state=self.state.value)
        if move == Step.DECIDE:
            if decision not in tuple(Decision):
                raise SignalError("invalid_payload.case_step",
                                  reason="decision must be upheld or rejected")
            if actor == self.appellant:
                raise SignalError("forbidden.case_appeal_self")
            if decision == Decision.UPHELD:
                return replace(self, state=CaseState.CLOSED, resolution="misjudged")
            return replace(self, state=CaseState.VERIFIED)
        if decision:
            raise SignalError("invalid_payload.case_step",
                              reason="decision only with the decide step")
        _, after = _MOVES[move]
        if move == Step.APPEAL:
            return replace(self, state=after, appellant=actor)
        if move in (Step.RECTIFY, Step.EXPLAIN):
            # How it was handled: the re-check closes the case with it.
            return replace(self, state=after, resolution=after.value)
        return replace(self, state=after)
