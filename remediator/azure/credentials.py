"""Credentials and ARM clients, built in one place for every entry point.

remediator acts in Azure as one of two identities (``docs/deploy.md``):

* the **executor** reads state and writes under PIM grants; its managed identity's client id is
  ``AZURE_CLIENT_ID`` (unset: azure.identity's own choice, e.g. a system-assigned identity, or the
  developer's ``az login``);
* the **broker** (``pim-assign`` only) creates the PIM schedule requests; its client id is
  ``REMEDIATOR_BROKER_CLIENT_ID``. It never uses azure.identity's environment credential: the
  ``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET`` service principal in the environment is the
  executor's, and the broker must not silently become the executor.

A ``Wiring`` is the whole decision, as a value: the ``Cloud`` (ARM endpoint and Entra authority
host: sovereign clouds set both, e.g. ``https://management.usgovcloudapi.net`` and
``https://login.microsoftonline.us``) and the identities. ``Wiring.clients(identity)`` gives the
``ArmClients`` for one identity: base URL the endpoint, token scope ``<endpoint>/.default``, and a
``FreshTokenCredential`` over ``IdentityCredential`` (azure.identity's ``DefaultAzureCredential``
with ``authority=`` and ``managed_identity_client_id=``). ``remediator.app.wiring.azure_wiring``
turns settings into a ``Wiring``; ``doctor``, ``serve``, ``plan`` and ``scan`` (live), the report's
policy snapshot and the Functions app all build their clients through it. ``describe`` says what a
client talks to and as whom (the startup log, and the test that every entry point agrees).

A credential that cannot get a token raises azure-core's ``ClientAuthenticationError`` with one line
(``auth_failure``): which credentials were tried and how to log in, instead of azure.identity's
dozen-line list; the list stays on the exception's cause (``remediator --verbose`` prints it).

Nothing is imported eagerly: building a ``Wiring``, a credential or ``ArmClients`` imports no SDK;
azure.identity loads on the first token request, each management SDK on first use of its client
(the Functions cold start, ``benchmarks/bench_cold_start.py``).

Fresh token between attempts: ``FreshTokenCredential.refresh()`` drops the cached token and the
credential instance (the identity library caches tokens per instance), so the next request carries
a newly issued token; ``remediator.azure.errors.retry_propagation`` calls it before retrying a
propagation 403. The wrapper hands the pipeline's bearer policy tokens that look short-lived, so
the policy asks the wrapper on every request (a dictionary lookup) instead of caching on its own;
this works with every client already built and cached by ``ArmClients``. Caveat: a managed
identity's token endpoint (IMDS) may itself return a cached token; the bounded backoff is what
covers that case.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from remediator.azure.clients import PUBLIC_ARM, ArmClients
from remediator.azure.directory import DirectoryClient
from remediator.errors import ConfigError

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

log = logging.getLogger("remediator.azure.credentials")

EXECUTOR_CLIENT_ID_ENV = "AZURE_CLIENT_ID"  # azure.identity's own variable for a user-assigned identity
Role = Literal["executor", "broker"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Cloud:
    """Where Azure is: the ARM endpoint, and the Entra authority host (``None``: azure.identity's
    default, ``AZURE_AUTHORITY_HOST`` or the public cloud)."""

    arm_endpoint: str = PUBLIC_ARM
    authority_host: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "arm_endpoint", self.arm_endpoint.strip().rstrip("/"))
        if self.authority_host is not None:
            object.__setattr__(self, "authority_host", self.authority_host.strip().rstrip("/") or None)

    @property
    def scope(self) -> str:
        """The token scope of the ARM endpoint (``https://management.usgovcloudapi.net/.default``)."""
        return self.arm_endpoint + "/.default"


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """One of remediator's identities: its role and its managed identity's client id."""

    role: Role
    client_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class IdentityCredential:
    """Builds an identity's azure.identity credential when called (``FreshTokenCredential``'s factory)."""

    identity: Identity
    cloud: Cloud

    def options(self) -> dict[str, Any]:
        """The ``DefaultAzureCredential`` keyword arguments (see the module docstring)."""
        out: dict[str, Any] = {}
        if self.cloud.authority_host:
            out["authority"] = self.cloud.authority_host
        if self.identity.client_id:
            out["managed_identity_client_id"] = self.identity.client_id
        if self.identity.role == "broker":
            out["exclude_environment_credential"] = True
        return out

    def __call__(self) -> Any:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415

        return DefaultAzureCredential(**self.options())


@dataclass(frozen=True, kw_only=True, slots=True)
class Wiring:
    """The cloud and the identities an entry point acts as; ``broker`` only for ``pim-assign``."""

    cloud: Cloud
    executor: Identity
    broker: Identity | None = None

    def clients(self, identity: Identity) -> ArmClients:
        """``ArmClients`` acting as ``identity`` (nothing is imported or authenticated yet)."""
        credential = FreshTokenCredential(IdentityCredential(identity=identity, cloud=self.cloud))
        clients = ArmClients(credential, base_url=self.cloud.arm_endpoint)
        described = describe(clients)
        log.info("Azure as the %s: %s", identity.role, described, extra={"azure": described})
        return clients

    def executor_clients(self) -> ArmClients:
        return self.clients(self.executor)

    def directory(self, graph_endpoint: str) -> DirectoryClient:
        """A Microsoft Graph ``DirectoryClient`` (read-only, names) acting as the executor, the identity that
        reads: token scope ``<graph_endpoint>/.default``, the same credential options (authority …)."""
        credential = FreshTokenCredential(IdentityCredential(identity=self.executor, cloud=self.cloud))
        client = DirectoryClient(credential, endpoint=graph_endpoint)
        log.info("Microsoft Graph as the executor: %s", client.describe(), extra={"graph": client.describe()})
        return client

    def broker_clients(self) -> ArmClients | None:
        return self.clients(self.broker) if self.broker is not None else None


def describe(clients: ArmClients | None) -> dict[str, Any] | None:
    """What ``clients`` talk to and as whom: endpoint, token scopes and, for clients a ``Wiring``
    built, the identity's role, client id and the credential's options (authority …)."""
    if clients is None:
        return None
    out: dict[str, Any] = {"endpoint": clients.base_url,
                           "scopes": list(clients.client_kwargs.get("credential_scopes") or ())}
    factory = getattr(clients.credential, "factory", None)
    if isinstance(factory, IdentityCredential):
        out |= {"role": factory.identity.role, "client_id": factory.identity.client_id,
                "credential": factory.options()}
    return out


class FreshTokenCredential:
    """A ``TokenCredential`` whose token can be dropped and re-issued on demand (``refresh()``).

    ``factory`` builds the real credential (``IdentityCredential``, or any callable returning a
    ``TokenCredential``); ``refresh()`` discards the cached token and the credential instance, so
    the next request gets a newly issued token from a new instance. Tokens are handed to the
    pipeline with an expiry at most ``handoff`` seconds away, so azure-core's bearer policy asks this
    wrapper on every request and never keeps a stale token of its own (see the module docstring).
    """

    def __init__(self, factory: Callable[[], Any], *, handoff: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        if handoff >= 240:  # azure-core refreshes tokens that expire within 300 s minus up to 60 s jitter
            raise ConfigError("FreshTokenCredential handoff must be under 240 seconds")
        self._factory = factory
        self._handoff = handoff
        self._clock = clock
        self._inner: Any = None
        self._tokens: dict[tuple[Any, ...], AccessTokenInfo] = {}
        self._lock = threading.Lock()
        self.refreshes = 0

    @property
    def factory(self) -> Callable[[], Any]:
        """What builds the real credential (an ``IdentityCredential`` for clients a ``Wiring`` built)."""
        return self._factory

    def refresh(self) -> None:
        """Forget the token and the credential instance; the next request gets a new token."""
        with self._lock:
            old, self._inner = self._inner, None
            self._tokens.clear()
            self.refreshes += 1
        close = getattr(old, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.debug("closing the discarded credential failed", exc_info=True)

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken  # noqa: PLC0415

        options: dict[str, Any] = {"enable_cae": enable_cae}
        if claims:
            options["claims"] = claims
        if tenant_id:
            options["tenant_id"] = tenant_id
        info = self._token(scopes, options)
        return AccessToken(info.token, self._handoff_expiry(info))

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        from azure.core.credentials import AccessTokenInfo  # noqa: PLC0415

        info = self._token(scopes, dict(options or {}))
        return AccessTokenInfo(info.token, self._handoff_expiry(info), token_type=info.token_type)

    def close(self) -> None:
        self.refresh()

    def _handoff_expiry(self, info: AccessTokenInfo) -> int:
        return int(min(info.expires_on, self._clock() + self._handoff))

    def _token(self, scopes: tuple[str, ...], options: dict[str, Any]) -> AccessTokenInfo:
        from azure.core.credentials import AccessTokenInfo  # noqa: PLC0415

        key = (scopes, options.get("tenant_id"), bool(options.get("enable_cae")))
        with self._lock:
            now = self._clock()
            cached = self._tokens.get(key)
            usable = cached is not None and not options.get("claims") and cached.expires_on - now > 300 and (
                not cached.refresh_on or cached.refresh_on > now)
            if usable and cached is not None:
                return cached
            if self._inner is None:
                self._inner = self._factory()
            inner = self._inner
            try:
                if hasattr(inner, "get_token_info"):
                    info: AccessTokenInfo = inner.get_token_info(*scopes, options=options)
                else:
                    kwargs = {k: v for k, v in options.items() if k in ("claims", "tenant_id", "enable_cae") and v}
                    tok = inner.get_token(*scopes, **kwargs)
                    info = AccessTokenInfo(tok.token, int(tok.expires_on))
            except Exception as e:
                from azure.core.exceptions import ClientAuthenticationError  # noqa: PLC0415

                if isinstance(e, ClientAuthenticationError) and "\n" in str(e.message or e):
                    raise ClientAuthenticationError(message=auth_failure(e)) from e
                raise
            self._tokens[key] = info
            return info


_ATTEMPT = re.compile(r"^\s+(\w+?)(?:Credential)?: (.*)$")
LOGIN_HINT = ("log in with `az login` (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or run "
              "with a managed identity)")


def auth_failure(exc: BaseException) -> str:
    """azure.identity's multi-line failure as one line: its first sentence, the credentials it tried
    (those that said why briefly, with the reason), and how to log in."""
    text = str(getattr(exc, "message", None) or exc)
    lines = text.splitlines()
    head = lines[0].strip().rstrip(".") if lines else type(exc).__name__
    if head.startswith("DefaultAzureCredential failed to retrieve a token"):
        head = "no Azure credential (DefaultAzureCredential)"
    tried = []
    for line in lines[1:]:
        m = _ATTEMPT.match(line)
        if m:
            name, why = m.group(1), m.group(2).split(". ")[0].strip().rstrip(".")
            short = why if len(why) <= 40 and "unavailable" not in why else ""
            tried.append(f"{name} ({short})" if short else name)
    listed = f": tried {', '.join(tried)}" if tried else ""
    return f"{head}{listed}; {LOGIN_HINT}; --verbose shows why each failed"


def refresher(clients: ArmClients | None) -> Callable[[], None] | None:
    """``clients``' credential's ``refresh`` (a ``FreshTokenCredential``), else ``None``."""
    if clients is None:
        return None
    refresh = getattr(clients.credential, "refresh", None)
    return refresh if callable(refresh) else None
