"""Lazily built, cached Azure SDK clients for one ARM endpoint and credential.

The management SDKs are imported on first use of each client (a Functions cold start pays
~0.7 s for eager imports of all four). Clients are cached per (kind, subscription).

Sovereign clouds: pass the cloud's ARM endpoint as ``base_url``; the token scope follows it.
Deployments build them through ``remediator.azure.credentials.Wiring`` (the credential, the
endpoint and the identity decided in one place).
Tests pass the fake ARM server's URL plus ``authentication_policy``, ``retry_total=0`` and
``polling_interval=0`` as client keyword arguments (see ``remediator.testing.FakeArm.clients``).

Pace (``remediator.azure.pace``): every client of one subscription shares one ``Pace`` (bounded
concurrency, ARM's rate-limit headers, a 429 blocks the whole subscription), added to its pipeline
after the retry policy; the Resource Graph client shares the ``"graph"`` one. ``concurrency`` is
the number of requests in flight per subscription; ``clock`` and ``sleep`` are the paces' time (tests
pass a virtual one, so that a 429 waits without waiting).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

PUBLIC_ARM = "https://management.azure.com"


class ArmClients:
    """A factory of management clients sharing one credential, endpoint and client options."""

    def __init__(self, credential: Any, *, base_url: str = PUBLIC_ARM,
                 keyvault_kwargs: Mapping[str, Any] | None = None, concurrency: int = 8,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 msgraph: Any = None, graph_endpoint: str | None = None, **client_kwargs: Any) -> None:
        self._credential = credential
        self.base_url = base_url.rstrip("/")
        # Key Vault's SecretClient builds its own challenge auth policy, so it takes separate options
        self.keyvault_kwargs = dict(keyvault_kwargs or {})
        self.client_kwargs = dict(client_kwargs)
        self.client_kwargs.setdefault("credential_scopes", [self.base_url + "/.default"])
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()  # building a client takes its subscription's pace under it
        self.concurrency = concurrency
        self._paces: dict[str, Any] = {}
        self._clock, self._sleep = clock, sleep
        self._msgraph = msgraph
        self.graph_endpoint = graph_endpoint.rstrip("/") if graph_endpoint else None  # the setting; else the cloud's

    @property
    def credential(self) -> Any:
        """The ``TokenCredential`` every client uses (``FreshTokenCredential`` when a ``Wiring`` built them)."""
        return self._credential

    def pace(self, subscription_id: str) -> Any:
        """The ``Pace`` shared by every client of this subscription (``"graph"``: Resource Graph's)."""
        from remediator.azure.pace import Pace  # noqa: PLC0415  (azure.core: only once a client is built)

        with self._lock:
            pace = self._paces.get(subscription_id.lower())
            if pace is None:
                pace = Pace(subscription_id.lower(), concurrency=self.concurrency, clock=self._clock, sleep=self._sleep)
                self._paces[subscription_id.lower()] = pace
            return pace

    def paces(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._paces)

    def _kwargs(self, subscription_id: str) -> dict[str, Any]:
        """The client options plus, after the retry policy, this subscription's pace policy, the
        telemetry policy counting ARM 429s and the fencing check before every write
        (``remediator.azure.fence``; all built with the first client: constructing ``ArmClients``
        imports nothing)."""
        from remediator.azure.fence import fence_policy  # noqa: PLC0415
        from remediator.azure.pace import PacePolicy  # noqa: PLC0415
        from remediator.telemetry import throttle_policy  # noqa: PLC0415

        kwargs = dict(self.client_kwargs)
        kwargs["per_retry_policies"] = [*kwargs.get("per_retry_policies", ()), PacePolicy(self.pace(subscription_id)),
                                        throttle_policy(), fence_policy()]
        return kwargs

    def _client(self, kind: str, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            client = self._cache.get((kind, key))
            if client is None:
                client = build()
                self._cache[(kind, key)] = client
            return client

    def storage(self, subscription_id: str) -> Any:
        def build() -> Any:
            from azure.mgmt.storage import StorageManagementClient  # noqa: PLC0415

            return StorageManagementClient(self.credential, subscription_id, base_url=self.base_url,
                                           **self._kwargs(subscription_id))

        return self._client("storage", subscription_id, build)

    def network(self, subscription_id: str) -> Any:
        def build() -> Any:
            from azure.mgmt.network import NetworkManagementClient  # noqa: PLC0415

            return NetworkManagementClient(self.credential, subscription_id, base_url=self.base_url,
                                           **self._kwargs(subscription_id))

        return self._client("network", subscription_id, build)

    def resources(self, subscription_id: str) -> Any:
        """azure-mgmt-resource's generic ``ResourceManagementClient`` (any type, pinned api-version)."""

        def build() -> Any:
            from azure.mgmt.resource.resources import ResourceManagementClient  # noqa: PLC0415

            return ResourceManagementClient(self.credential, subscription_id, base_url=self.base_url,
                                            **self._kwargs(subscription_id))

        return self._client("resources", subscription_id, build)

    def containerregistry(self, subscription_id: str) -> Any:
        def build() -> Any:
            from azure.mgmt.containerregistry import ContainerRegistryManagementClient  # noqa: PLC0415

            return ContainerRegistryManagementClient(self.credential, subscription_id, base_url=self.base_url,
                                                     **self._kwargs(subscription_id))

        return self._client("containerregistry", subscription_id, build)

    def authorization(self, subscription_id: str) -> Any:
        def build() -> Any:
            from azure.mgmt.authorization import AuthorizationManagementClient  # noqa: PLC0415

            return AuthorizationManagementClient(self.credential, subscription_id, base_url=self.base_url,
                                                 **self._kwargs(subscription_id))

        return self._client("authorization", subscription_id, build)

    def resourcegraph(self) -> Any:
        """The Resource Graph client (tenant-level: one for all subscriptions, with the ``graph`` pace)."""
        def build() -> Any:
            from azure.mgmt.resourcegraph import ResourceGraphClient  # noqa: PLC0415

            return ResourceGraphClient(self.credential, base_url=self.base_url, **self._kwargs("graph"))

        return self._client("resourcegraph", "", build)

    def msgraph(self) -> Any:
        """The Microsoft Graph client (``remediator.azure.directory.DirectoryClient``) of this cloud, on this
        credential: the one given (``msgraph=``: a test's, pointed at ``FakeMsGraph``), else built for the Graph
        endpoint the deployment set (``graph_endpoint``), else the one of ``base_url``'s cloud. ``DirectoryError``
        for an ARM endpoint of no known cloud and no endpoint set."""
        from remediator.azure.directory import DirectoryClient, graph_endpoint_for  # noqa: PLC0415
        from remediator.errors import DirectoryError  # noqa: PLC0415

        with self._lock:
            if self._msgraph is None:
                endpoint = self.graph_endpoint or graph_endpoint_for(self.base_url)
                if endpoint is None:
                    raise DirectoryError(f"no Microsoft Graph endpoint is known for the ARM endpoint {self.base_url}")
                self._msgraph = DirectoryClient(self.credential, endpoint=endpoint)
            return self._msgraph

    def secrets(self, vault_url: str) -> Any:
        """A Key Vault ``SecretClient`` for ``vault_url`` (data plane), with ``keyvault_kwargs``."""
        def build() -> Any:
            from azure.keyvault.secrets import SecretClient  # noqa: PLC0415

            from remediator.azure.fence import fence_hook  # noqa: PLC0415

            # Key Vault builds its own policy list (per_retry_policies are ignored): the fencing
            # check rides on azure-core's custom hook, which runs after the retry policy too
            return SecretClient(vault_url, self.credential, **{"raw_request_hook": fence_hook, **self.keyvault_kwargs})

        return self._client("secrets", vault_url.rstrip("/").lower(), build)
