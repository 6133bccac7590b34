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

from collections.abc import Callable
from datetime import datetime

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

__all__ = ["FINAL_STATES", "OPEN_STATES", "STATES", "ApprovalVote", "AuditEvent", "Job",
           "Remediation", "SQLiteStore", "State", "Store", "open_store"]


def open_store(url: str, *, connection_string: str | None = None,
               clock: Callable[[], datetime] | None = None) -> Store:
    """The store named by ``url`` (see the module docstring); ``clock`` is passed to it.

    Raises ``ConfigError`` for an unknown scheme or an ``azure://`` URL without a connection
    string.
    """
    text = url.strip()
    if text.startswith("azure://"):
        raise ConfigError(f"store {url!r}: the Azure store is not available yet")
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

