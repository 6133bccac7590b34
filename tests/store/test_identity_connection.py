"""The store's identity-based connection (the template's storage account takes no shared key)."""

from __future__ import annotations

import os

import pytest

from remediator.errors import ConfigError
from remediator.store import CONNECTION_ENV, AzureStore, IdentityConnection, identity_connection, open_store

P = CONNECTION_ENV + "__"


def test_service_uris_and_client_id() -> None:
    got = identity_connection({P + "tableServiceUri": "https://st1.table.core.windows.net/",
                               P + "queueServiceUri": "https://st1.queue.core.windows.net/",
                               P + "credential": "managedidentity", P + "clientId": "c-1"})
    assert got == IdentityConnection(table_uri="https://st1.table.core.windows.net/",
                                     queue_uri="https://st1.queue.core.windows.net/", client_id="c-1")


def test_account_name_is_the_public_cloud_endpoints() -> None:
    got = identity_connection({P + "accountName": "st1"})
    assert got is not None
    assert (got.table_uri, got.queue_uri, got.client_id) == \
        ("https://st1.table.core.windows.net", "https://st1.queue.core.windows.net", None)


def test_absent_is_none() -> None:
    assert identity_connection({"OTHER": "x"}) is None


@pytest.mark.parametrize(("env", "message"), [
    ({P + "tableServiceUri": "https://t"}, "both needed"),
    ({P + "tableServiceUri": "http://t", P + "queueServiceUri": "https://q"},
     "tableServiceUri: 'http://t' is not an https"),
    ({P + "accountName": "st1", P + "credential": "connectionstring"},
     "credential: 'connectionstring'; valid: managedidentity"),
])
def test_incomplete_or_wrong_is_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        identity_connection(env)


def test_open_store_uses_it_without_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONNECTION_ENV, raising=False)
    monkeypatch.setenv(P + "tableServiceUri", "https://127.0.0.1:9/t/")
    monkeypatch.setenv(P + "queueServiceUri", "https://127.0.0.1:9/q/")
    monkeypatch.setenv(P + "clientId", "00000000-0000-0000-0000-000000000001")
    store = AzureStore("", identity=identity_connection(dict(os.environ)), create=False)
    try:
        assert store._service.url.startswith("https://127.0.0.1:9/t")
        assert store._queue.url.startswith("https://127.0.0.1:9/q/remediator-jobs")
        assert store._queue.credential is not None
    finally:
        store.close()
    for name in ("tableServiceUri", "queueServiceUri", "clientId"):
        monkeypatch.delenv(P + name)
    with pytest.raises(ConfigError, match="no storage connection string"):
        open_store("azure://remediator")
