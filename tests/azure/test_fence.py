"""The fencing check in the ARM clients' pipeline, conditional writes (If-Match, 412) and what a lost
answer is, through the real SDK clients against FakeArm."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError

import remediator.actions  # noqa: F401 - registers the API versions live state reads the types with
from remediator.azure.errors import is_transient
from remediator.azure.fence import LeaseLost, answer_lost, check_fence, fenced, unfenced
from remediator.azure.lro import write
from remediator.azure.reader import LiveState
from remediator.errors import ChangedSincePlan, StateError
from remediator.testing import FakeArm

SUB = "00000000-0000-0000-0000-000000000000"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/ai"
API = "2024-10-01"


def _account(arm: FakeArm, etag: str = '"1"') -> dict[str, Any]:
    doc = {"id": ACCOUNT, "name": "ai", "type": "Microsoft.CognitiveServices/accounts", "kind": "OpenAI",
           "etag": etag, "properties": {"publicNetworkAccess": "Enabled"}}
    arm.add(doc)
    return doc


def _lost() -> None:
    raise LeaseLost("the lease on resource:x was taken over")


def test_a_fenced_out_worker_sends_no_write_but_may_still_read() -> None:
    with FakeArm() as arm:
        _account(arm)
        clients = arm.clients()
        with fenced(_lost):
            assert LiveState(clients).get(ACCOUNT) is not None  # reads are not fenced
            with pytest.raises(LeaseLost, match="taken over"):
                write(clients, "PATCH", ACCOUNT, API, body={"properties": {"publicNetworkAccess": "Disabled"}})
            with unfenced():  # what is always allowed (removing a grant) goes through
                check_fence()
        assert arm.writes == []  # the request never left the process
        check_fence()  # outside fenced: nothing is checked
        write(clients, "PATCH", ACCOUNT, API, body={"properties": {"publicNetworkAccess": "Disabled"}})
        assert [w.method for w in arm.writes] == ["PATCH"]


def test_the_check_runs_in_the_thread_that_writes_only() -> None:
    with FakeArm() as arm:
        _account(arm)
        clients = arm.clients()
        done: list[str] = []

        def other() -> None:  # another worker thread of the same process, not fenced
            write(clients, "PATCH", ACCOUNT, API, body={"tags": {"a": "1"}})
            done.append("written")

        with fenced(_lost):
            t = threading.Thread(target=other)
            t.start()
            t.join(10)
        assert done == ["written"]


def test_a_write_conditional_on_a_stale_etag_is_refused_and_nothing_changes() -> None:
    with FakeArm() as arm:
        seen = _account(arm)
        clients = arm.clients()
        write(clients, "PATCH", ACCOUNT, API, body={"tags": {"owner": "x"}})  # someone else: a new etag
        fresh = arm.get(ACCOUNT)
        assert fresh is not None
        assert fresh["etag"] != seen["etag"]
        with pytest.raises(ChangedSincePlan, match="changed since the plan read it"):
            write(clients, "PATCH", ACCOUNT, API, body={"properties": {"publicNetworkAccess": "Disabled"}},
                  if_match=seen["etag"])
        assert (arm.get(ACCOUNT) or {})["properties"]["publicNetworkAccess"] == "Enabled"
        assert [(w.status, w.headers.get("If-Match")) for w in arm.writes][-1] == (412, seen["etag"])
        write(clients, "PATCH", ACCOUNT, API, body={"properties": {"publicNetworkAccess": "Disabled"}},
              if_match=fresh["etag"])
        assert (arm.get(ACCOUNT) or {})["properties"]["publicNetworkAccess"] == "Disabled"


def test_a_dropped_answer_is_an_answer_lost_and_a_503_is_transient() -> None:
    with FakeArm() as arm:
        _account(arm)
        clients = arm.clients()
        arm.stall("PATCH", "/accounts/ai", land_first=True, drop=True)
        with pytest.raises(ServiceResponseError) as lost:
            write(clients, "PATCH", ACCOUNT, API, body={"properties": {"publicNetworkAccess": "Disabled"}})
        assert answer_lost(lost.value)
        assert (arm.get(ACCOUNT) or {})["properties"]["publicNetworkAccess"] == "Disabled"  # it landed
        arm.fail_next("GET", "/accounts/ai", 503)
        with pytest.raises(StateError) as down:
            LiveState(clients).get(ACCOUNT)
        assert is_transient(down.value)
        arm.fail_next("GET", "/accounts/ai", 403)
        with pytest.raises(StateError) as refused:
            LiveState(clients).get(ACCOUNT)
        assert not is_transient(refused.value)
        assert not answer_lost(refused.value)


def test_key_vault_writes_are_fenced_too() -> None:
    vault = "https://kv-ops.vault.azure.net"
    with FakeArm() as arm:
        secrets = arm.clients().secrets(vault)
        with fenced(_lost), pytest.raises(LeaseLost):
            secrets.set_secret("acr-admin", "s3cret")
        assert arm.secret(vault, "acr-admin") is None
        secrets.set_secret("acr-admin", "s3cret")
        assert arm.secret(vault, "acr-admin") == "s3cret"
