"""The rules of a 差评 case (signaling/case_rules.py) under random sequences of steps, actors and
decisions, against a model written out separately: a wrong step never changes the case, only a
re-check or an upheld appeal closes it, nobody decides their own appeal, one appeal per case."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from signaling.case_rules import CaseFlow, CaseState, Step
from signaling.errors import SignalError

SUPERVISORS = ("sup_a", "sup_b", "sup_c")
# The model: state -> {step: next state}, written as the brief states the process.
MODEL: dict[str, dict[str, str]] = {
    "opened": {"callback": "verified"},
    "verified": {"rectify": "rectified", "explain": "explained", "appeal": "appealed"},
    "rectified": {"feedback": "answered"},
    "explained": {"feedback": "answered"},
    "appealed": {},  # decide: upheld -> closed, rejected -> verified
    "answered": {"recheck": "closed"},
    "closed": {},
}


class CaseRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.flow = CaseFlow()
        self.state = "opened"
        self.appellant = ""
        self.history: list[str] = []

    @rule(step=st.sampled_from([s.value for s in Step]), actor=st.sampled_from(SUPERVISORS),
          upheld=st.booleans())
    def step_well_formed(self, step: str, actor: str, upheld: bool) -> None:
        """Steps as the page sends them: most of the walk is made of these."""
        decision = ("upheld" if upheld else "rejected") if step == "decide" else ""
        self.take(step, actor, decision, "回访：群众反映属实")

    @rule(step=st.sampled_from([s.value for s in Step] + ["close", ""]),
          actor=st.sampled_from(SUPERVISORS),
          decision=st.sampled_from(["", "upheld", "rejected", "maybe"]),
          text=st.sampled_from(["", "  ", "回访：群众反映属实", "x" * 1001]))
    def step_any(self, step: str, actor: str, decision: str, text: str) -> None:
        self.take(step, actor, decision, text)

    def take(self, step: str, actor: str, decision: str, text: str) -> None:
        before = self.flow
        expected = self._expected(step, actor, decision, text)
        try:
            after = before.apply(step, actor, text, decision)
        except SignalError as error:
            assert isinstance(expected, str), (step, self.state, error.name)
            assert error.name == expected, (step, self.state, decision, error.name)
            assert self.flow == before
            return
        assert not isinstance(expected, str) or expected == "", (step, self.state, expected)
        self.flow = after
        assert after.state.value == self.state
        self.history.append(step)

    def _expected(self, step: str, actor: str, decision: str, text: str) -> str | None:
        """The refusal's name the model expects, or None (and the model moved on)."""
        if step not in {s.value for s in Step}:
            return "invalid_payload.case_step"
        if not text.strip() or len(text) > 1000:
            return "invalid_payload.case_step"
        allowed = dict(MODEL[self.state])
        if self.state == "appealed":
            allowed["decide"] = "?"
        if step == "appeal" and self.appellant:
            allowed.pop("appeal", None)
        if step not in allowed:
            return "bad_state.case_step"
        if step == "decide":
            if decision not in ("upheld", "rejected"):
                return "invalid_payload.case_step"
            if actor == self.appellant:
                return "forbidden.case_appeal_self"
            self.state = "closed" if decision == "upheld" else "verified"
            return None
        if decision:
            return "invalid_payload.case_step"
        if step == "appeal":
            self.appellant = actor
        self.state = allowed[step]
        return None

    @invariant()
    def closed_only_by_a_recheck_or_an_upheld_appeal(self) -> None:
        if self.flow.state == CaseState.CLOSED:
            assert self.history[-1] in ("recheck", "decide")
            assert self.flow.resolution in ("rectified", "explained", "misjudged")
            assert self.flow.next_steps() == ()
        assert self.history.count("appeal") <= 1
        if "recheck" in self.history:
            assert "feedback" in self.history and "callback" in self.history


CaseRules.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_case_rules = CaseRules.TestCase


def test_a_walk_through_every_step() -> None:
    flow = CaseFlow()
    assert flow.next_steps() == (Step.CALLBACK,)
    flow = flow.apply("callback", "sup_a", "已回访，情况属实")
    assert set(flow.next_steps()) == {Step.RECTIFY, Step.EXPLAIN, Step.APPEAL}
    flow = flow.apply("appeal", "sup_a", "该评价与事实不符")
    with pytest.raises(SignalError) as refused:
        flow.apply("decide", "sup_a", "同意", "upheld")
    assert refused.value.status == 403
    flow = flow.apply("decide", "sup_b", "驳回申诉", "rejected")
    assert flow.state == CaseState.VERIFIED and Step.APPEAL not in flow.next_steps()
    flow = flow.apply("rectify", "sup_a", "已整改：补充一次性告知单")
    flow = flow.apply("feedback", "sup_a", "已电话告知群众整改结果")
    flow = flow.apply("recheck", "sup_b", "复核通过")
    assert (flow.state, flow.resolution) == (CaseState.CLOSED, "rectified")
    with pytest.raises(SignalError) as refused:
        flow.apply("recheck", "sup_b", "again")
    assert (refused.value.status, refused.value.name) == (409, "bad_state.case_step")
