"""A write that landed but whose answer was lost is not written again, nor taken for a lost race (issue 17).

The store's own HTTP session gets an adapter that sends a matching request to Azurite, lets it be
stored, and then raises the connection error a reset brings (``requests.ConnectionError``, which
azure-core turns into ``ServiceRequestError``): the answer is lost. azure-core's retry policy
sends a PUT again by itself (its answer: 412, the entity changed: our own write); a POST (a
create, an entity-group transaction) is not retried by azure-core, so the store re-reads whether
it landed before it sends it again. Each write carries a mark of its own (``Write`` on the
remediation entity; a record's text and the writer's stamp) by which it is recognised.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from remediator.evidence.verify import verify_store
from remediator.lifecycle.runtime import with_state
from remediator.store.azure import AzureStore
from tests.store.test_contract import inbound, make
from tests.store.test_trail_contract import record, trail
from tests.support.azurite import azurite_connection_string, drop_store  # noqa: F401 - registers the fixture


class LoseAnswers(HTTPAdapter):
    """Sends every request; the answers of the next ``times`` requests whose method is ``method`` and
    whose URL or body holds ``marker`` are lost after the service stored them."""

    def __init__(self) -> None:
        super().__init__(pool_maxsize=16, max_retries=0)
        self.method, self.marker, self.times = "", b"", 0
        self.lost: list[str] = []

    def lose(self, method: str, marker: str, *, times: int = 1) -> None:
        self.method, self.marker, self.times = method, marker.encode(), times

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if self.times and request.method == self.method and \
                (self.marker in (request.url or "").encode() or self.marker in body):
            self.times -= 1
            self.lost.append(f"{request.method} {request.url} -> {response.status_code}")
            response.close()  # the answer is dropped with its connection
            raise requests.exceptions.ConnectionError("connection reset after the request was sent (injected)")
        return response


@pytest.fixture
def lossy(azurite_connection_string: str) -> Iterator[tuple[AzureStore, LoseAnswers]]:  # noqa: F811
    prefix = "lost" + uuid.uuid4().hex[:10]
    adapter = LoseAnswers()
    with AzureStore(azurite_connection_string, prefix=prefix, claim_grace=0.5) as store:
        store._session.mount("http://", adapter)
        yield store, adapter
    drop_store(azurite_connection_string, prefix)


def test_a_create_whose_answer_was_lost_is_the_one_created_with_one_opening_record(
        lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, adapter = lossy
    rem = make()
    adapter.lose("POST", "$batch")
    stored, created = store.create(rem, audit=with_state([record(rem, "approval_requested")], rem.state))
    assert adapter.lost
    assert created  # before: the lost answer raised (or, sent again, the create said "someone else's")
    assert stored.id == rem.id
    assert [e.position for e in store.audit_log(rem.id)] == [1]
    assert store.transition(stored, "approved", from_states=("pending_approval",),  # its version is the stored one
                            audit=with_state([record(rem, "approved")], "approved")) is not None
    assert verify_store(store).ok


def test_a_transition_whose_answer_was_lost_is_done_once_with_its_record(
        lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, adapter = lossy
    rem = make()
    stored, _ = store.create(rem, audit=with_state([record(rem, "approval_requested")], rem.state))
    adapter.lose("POST", "$batch")
    moved = store.transition(stored, "approved", from_states=("pending_approval",),
                             audit=with_state([record(rem, "approved")], "approved"))
    assert adapter.lost
    assert moved is not None  # before: raised; its redelivery found it approved and did not go on
    assert moved.state == "approved"
    assert trail(store, rem.id) == [("approval_requested", "pending_approval"), ("approved", "approved")]
    assert store.update(moved, reminded=True) is not None  # the version it returned is the stored one
    assert verify_store(store).ok


def test_an_update_whose_answer_was_lost_is_not_taken_for_a_lost_race(lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, adapter = lossy
    stored, _ = store.create(make())
    adapter.lose("PUT", "remediations")  # azure-core sends the PUT again: 412, the entity holds our write
    updated = store.update(stored, reminded=True)
    assert adapter.lost
    assert updated is not None  # before: None, "someone else wrote it"
    assert updated.reminded
    assert store.get(stored.id) == updated


def test_a_record_whose_answer_was_lost_is_appended_once(lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, adapter = lossy
    rem = make()
    store.create(rem, audit=with_state([record(rem, "approval_requested")], rem.state))
    adapter.lose("POST", "$batch")
    store.audit(record(rem, "note", text="once"))
    assert adapter.lost
    assert [(e.event, e.position) for e in store.audit_log(rem.id)] == [("approval_requested", 1), ("note", 2)]
    store.audit(record(rem, "note", text="after"))
    assert [e.position for e in store.audit_log(rem.id)] == [1, 2, 3]
    assert verify_store(store).ok


def test_a_conflicting_write_is_still_a_lost_race(lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, _ = lossy
    stored, _ = store.create(make())
    assert store.update(stored, reminded=True) is not None
    assert store.update(stored, reminded=False) is None  # stale version: someone else's write, not ours


def test_a_dedup_claim_and_a_lease_whose_answers_were_lost_are_held_by_their_writer(
        lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, adapter = lossy
    rem = make()
    adapter.lose("POST", "dedup")  # the slot was created; its answer lost (before: the create raised)
    stored, created = store.create(rem)
    assert adapter.lost
    assert created
    assert stored.id == rem.id
    adapter.lose("POST", "locks")
    assert store.acquire_lease("resource:x", "worker-1", 60) is not None  # its own lease, after a re-read
    assert store.acquire_lease("resource:x", "worker-2", 60) is None


def test_a_finding_received_whose_answer_was_lost_is_queued_once(lossy: tuple[AzureStore, LoseAnswers]) -> None:
    store, adapter = lossy
    adapter.lose("POST", "inbox")
    assert store.receive([inbound("f-lost")]) == [True]  # its own row, by its mark (before: the create raised)
    assert adapter.lost
    assert store.receive([inbound("f-lost")]) == [False]  # a second reception is a duplicate, as ever
