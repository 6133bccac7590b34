"""Test doubles for Azure authentication and transport, shared by the fake servers.

* ``FakeCredential``: a ``TokenCredential`` returning a fixed token (and remembering the scopes
  it was asked for), so no identity library or network is involved.
* ``StaticAuthPolicy``: a ``SansIOHTTPPolicy`` setting ``Authorization: Bearer <token>``. Passed as
  a management client's ``authentication_policy``, it replaces ``ARMChallengeAuthenticationPolicy``
  and with it the "Bearer token authentication is not permitted for non-TLS protected (non-https)
  URLs" check, so the real SDK clients can talk to ``http://127.0.0.1:<port>``.
* ``RedirectTransport``: an ``HttpTransport`` that sends ``https://<host>/<path>`` to
  ``<base_url>/_vault/<host>/<path>``. Key Vault's ``SecretClient`` hard-wires its own
  ``ChallengeAuthPolicy`` (no ``authentication_policy`` override, no ``enforce_https`` switch: it
  refuses any URL that is not https), so the client keeps a real ``https://x.vault.azure.net`` URL
  and only the transport, the public seam for this, moves the bytes to the local fake.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpTransport, RequestsTransport

FAKE_TOKEN = "fake-token"  # noqa: S105  (a test token, not a secret)
VAULT_PREFIX = "/_vault/"


class FakeCredential:
    """A ``TokenCredential`` that never talks to Entra ID."""

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.token = token
        self.scopes: list[str] = []
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        with self._lock:
            self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class StaticAuthPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Sets a fixed bearer token on every request (replaces the ARM challenge policy in tests)."""

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self._token = token

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        request.http_request.headers["Authorization"] = f"Bearer {self._token}"


class RedirectTransport(HttpTransport):  # type: ignore[type-arg]
    """Sends every request for ``https://<host>/<path>`` to ``<base_url>/_vault/<host>/<path>``.

    The request's URL is rewritten only for the duration of the send, so every policy (the Key
    Vault challenge policy checks ``https`` and the challenge's resource against the host) sees the
    real vault URL.
    """

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")
        self._inner = RequestsTransport()

    def send(self, request: Any, **kwargs: Any) -> Any:
        original = request.url
        parts = urlsplit(original)
        target = f"{self._base}{VAULT_PREFIX}{parts.netloc}{parts.path}"
        if parts.query:
            target += "?" + parts.query
        request.url = target
        try:
            return self._inner.send(request, **kwargs)
        finally:
            request.url = original

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> RedirectTransport:
        self._inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._inner.__exit__(*args)
