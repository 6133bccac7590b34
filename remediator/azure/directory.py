"""Microsoft Graph, read-only: who a principal object id is (``directoryObjects/getByIds``).

Not to be confused with ``remediator.azure.graph`` (Azure *Resource* Graph). This module reads the
Entra directory so that a person approving "revoke Owner of 9d2c5e7f-…" sees *whose* Owner it is.

The call (Microsoft Graph v1.0, "directoryObject: getByIds",
https://learn.microsoft.com/graph/api/directoryobject-getbyids): ``POST {endpoint}/v1.0/directoryObjects/getByIds``
with ``{"ids": [...], "types": ["user", "group", "servicePrincipal"]}``; "You can specify up to 1000
ids" (``MAX_IDS``), so more are sent in batches of 1000. The answer's ``value`` holds the objects found,
each with its ``@odata.type``; ids that are not directory objects of those types are simply absent
(a subscription id or a role assignment name sent by mistake costs nothing). Managed identities are
service principals whose ``servicePrincipalType`` is ``ManagedIdentity``. The application permission
the documentation lists for the call is ``Directory.Read.All`` (``docs/deploy.md`` says why remediator
asks for exactly that one).

Sovereign clouds (https://learn.microsoft.com/graph/deployments, "Microsoft Graph and Graph Explorer
service root endpoints"): ``https://graph.microsoft.com`` (global), ``https://graph.microsoft.us``
(US Government L4), ``https://dod-graph.microsoft.us`` (US Government L5, DoD) and
``https://microsoftgraph.chinacloudapi.cn`` (21Vianet). The token scope follows the endpoint
(``<endpoint>/.default``: "any permission scope value (including the .default scope) that contains
the Microsoft Graph domain MUST use the domain of the Microsoft Graph service root endpoint for the
national cloud deployment", https://learn.microsoft.com/graph/sdks/national-clouds).
``graph_endpoint_for(arm_endpoint)`` picks the endpoint of the ARM endpoint's cloud; the setting
``graph_endpoint`` overrides it.

Why azure-core and not msgraph-sdk: one POST and its JSON answer need a pipeline with bearer tokens,
retries honouring ``Retry-After`` (Graph throttles with 429) and timeouts, which azure-core (already a
dependency, and what every ARM client here runs on) provides; msgraph-sdk would add kiota, httpx and
an async-only API (about 30 MB installed) to the Functions cold start for that one call.

``DirectoryClient.get_by_ids`` raises ``NamesUnavailable`` (one line) when Graph cannot be reached,
refuses (401/403: the permission is missing) or answers something else; ``remediator.planning.names``
turns that into "ids shown, one warning". The cache with its time to live lives there too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from remediator.errors import NamesUnavailable, one_line

log = logging.getLogger("remediator.azure.directory")

PUBLIC_GRAPH = "https://graph.microsoft.com"
# ARM endpoint → Microsoft Graph endpoint of the same cloud (learn.microsoft.com/graph/deployments)
GRAPH_ENDPOINTS: dict[str, str] = {
    "https://management.azure.com": PUBLIC_GRAPH,
    "https://management.usgovcloudapi.net": "https://graph.microsoft.us",
    "https://management.chinacloudapi.cn": "https://microsoftgraph.chinacloudapi.cn",
}
DOD_GRAPH = "https://dod-graph.microsoft.us"  # US Government L5 shares the ARM endpoint: set graph_endpoint
MAX_IDS = 1000  # ids per getByIds request ("You can specify up to 1000 ids")
TYPES = ("user", "group", "servicePrincipal")
GET_BY_IDS = "/v1.0/directoryObjects/getByIds"
DEFAULT_TIMEOUT = 10.0  # seconds to connect and to read one answer: a name never holds a message for long
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Kind = Literal["user", "group", "servicePrincipal", "managedIdentity"]


def graph_endpoint_for(arm_endpoint: str) -> str | None:
    """The Microsoft Graph endpoint of ``arm_endpoint``'s cloud; None for an endpoint of no known
    cloud (a local fake, Azure Stack): names are then off unless ``graph_endpoint`` is set."""
    return GRAPH_ENDPOINTS.get(arm_endpoint.strip().rstrip("/").lower())


def is_object_id(value: str) -> bool:
    """An Entra object id's shape (a GUID)."""
    return bool(_GUID.match(value))


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """A directory object as a person reads it: its display name and what tells it apart (a user's
    UPN, a service principal's or managed identity's app id, a group's mail)."""

    id: str  # object id, lower case
    kind: Kind
    display_name: str
    user_principal_name: str | None = None
    app_id: str | None = None
    mail: str | None = None

    @property
    def detail(self) -> str | None:
        """The second thing a reader needs: UPN (user), app id (service principal, managed identity), mail (group)."""
        if self.kind == "user":
            return self.user_principal_name or self.mail
        if self.kind in ("servicePrincipal", "managedIdentity"):
            return f"app {self.app_id}" if self.app_id else None
        return self.mail

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "displayName": self.display_name}
        for key, value in (("userPrincipalName", self.user_principal_name), ("appId", self.app_id),
                           ("mail", self.mail)):
            if value:
                out[key] = value
        return out


def principal(obj: Mapping[str, Any]) -> Principal | None:
    """A ``getByIds`` answer's object as a ``Principal``; None for another type or a shapeless one."""
    odata = str(obj.get("@odata.type") or "").rsplit(".", 1)[-1]
    oid = str(obj.get("id") or "").lower()
    if not is_object_id(oid) or odata not in TYPES:
        return None
    kind: Kind = "managedIdentity" if odata == "servicePrincipal" and \
        str(obj.get("servicePrincipalType") or "").lower() == "managedidentity" else odata  # type: ignore[assignment]
    return Principal(id=oid, kind=kind, display_name=_text(obj.get("displayName")),
                     user_principal_name=_text(obj.get("userPrincipalName")) or None,
                     app_id=_text(obj.get("appId")) or None, mail=_text(obj.get("mail")) or None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class DirectoryClient:
    """Microsoft Graph ``getByIds`` over azure-core's pipeline (see the module docstring).

    ``credential``: a ``TokenCredential`` (``FreshTokenCredential`` built by ``Wiring`` in a deployment);
    ``endpoint``: the Graph service root; ``scope``: the token scope (``<endpoint>/.default`` unless given:
    a test points ``endpoint`` at a local fake and keeps the real scope). ``authentication_policy``
    replaces azure-core's ``BearerTokenCredentialPolicy`` (tests: the https check off);
    ``transport`` replaces ``RequestsTransport``. ``calls`` counts the requests sent.
    """

    def __init__(self, credential: Any, *, endpoint: str = PUBLIC_GRAPH, scope: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retry_total: int = 2, batch_size: int = MAX_IDS,
                 authentication_policy: Any = None, transport: Any = None) -> None:
        if not 1 <= batch_size <= MAX_IDS:
            raise ValueError(f"batch_size must be 1-{MAX_IDS} (getByIds takes up to {MAX_IDS} ids)")
        self.credential = credential
        self.endpoint = endpoint.strip().rstrip("/")
        self.scope = scope or self.endpoint + "/.default"
        self.timeout = timeout
        self.retry_total = retry_total
        self.batch_size = batch_size
        self._auth = authentication_policy
        self._transport = transport
        self._client: Any = None
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        """What this client talks to (the startup log, ``doctor``)."""
        return {"endpoint": self.endpoint, "scopes": [self.scope]}

    def _pipeline(self) -> Any:
        if self._client is None:
            from azure.core import PipelineClient  # noqa: PLC0415
            from azure.core.pipeline.policies import (  # noqa: PLC0415
                BearerTokenCredentialPolicy,
                HeadersPolicy,
                RetryPolicy,
                UserAgentPolicy,
            )

            auth = self._auth or BearerTokenCredentialPolicy(self.credential, self.scope)
            policies = [HeadersPolicy({"Accept": "application/json"}), UserAgentPolicy(sdk_moniker="remediator"),
                        RetryPolicy(retry_total=self.retry_total, retry_backoff_factor=0.5), auth]
            kwargs: dict[str, Any] = {"policies": policies}
            if self._transport is not None:
                kwargs["transport"] = self._transport
            self._client = PipelineClient(base_url=self.endpoint, **kwargs)
        return self._client

    def get_by_ids(self, object_ids: Iterable[str]) -> dict[str, Principal]:
        """The users, groups and service principals (managed identities among them) of ``object_ids``,
        by lower-case id; ids of anything else, or of nothing, are absent. Up to ``batch_size`` ids a
        request. Raises ``NamesUnavailable`` (one line) when Graph fails."""
        wanted = list(dict.fromkeys(i.strip().lower() for i in object_ids if is_object_id(i.strip())))
        out: dict[str, Principal] = {}
        for start in range(0, len(wanted), self.batch_size):
            out.update(self._batch(wanted[start:start + self.batch_size]))
        return out

    def _batch(self, batch: list[str]) -> dict[str, Principal]:
        from azure.core.exceptions import AzureError  # noqa: PLC0415
        from azure.core.rest import HttpRequest  # noqa: PLC0415

        request = HttpRequest("POST", self.endpoint + GET_BY_IDS, json={"ids": batch, "types": list(TYPES)})
        self.calls += 1
        try:
            response = self._pipeline().send_request(request, connection_timeout=self.timeout,
                                                     read_timeout=self.timeout)
        except AzureError as e:
            raise NamesUnavailable(f"Microsoft Graph at {self.endpoint} cannot be reached: "
                                   f"{one_line(getattr(e, 'message', None) or e, 300)}") from e
        if response.status_code != 200:
            raise NamesUnavailable(f"Microsoft Graph at {self.endpoint} answered {response.status_code}"
                                   f"{_graph_error(response)}{_hint(response.status_code)}")
        try:
            body = response.json()
        except ValueError:
            body = None
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise NamesUnavailable(f"Microsoft Graph at {self.endpoint} answered getByIds without a value array")
        found: dict[str, Principal] = {}
        for obj in values:
            p = principal(obj) if isinstance(obj, Mapping) else None
            if p is not None:
                found[p.id] = p
        return found

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _graph_error(response: Any) -> str:
    """`` Authorization_RequestDenied: …`` from Graph's ``{"error": {"code", "message"}}``, else ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    code, message = _text(error.get("code")), _text(error.get("message"))
    return " " + one_line(f"{code}: {message}" if message else code, 300) if code or message else ""


def _hint(status: int) -> str:
    if status in (401, 403):
        return ("; the identity needs the Microsoft Graph application permission Directory.Read.All "
                "(docs/deploy.md, \"Names\")")
    return ""
