"""Stores: the ``Store`` protocol and its SQLite (default) and Azure Tables/Queues implementations.

``open_store(url)`` picks one from a URL:

- ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db``, a plain path, or ``:memory:``
  (also ``sqlite://`` and ``sqlite:///:memory:``) → :class:`SQLiteStore`;
- ``azure://`` or ``azure://<prefix>`` → :class:`AzureStore` with table/queue names starting with
  ``<prefix>`` (default ``remediator``), on the storage account of ``connection_string`` or, when
  that is not given, of the environment variable ``REMEDIATOR_STORAGE_CONNECTION``.

``AzureStore`` is imported on first use (``remediator.store.AzureStore`` or an ``azure://`` URL),
so the SQLite path never loads the Azure SDKs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediator.errors import ConfigError
from remediator.store.base import (
    FINAL_STATES,
    OPEN_STATES,
    STATES,
    ApprovalVote,
    AuditEvent,
    Job,
    Remediation,
    State,
    Store,
)
from remediator.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from remediator.store.azure import AzureStore

__all__ = ["CONNECTION_ENV", "FINAL_STATES", "OPEN_STATES", "STATES", "ApprovalVote", "AuditEvent", "AzureStore",
           "Job", "Remediation", "SQLiteStore", "State", "Store", "open_store"]

CONNECTION_ENV = "REMEDIATOR_STORAGE_CONNECTION"


def open_store(url: str, *, connection_string: str | None = None,
               clock: Callable[[], datetime] | None = None) -> Store:
    """The store named by ``url`` (see the module docstring); ``clock`` is passed to it.

    Raises ``ConfigError`` for an unknown scheme or an ``azure://`` URL without a connection
    string.
    """
    text = url.strip()
    if text.startswith("azure://"):
        prefix = text[len("azure://"):].strip("/") or "remediator"
        conn = connection_string or os.environ.get(CONNECTION_ENV, "")
        if not conn.strip():
            raise ConfigError(f"store {url!r}: no storage connection string (pass one or set {CONNECTION_ENV})")
        from remediator.store.azure import AzureStore  # noqa: PLC0415 - the Azure SDKs load only when used

        try:
            return AzureStore(conn, prefix=prefix, clock=clock)
        except ValueError as exc:
            raise ConfigError(f"store {url!r}: {exc}") from exc
    if text.startswith("sqlite:"):
        rest = text[len("sqlite:"):]
        if rest in ("", "//", "///", "///:memory:"):
            return SQLiteStore(":memory:", clock=clock)
        if not rest.startswith("///"):
            raise ConfigError(f"store {url!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return SQLiteStore(rest[3:], clock=clock)
    if "://" in text:
        raise ConfigError(f"store {url!r}: unknown scheme; valid: sqlite:///path, a file path, :memory:, azure://prefix")
    if not text:
        raise ConfigError("store: empty URL; valid: sqlite:///path, a file path, :memory:, azure://prefix")
    return SQLiteStore(text, clock=clock)


def __getattr__(name: str) -> Any:
    if name == "AzureStore":
        from remediator.store.azure import AzureStore  # noqa: PLC0415 - lazy: keeps the Azure SDKs off the SQLite path

        return AzureStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
