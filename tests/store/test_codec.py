"""The shared codec: every Remediation survives the JSON round trip; datetimes are aware UTC."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.lifecycle.model import STATES, ApprovalVote, Remediation
from remediator.store import codec

aware = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
votes = st.builds(ApprovalVote, user_id=text, team_id=st.none() | text, enterprise_id=st.none() | text, at=aware,
                  decision=st.sampled_from(["approve", "reject"]), reason=text)
remediations = st.builds(
    Remediation,
    id=text, dedup_key=text, finding_id=text, finding=st.dictionaries(text, json_values, max_size=4),
    playbook=text, risk=text, resource_id=text, subscription_id=st.none() | text,
    state=st.sampled_from(STATES),
    changes=st.lists(st.dictionaries(text, json_values, max_size=3), max_size=3).map(tuple),
    fingerprint=st.none() | text, approvers=st.lists(text, max_size=3).map(tuple), quorum=st.integers(0, 5),
    votes=st.lists(votes, max_size=3).map(tuple), requester=st.none() | text, created_at=aware, updated_at=aware,
    expires_at=st.none() | aware, reminded=st.booleans(), message=st.dictionaries(text, text, max_size=2),
    error=st.none() | text, undo_of=st.none() | text, attempt=st.integers(0, 100),
    warnings=st.lists(text, max_size=3).map(tuple),
)


@pytest.mark.slow(reason="200 generated remediations: drawing them is most of the time")
@settings(max_examples=200, deadline=None)
@given(remediations)
def test_every_remediation_round_trips(rem: Remediation) -> None:
    back = codec.decode_remediation(codec.encode_remediation(rem), version="7")
    assert back == dataclasses.replace(rem, version="7")
    assert back.created_at.utcoffset() == timedelta(0)
    assert all(v.at.utcoffset() == timedelta(0) for v in back.votes)


def test_warnings_are_optional_in_the_document_and_old_documents_decode_without_them() -> None:
    now = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    rem = Remediation(id="r1", dedup_key="p|/x", finding_id="f1", finding={}, playbook="p", risk="low",
                      resource_id="/x", subscription_id=None, state="pending_approval", changes=(),
                      fingerprint=None, created_at=now, updated_at=now)
    doc = codec.loads(codec.encode_remediation(rem))
    assert "warnings" not in doc  # an unwarned remediation's document is unchanged
    assert codec.decode_remediation(codec.dumps(doc), version="1").warnings == ()
    warned = dataclasses.replace(rem, warnings=("subnet /s not in the resource state: not checked",))
    doc = codec.loads(codec.encode_remediation(warned))
    assert doc["warnings"] == ["subnet /s not in the resource state: not checked"]
    assert codec.decode_remediation(codec.dumps(doc), version="2") == dataclasses.replace(warned, version="2")
    updated = codec.apply_updates(warned, state="approved", updates={"warnings": ["a", "b"]}, now=now)
    assert updated.warnings == ("a", "b")


@given(aware)
def test_datetime_text_is_fixed_width_and_sorts_like_the_instant(value: datetime) -> None:
    later = value + timedelta(microseconds=1)
    assert len(codec.dt_to_str(value)) == len("2025-01-01T00:00:00.000000Z")
    assert codec.dt_to_str(value) < codec.dt_to_str(later)
    assert codec.dt_from_str(codec.dt_to_str(value)) == value


def test_naive_datetimes_and_non_json_values_are_errors() -> None:
    with pytest.raises(ValueError, match="naive"):
        codec.dt_to_str(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        codec.to_micros(datetime(2025, 1, 1))
    with pytest.raises(TypeError, match="set is not a JSON value"):
        codec.dumps({1, 2})
    assert codec.dumps({"a": {1}}) == '{"a":[1]}'  # nested sets are written as arrays (order not kept)
    with pytest.raises(TypeError, match="object is not a JSON value"):
        codec.dumps({"a": object()})
    assert codec.dumps(MappingProxyType({"a": (1, 2)})) == '{"a":[1,2]}'


def test_apply_updates_refuses_unknown_and_frozen_fields() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    rem = Remediation(id="r", dedup_key="k", finding_id="f", finding={}, playbook="p", risk="low", resource_id="x",
                      subscription_id=None, state="planned", changes=(), fingerprint=None, created_at=now,
                      updated_at=now, version="1")
    updates: dict[str, Any] = {"votes": [ApprovalVote(user_id="U", team_id=None, enterprise_id=None, at=now)]}
    new = codec.apply_updates(rem, state="pending_approval", updates=updates, now=now + timedelta(1))
    assert new.votes == tuple(updates["votes"])
    assert new.updated_at == now + timedelta(1)
    assert new.state == "pending_approval"
    with pytest.raises(TypeError, match="no field"):
        codec.apply_updates(rem, state="planned", updates={"nope": 1}, now=now)
    with pytest.raises(TypeError, match="cannot be updated"):
        codec.apply_updates(rem, state="planned", updates={"dedup_key": "other"}, now=now)
