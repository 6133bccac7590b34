"""Stores: the ``Store`` protocol and its SQLite (default) and Azure Tables/Queues implementations.

``open_store(url)`` picks one from a URL:

- ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db``, a plain path, or ``:memory:``
  (also ``sqlite://`` and ``sqlite:///:memory:``) → :class:`SQLiteStore`;
- ``azure://`` or ``azure://<prefix>`` → :class:`AzureStore` with table/queue names starting with
  ``<prefix>`` (default ``remediator``), on the storage account of ``connection_string`` or, when
  that is not given, of the environment variable ``REMEDIATOR_STORAGE_CONNECTION``; or, without
  one, an identity-based connection (the Functions host's convention, which the queue trigger
  shares): ``REMEDIATOR_STORAGE_CONNECTION__tableServiceUri`` and ``__queueServiceUri`` (or
  ``__accountName`` for the public cloud), ``__clientId`` for a user-assigned managed identity.

``AzureStore`` is imported on first use (``remediator.store.AzureStore`` or an ``azure://`` URL),
so the SQLite path never loads the Azure SDKs.

``must_exist=True`` (``audit``, ``report``: commands that read evidence) refuses a store that does
not exist yet, with ``UsageError`` naming it, instead of creating an empty one that would verify
as complete: a SQLite file that is not there, or an Azure store whose tables are missing (they are
not created).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediator.errors import ConfigError, UsageError
from remediator.lifecycle.model import (
    FINAL_STATES,
    OPEN_STATES,
    STATES,
    ApprovalVote,
    AuditEvent,
    Job,
    Remediation,
    State,
)
from remediator.lifecycle.store import Store
from remediator.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from remediator.store.azure import AzureStore

__all__ = [
    "CONNECTION_ENV",
    "FINAL_STATES",
    "OPEN_STATES",
    "STATES",
    "ApprovalVote",
    "AuditEvent",
    "AzureStore",
    "IdentityConnection",
    "Job",
    "Remediation",
    "SQLiteStore",
    "State",
    "Store",
    "identity_connection",
    "open_store",
]

CONNECTION_ENV = "REMEDIATOR_STORAGE_CONNECTION"


@dataclass(frozen=True, kw_only=True, slots=True)
class IdentityConnection:
    """Table and Queue endpoints reached with Entra ID (a managed identity): no account key."""

    table_uri: str
    queue_uri: str
    client_id: str | None = None  # a user-assigned identity's client id; None: DefaultAzureCredential's choice


def open_store(url: str, *, connection_string: str | None = None,
               clock: Callable[[], datetime] | None = None, must_exist: bool = False) -> Store:
    """The store named by ``url`` (see the module docstring); ``clock`` is passed to it.

    Raises ``ConfigError`` for an unknown scheme or an ``azure://`` URL without a connection
    string; with ``must_exist``, ``UsageError`` for a store that does not exist (nothing is created).
    """
    text = url.strip()
    if text.startswith("azure://"):
        prefix = text[len("azure://"):].strip("/") or "remediator"
        conn = connection_string or os.environ.get(CONNECTION_ENV, "")
        identity = None if conn.strip() else identity_connection(os.environ)
        if not conn.strip() and identity is None:
            raise ConfigError(f"store {url!r}: no storage connection string (pass one, or set {CONNECTION_ENV} "
                              f"or {CONNECTION_ENV}__tableServiceUri and __queueServiceUri)")
        from remediator.store.azure import AzureStore  # noqa: PLC0415 - the Azure SDKs load only when used

        try:
            azure = AzureStore(conn, prefix=prefix, clock=clock, identity=identity, create=not must_exist)
        except ValueError as exc:
            raise ConfigError(f"store {url!r}: {exc}") from exc
        try:
            missing = azure.missing_tables() if must_exist else []
        except BaseException:
            azure.close()
            raise
        if missing:
            azure.close()
            raise UsageError(f"store {url}: does not exist (no table {', '.join(missing)} on that storage account); "
                             "give the URL of an existing store (nothing was created)")
        return azure
    if text.startswith("sqlite:"):
        rest = text[len("sqlite:"):]
        if rest in ("", "//", "///", "///:memory:"):
            return SQLiteStore(":memory:", clock=clock)
        if not rest.startswith("///"):
            raise ConfigError(f"store {url!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return _sqlite(rest[3:], url, clock, must_exist)
    if "://" in text:
        raise ConfigError(f"store {url!r}: unknown scheme; valid: sqlite:///path, a file path, :memory:, azure://prefix")
    if not text:
        raise ConfigError("store: empty URL; valid: sqlite:///path, a file path, :memory:, azure://prefix")
    return _sqlite(text, url, clock, must_exist)


def _sqlite(path: str, url: str, clock: Callable[[], datetime] | None, must_exist: bool) -> SQLiteStore:
    memory = path == ":memory:" or path.startswith("file::memory:")
    if must_exist and not memory and not os.path.isfile(path):
        raise UsageError(f"store {url}: no such file {os.path.abspath(path)}; give the path of an existing store "
                         "(nothing was created)")
    return SQLiteStore(path, clock=clock)


def identity_connection(env: Mapping[str, str]) -> IdentityConnection | None:
    """The identity-based connection in ``env`` (``REMEDIATOR_STORAGE_CONNECTION__…``), or None.

    ``ConfigError`` when it is incomplete or names something other than https endpoints.
    """
    prefix = CONNECTION_ENV + "__"
    values = {k[len(prefix):]: v.strip() for k, v in env.items() if k.startswith(prefix) and v.strip()}
    if not values:
        return None
    account = values.get("accountName", "")
    table = values.get("tableServiceUri") or (f"https://{account}.table.core.windows.net" if account else "")
    queue = values.get("queueServiceUri") or (f"https://{account}.queue.core.windows.net" if account else "")
    if not table or not queue:
        raise ConfigError(f"{prefix}tableServiceUri and {prefix}queueServiceUri (or {prefix}accountName) are both "
                          "needed for an identity-based store connection")
    for name, uri in (("tableServiceUri", table), ("queueServiceUri", queue)):
        if not uri.startswith("https://"):
            raise ConfigError(f"{prefix}{name}: {uri[:80]!r} is not an https:// endpoint")
    credential = values.get("credential", "managedidentity")
    if credential.lower() != "managedidentity":
        raise ConfigError(f"{prefix}credential: {credential[:40]!r}; valid: managedidentity")
    return IdentityConnection(table_uri=table, queue_uri=queue, client_id=values.get("clientId") or None)


def __getattr__(name: str) -> Any:
    if name == "AzureStore":
        from remediator.store.azure import AzureStore  # noqa: PLC0415 - lazy: keeps the Azure SDKs off the SQLite path

        return AzureStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
