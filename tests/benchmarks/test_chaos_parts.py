"""The fault injectors of ``bench_chaos.py`` inject the fault they name and nothing else.

``corrupt_row`` on Table Storage copied the first entity of the remediations table; since a
remediation's chain records live in its partition (RowKey ``c…``, sorting before the remediation's
``r``) that was a chain record, so the bench itself wrote "a second record at position 1" into a
healthy remediation's chain, and `audit verify` reported it as tampering.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.evidence.verify import verify_store
from remediator.lifecycle.runtime import with_state
from remediator.store.azure import AzureStore
from tests.store.test_contract import make
from tests.store.test_trail_contract import record
from tests.support.azurite import azurite_connection_string, drop_store  # noqa: F401 - registers the fixture

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _chaos_parts import CORRUPT_ID, WorkerConfig, corrupt_row


@pytest.fixture
def azure(azurite_connection_string: str) -> Iterator[tuple[AzureStore, WorkerConfig]]:  # noqa: F811
    prefix = "parts" + uuid.uuid4().hex[:10]
    cfg = WorkerConfig(store_url=f"azure://{prefix}", connection_string=azurite_connection_string, arm_url="",
                       slack_api_url="", slack_token="", signing_secret="", lock_ttl_s=60, sweep_every_s=5,
                       url_file="")
    with AzureStore(azurite_connection_string, prefix=prefix) as store:
        yield store, cfg
    drop_store(azurite_connection_string, prefix)


def test_corrupt_row_on_table_storage_adds_one_undecodable_remediation_and_touches_no_chain(
        azure: tuple[AzureStore, WorkerConfig]) -> None:
    store, cfg = azure
    for _ in range(3):
        rem = make()
        store.create(rem, audit=with_state([record(rem, "approval_requested")], rem.state))
    assert verify_store(store).ok
    assert corrupt_row(store, cfg)
    # one more remediation row, which does not decode: quarantined by the first reader
    assert CORRUPT_ID in store.remediation_ids()
    assert len(store.list()) == 3
    assert [q.key for q in store.quarantined()] == [CORRUPT_ID]
    result = verify_store(store)
    assert [p for p in result.problems if p.kind == "inserted"] == []
    assert result.ok, [p.line() for p in result.problems]
