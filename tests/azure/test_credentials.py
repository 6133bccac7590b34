"""Credentials and clients built in one place (``remediator.azure.credentials``): the cloud's endpoint,
token scope and authority, the two identities, nothing imported before the first token, and the
credential whose token can be re-issued between retries."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo

from remediator.azure.credentials import (
    Cloud,
    FreshTokenCredential,
    Identity,
    IdentityCredential,
    Wiring,
    describe,
    refresher,
)
from remediator.errors import ConfigError
from remediator.testing import FakeArm
from tests.conftest import ROOT

GOV = Cloud(arm_endpoint="https://management.usgovcloudapi.net/", authority_host="https://login.microsoftonline.us")
EXEC_CLIENT = "0d4c5b6a-7e8f-4a9b-8c1d-2e3f4a5b6c7d"
BROKER_CLIENT = "1e5d6c7b-8f9a-4b0c-9d2e-3f4a5b6c7d8e"
WIRING = Wiring(cloud=GOV, executor=Identity(role="executor", client_id=EXEC_CLIENT),
                broker=Identity(role="broker", client_id=BROKER_CLIENT))


def test_a_sovereign_cloud_sets_endpoint_scope_and_authority_for_both_identities() -> None:
    executor, broker = WIRING.executor_clients(), WIRING.broker_clients()
    assert broker is not None
    assert describe(executor) == {
        "endpoint": "https://management.usgovcloudapi.net", "scopes": ["https://management.usgovcloudapi.net/.default"],
        "role": "executor", "client_id": EXEC_CLIENT,
        "credential": {"authority": "https://login.microsoftonline.us", "managed_identity_client_id": EXEC_CLIENT}}
    assert describe(broker) == {
        "endpoint": "https://management.usgovcloudapi.net", "scopes": ["https://management.usgovcloudapi.net/.default"],
        "role": "broker", "client_id": BROKER_CLIENT,
        "credential": {"authority": "https://login.microsoftonline.us", "managed_identity_client_id": BROKER_CLIENT,
                       "exclude_environment_credential": True}}
    assert isinstance(executor.credential, FreshTokenCredential)
    assert refresher(executor) == executor.credential.refresh  # what the propagation retries call
    assert executor.credential is not broker.credential


def test_the_public_cloud_and_no_client_id_leave_azure_identity_its_defaults() -> None:
    wiring = Wiring(cloud=Cloud(), executor=Identity(role="executor"))
    assert wiring.broker_clients() is None
    assert describe(wiring.executor_clients()) == {
        "endpoint": "https://management.azure.com", "scopes": ["https://management.azure.com/.default"],
        "role": "executor", "client_id": None, "credential": {}}


def test_azure_identity_takes_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """The options are ones ``DefaultAzureCredential`` accepts; the broker's chain has no environment
    credential even when the executor's service principal is in the environment."""
    for name, value in {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": EXEC_CLIENT, "AZURE_CLIENT_SECRET": "s"}.items():
        monkeypatch.setenv(name, value)
    chains = {}
    for identity in (WIRING.executor, WIRING.broker):
        assert identity is not None
        credential = IdentityCredential(identity=identity, cloud=GOV)()
        assert type(credential).__name__ == "DefaultAzureCredential"
        chains[identity.role] = [type(c).__name__ for c in credential.credentials]
    assert "EnvironmentCredential" in chains["executor"]
    assert "EnvironmentCredential" not in chains["broker"]
    assert "ManagedIdentityCredential" in chains["broker"]


def test_building_the_wiring_imports_no_sdk() -> None:
    code = ("import sys\n"
            "from remediator.azure.credentials import Cloud, Identity, Wiring\n"
            "w = Wiring(cloud=Cloud(), executor=Identity(role='executor'), broker=Identity(role='broker'))\n"
            "w.executor_clients(); w.broker_clients()\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith(('azure.identity', 'azure.mgmt')))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert proc.stdout.strip() == ""


def test_clients_not_built_by_a_wiring_describe_endpoint_and_scopes() -> None:
    with FakeArm() as arm:
        assert describe(arm.clients()) == {"endpoint": arm.base_url, "scopes": [arm.base_url + "/.default"]}
    assert describe(None) is None


class _Inner:
    def __init__(self, token: str, *, info: bool) -> None:
        self.token, self.calls, self.closed = token, 0, False
        if info:
            self.get_token_info = self._info

    def _info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo(self.token, 10_000)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, 10_000)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("info", [True, False])
def test_fresh_token_credential(info: bool) -> None:
    made: list[_Inner] = []

    def factory() -> _Inner:
        made.append(_Inner(f"t{len(made) + 1}", info=info))
        return made[-1]

    cred = FreshTokenCredential(factory, clock=lambda: 1_000.0)
    first = cred.get_token("scope/.default")
    assert (first.token, first.expires_on) == ("t1", 1_030)  # handed off as short-lived
    assert cred.get_token_info("scope/.default").token == "t1"
    assert (len(made), made[0].calls) == (1, 1)  # cached by the wrapper
    cred.refresh()
    assert made[0].closed
    assert cred.get_token("scope/.default").token == "t2"
    assert len(made) == 2
    assert cred.refreshes == 1
    with pytest.raises(ConfigError):
        FreshTokenCredential(factory, handoff=300)


