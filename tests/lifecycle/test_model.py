"""The life cycle's states and the transitions table the stores enforce."""

from __future__ import annotations

from itertools import pairwise

import pytest

from remediator.lifecycle.model import (
    FINAL_STATES,
    OPEN_STATES,
    STATES,
    TRANSITIONS,
    ForbiddenTransition,
    State,
    check_transition,
)


def test_every_state_has_a_row_and_every_move_names_a_state() -> None:
    assert set(TRANSITIONS) == set(STATES)
    for targets in TRANSITIONS.values():
        assert targets <= set(STATES)


def test_no_move_leaves_a_final_state_except_the_rollback_of_an_applied_one() -> None:
    assert {(a, b) for a in FINAL_STATES for b in TRANSITIONS[a]} == {("applied", "rolled_back")}
    # so no move reopens a remediation: the dedup slot it gave up is never taken back
    assert not {b for a in FINAL_STATES for b in TRANSITIONS[a]} & OPEN_STATES


def test_the_design_path_and_every_ending() -> None:
    path: list[State] = ["planned", "pending_approval", "approved", "applying", "applied", "rolled_back"]
    for a, b in pairwise(path):
        assert b in TRANSITIONS[a], (a, b)
    assert TRANSITIONS["pending_approval"] == {"approved", "rejected", "expired", "withdrawn", "failed"}
    assert TRANSITIONS["approved"] == {"applying", "stale", "no_change", "exempt", "failed"}
    assert TRANSITIONS["applying"] == {"applied", "failed", "stale", "no_change", "exempt"}
    assert "applied" not in TRANSITIONS["approved"]  # applied only through applying
    # every open state can end
    for state in OPEN_STATES:
        seen, todo = set(), [state]
        while todo:
            for nxt in TRANSITIONS[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert seen & FINAL_STATES, state


def test_check_transition() -> None:
    assert check_transition(["approved", "applying"], "failed") == ("approved", "applying")
    assert check_transition((), "failed") == ()
    with pytest.raises(ForbiddenTransition, match=r"^transition applying -> approved is not allowed \(from applying: "
                                                  r"applied, exempt, failed, no_change, stale\)$"):
        check_transition(["applying", "approved"], "approved")
    with pytest.raises(ForbiddenTransition, match=r"expired -> approved is not allowed \(from expired: nothing: it "
                                                  r"is final\)"):
        check_transition(["expired"], "approved")
    with pytest.raises(ValueError, match="from_states: unknown state"):
        check_transition(["pending"], "approved")
    with pytest.raises(ValueError, match="to: unknown state"):
        check_transition(["pending_approval"], "aproved")
    assert issubclass(ForbiddenTransition, ValueError)
