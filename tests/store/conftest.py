"""Store fixtures: one ``backend`` per implementation for the shared contract suite.

``backend`` is parametrized over ``sqlite`` (a fresh file per test) and ``azurite`` (fresh tables
and a fresh queue per test, on one Azurite started for the session by ``tests.support.azurite``).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.lifecycle.store import Store
from remediator.store import SQLiteStore
from tests.support.azurite import azurite_connection_string, drop_store  # noqa: F401 - registers the session fixture


class Clock:
    """Real time plus an offset that tests move forward (lock TTLs, job visibility)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Backend:
    name: str
    store: Store
    clock: Clock
    make: Callable[[], Store]  # another store object on the same data (a second worker)
    server_time: bool = False  # the queue's visibility is kept by the server's clock
    closers: list[Callable[[], Any]] = field(default_factory=list)
    # Break a stored document behind the store's back: ("remediation", id) or ("inbox", finding id).
    corrupt: Callable[[str, str], None] = lambda what, key: None
    # Put a raw message on the jobs queue (text as the queue holds it), not through ``enqueue``.
    send_raw: Callable[[str], None] = lambda text: None
    # Delete one stored audit record of a remediation's chain (its position), behind the store's back.
    delete_record: Callable[[str, int], None] = lambda chain, position: None

    def pass_time(self, seconds: float) -> None:
        """Let ``seconds`` pass for locks (the injected clock) and for the queue."""
        self.clock.advance(seconds)
        if self.server_time:
            time.sleep(seconds)


def _sqlite_backend(tmp_path: Path) -> Backend:
    clock = Clock()
    path = tmp_path / "store.db"
    stores: list[SQLiteStore] = []

    def make() -> Store:
        stores.append(SQLiteStore(path, clock=clock))
        return stores[-1]

    def raw(sql: str, *params: object) -> None:
        conn = sqlite3.connect(path)
        try:
            conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")  # as someone with the file could
            conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()

    def corrupt(what: str, key: str) -> None:
        table, column = {"remediation": ("remediations", "id"), "inbox": ("inbox", "finding_id")}[what]
        raw(f"UPDATE {table} SET doc = ? WHERE {column} = ?", '{"id": "broken", "state": ', key)

    backend = Backend("sqlite", make(), clock, make, corrupt=corrupt,
                      send_raw=lambda text: raw("INSERT INTO jobs (id, kind, payload, visible_us) VALUES (?, ?, ?, 0)",
                                                uuid.uuid4().hex, "post", text),
                      delete_record=lambda chain, position: raw("DELETE FROM audit WHERE chain = ? AND position = ?",
                                                                chain, position))

    def close() -> None:
        for s in stores:
            s.close()

    backend.closers.append(close)
    return backend


def _azure_backend(connection_string: str) -> Backend:
    from remediator.store.azure import AzureStore

    clock = Clock()
    prefix = "t" + uuid.uuid4().hex[:12]
    stores: list[AzureStore] = []

    def make() -> Store:
        stores.append(AzureStore(connection_string, prefix=prefix, clock=clock, claim_grace=2.0))
        return stores[-1]

    def drop() -> None:
        for s in stores:
            s.close()
        drop_store(connection_string, prefix)

    def corrupt(what: str, key: str) -> None:
        from azure.data.tables import TableClient, UpdateMode

        from remediator.store.azure import _safe_key

        name = {"remediation": "remediations", "inbox": "inbox"}[what]
        with TableClient.from_connection_string(connection_string, prefix + name) as table:
            entity = table.get_entity(_safe_key(key), "r")
            entity["Doc"] = '{"id": "broken", "state": '
            table.update_entity(entity, mode=UpdateMode.REPLACE)

    def send_raw(text: str) -> None:
        from azure.storage.queue import QueueClient

        with QueueClient.from_connection_string(connection_string, f"{prefix}-jobs") as queue:
            queue.send_message(text)  # no encode policy: the text as it is

    def delete_record(chain: str, position: int) -> None:
        from azure.data.tables import TableClient

        from remediator.store.azure import _safe_key

        with TableClient.from_connection_string(connection_string, prefix + "remediations") as table:
            table.delete_entity(_safe_key(chain), f"c{position:012d}")

    backend = Backend("azurite", make(), clock, make, server_time=True, corrupt=corrupt, send_raw=send_raw,
                      delete_record=delete_record)
    backend.closers.append(drop)
    return backend


@pytest.fixture(params=["sqlite", "azurite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        b = _sqlite_backend(tmp_path)
    else:
        b = _azure_backend(request.getfixturevalue("azurite_connection_string"))
    try:
        yield b
    finally:
        for close in b.closers:
            close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


def unique(prefix: str = "r") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"
