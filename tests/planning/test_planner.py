"""The dry run end to end: sample payloads → playbooks → plans, offline and against live (fake) ARM."""

from __future__ import annotations

import copy

from remediator.app.demo import DEMO_EXECUTOR, DEMO_SETTINGS, SAMPLES, SHIPPED_PLAYBOOKS, sample_records
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState
from remediator.config.settings import load_settings
from remediator.planning.planner import Planner
from remediator.playbooks import load_playbooks
from remediator.testing import FakeArm


def _planner(state: object, *, private_link: bool = True) -> Planner:
    """The demo's planner: its private-link settings (samples/settings.yaml) unless ``private_link`` is False."""
    link = load_settings(env={}, file=DEMO_SETTINGS).private_link() if private_link else None
    return Planner(playbooks=load_playbooks(SHIPPED_PLAYBOOKS), state=state,  # type: ignore[arg-type]
                   protected_principals=frozenset({DEMO_EXECUTOR}), private_link=link)


def test_live_plans_equal_saved_plans_and_write_nothing() -> None:
    saved = SavedState.from_path(SAMPLES / "state")
    offline = _planner(saved).plan(sample_records())
    with FakeArm() as arm:
        arm.load(saved.documents())
        live = _planner(LiveState(arm.clients())).plan(sample_records())
        assert arm.writes == []
        assert arm.requests, "the live planner must have read through ARM"
    assert [r.outcome for r in live] == [r.outcome for r in offline]
    assert [r.fingerprint for r in live] == [r.fingerprint for r in offline]


def test_every_sample_gets_the_expected_outcome() -> None:
    results = _planner(SavedState.from_path(SAMPLES / "state")).plan(sample_records())
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count("ignored") >= 1
    assert outcomes.count("exempt") == 1
    assert "error" not in outcomes, [r.reason for r in results if r.outcome == "error"]


def test_without_the_private_link_settings_the_public_openai_account_is_refused_not_cut_off() -> None:
    """The same samples without samples/settings.yaml: the private-link fix refuses (nobody could reach the
    account after closing it), naming the settings that would make it possible; nothing else changes."""
    state = SavedState.from_path(SAMPLES / "state")
    results = _planner(state, private_link=False).plan(sample_records())
    (refused,) = [r for r in results if r.outcome == "error"]
    assert refused.playbook == "private-link"
    assert "cuts off every client" in refused.reason
    assert "private_link_subnets" in refused.reason
    assert "private_dns_zones" in refused.reason
    with_settings = _planner(state).plan(sample_records())
    assert [r.fingerprint for r in results if r.outcome != "error"] == \
        [r.fingerprint for r in with_settings if r.playbook != "private-link"]


def test_protected_principal_is_an_error_not_a_change() -> None:
    records = [r for r in sample_records() if getattr(r, "principal_id", None)]
    assert records
    principal = records[0].principal_id  # type: ignore[union-attr]
    planner = Planner(playbooks=load_playbooks(SHIPPED_PLAYBOOKS), state=SavedState.from_path(SAMPLES / "state"),
                      protected_principals=frozenset({str(principal).lower()}))
    result = planner.plan_one(records[0])
    assert result.outcome == "error"
    assert not result.changes


def test_fingerprint_is_stable_and_sensitive_to_what_the_plan_writes() -> None:
    state = SavedState.from_path(SAMPLES / "state")
    first = _planner(state).plan(sample_records())
    again = _planner(SavedState.from_path(SAMPLES / "state")).plan(sample_records())
    assert [r.fingerprint for r in first] == [r.fingerprint for r in again]
    docs = copy.deepcopy(state.documents())
    for d in docs:
        if d["id"].endswith("/contosoweb"):
            d["properties"]["minimumTlsVersion"] = "TLS1_0"  # drift in a property no plan writes
            d["tags"] = {"owner": "someone else"}
    unrelated = _planner(SavedState(docs)).plan(sample_records())
    assert [r.fingerprint for r in first] == [r.fingerprint for r in unrelated]
    for d in docs:
        if d["id"].endswith("/containers/public-assets"):
            d["properties"]["publicAccess"] = "Blob"  # drift in a value the plan overwrites
    drifted = _planner(SavedState(docs)).plan(sample_records())
    changed = [a.fingerprint != b.fingerprint for a, b in zip(first, drifted, strict=True)]
    assert changed.count(True) == 1
