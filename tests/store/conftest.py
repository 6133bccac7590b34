"""Store fixtures: one ``backend`` per implementation for the shared contract suite.

``backend`` is parametrized over ``sqlite`` (a fresh file per test) and ``azurite`` (fresh tables
and a fresh queue per test, on one Azurite started for the session by ``tests.support.azurite``).
"""

from __future__ import annotations

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

    backend = Backend("sqlite", make(), clock, make)
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

    backend = Backend("azurite", make(), clock, make, server_time=True)
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
