"""Every entry point acts in Azure as the same identities in the same cloud, for the same settings.

``doctor``, ``serve`` (``build_slack_engine``, HTTP and Socket Mode), the Functions app, ``plan``
and ``scan`` (live reads) and ``report --policy-snapshot`` are each run through their own code path
with one set of settings for a sovereign cloud (Azure Government: ``login.microsoftonline.us`` and
``management.usgovcloudapi.net``). Each path logs the Azure clients it builds
(``remediator.azure.credentials``); the test compares what they built. azure.identity is limited
to its environment credential (``AZURE_TOKEN_CREDENTIALS``) with no secret, so a token request
fails at once and nothing leaves the machine: the commands that read Azure report that failure,
which the test expects.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from remediator.app.cli import main
from remediator.app.paths import SAMPLES, SHIPPED_PLAYBOOKS
from remediator.app.wiring import azure_wiring, build_engine, build_slack_engine
from remediator.azure.credentials import describe
from remediator.config.settings import Settings, load_settings
from remediator.testing import FakeSlack
from tests.support.engine import ROLES, ROLES_ENV

GOV_ARM = "https://management.usgovcloudapi.net"
GOV_LOGIN = "https://login.microsoftonline.us"
EXEC_CLIENT = "0d4c5b6a-7e8f-4a9b-8c1d-2e3f4a5b6c7d"  # AZURE_CLIENT_ID: the executor's managed identity
BROKER_CLIENT = "1e5d6c7b-8f9a-4b0c-9d2e-3f4a5b6c7d8e"
EXECUTOR_PRINCIPAL = "5f0c2a4e-8b1d-4e3f-a6c7-0d9e8f7a6b5c"
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
CLOUD = {"endpoint": GOV_ARM, "scopes": [GOV_ARM + "/.default"]}
EXECUTOR = {**CLOUD, "role": "executor", "client_id": EXEC_CLIENT,
            "credential": {"authority": GOV_LOGIN, "managed_identity_client_id": EXEC_CLIENT}}
BROKER = {**CLOUD, "role": "broker", "client_id": BROKER_CLIENT,
          "credential": {"authority": GOV_LOGIN, "managed_identity_client_id": BROKER_CLIENT,
                         "exclude_environment_credential": True}}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The process environment of a sovereign deployment (Slack on FakeSlack, SQLite)."""
    for name in list(os.environ):
        if name.startswith(("REMEDIATOR_", "SLACK_", "AZURE_")):
            monkeypatch.delenv(name)
    with FakeSlack() as slack:
        values = {
            "REMEDIATOR_ARM_ENDPOINT": GOV_ARM, "REMEDIATOR_AUTHORITY_HOST": GOV_LOGIN,
            "AZURE_CLIENT_ID": EXEC_CLIENT, "REMEDIATOR_BROKER_CLIENT_ID": BROKER_CLIENT,
            "REMEDIATOR_ELEVATION": "pim-assign", "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": EXECUTOR_PRINCIPAL,
            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}",
            "REMEDIATOR_PLAYBOOKS_DIR": str(SHIPPED_PLAYBOOKS), "REMEDIATOR_APPROVER_ROLES": ROLES_ENV,
            "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_APP_TOKEN": "xapp-1-fake", "REMEDIATOR_SLACK_CHANNEL": "C0REMEDIATE",
            "REMEDIATOR_SLACK_API_URL": slack.base_url,
            "AZURE_TOKEN_CREDENTIALS": "environmentcredential",  # no secret: every token request fails at once
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        yield values


def built(caplog: pytest.LogCaptureFixture, run: Callable[[], Any]) -> dict[str, dict[str, Any]]:
    """Run an entry point; the Azure clients it built, by role (each role built once)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="remediator.azure.credentials"):
        run()
    described = [r.azure for r in caplog.records if hasattr(r, "azure")]
    by_role = {d["role"]: d for d in described}
    assert len(by_role) == len(described), described
    return by_role


def _close(engine: Any) -> None:
    close = getattr(engine.store, "close", None)
    if callable(close):
        close()


def test_every_entry_point_builds_the_same_wiring(env: dict[str, str], tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from function_app.runtime import Overrides, Runtime

    out = io.StringIO()
    finding = str(SAMPLES / "findings" / "01-storage-open-container-alert.json")

    def doctor() -> None:
        assert main(["doctor"], out=out) == 1  # ARM does not answer: no token here
        assert "FAIL  arm (executor): https://management.usgovcloudapi.net: " in out.getvalue()

    def serve() -> None:  # what `remediator serve` (HTTP and --socket) builds before it listens
        _close(build_slack_engine(load_settings()))

    def functions() -> None:
        runtime = Runtime(Overrides(env=dict(os.environ)))
        _close(runtime.engine())

    def plan() -> None:
        assert main(["plan", finding, "--output", "json"], out=out) == 1  # the live read fails: no token

    def scan() -> None:
        assert main(["scan", "--dry-run", "--subscription", SUB], out=out) == 1

    def report() -> None:
        main(["report", "--period", "2026-Q1", "--format", "json", "--policy-snapshot", "--out",
              str(tmp_path / "report.json")], out=out)
        assert "policy_compliance" in (tmp_path / "report.json").read_text(encoding="utf-8")

    with_broker = {"doctor": doctor, "serve": serve, "functions": functions}
    reading = {"plan": plan, "scan": scan, "report": report}
    for name, run in with_broker.items():
        assert built(caplog, run) == {"executor": EXECUTOR, "broker": BROKER}, name
    for name, run in reading.items():
        assert built(caplog, run) == {"executor": EXECUTOR}, name  # live reads act as the executor alone


def test_the_executor_and_broker_are_distinct_identities_of_one_cloud(env: dict[str, str]) -> None:
    wiring = azure_wiring(load_settings())
    assert wiring.broker is not None
    assert (wiring.executor.client_id, wiring.broker.client_id) == (EXEC_CLIENT, BROKER_CLIENT)
    assert describe(wiring.executor_clients()) == EXECUTOR
    assert describe(wiring.broker_clients()) == BROKER


def test_only_pim_assign_has_a_broker_and_the_arm_endpoint_can_be_overridden(env: dict[str, str],
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    for elevation in ("standing", "pim-activate"):
        settings = Settings(elevation=elevation, executor_principal_id=EXECUTOR_PRINCIPAL, arm_endpoint=GOV_ARM,
                            authority_host=GOV_LOGIN, broker_client_id=BROKER_CLIENT,
                            playbooks_dir=SHIPPED_PLAYBOOKS, store_url=env["REMEDIATOR_STORE_URL"],
                            approver_roles=ROLES)
        assert azure_wiring(settings).broker is None
        assert built(caplog, lambda s=settings: _close(build_engine(s))) == {"executor": EXECUTOR}, elevation
    other = "https://management.chinacloudapi.cn"  # --arm-endpoint wins over REMEDIATOR_ARM_ENDPOINT; the rest stays
    finding = str(SAMPLES / "findings" / "01-storage-open-container-alert.json")
    got = built(caplog, lambda: main(["plan", finding, "--arm-endpoint", other + "/"], out=io.StringIO()))
    assert got == {"executor": {**EXECUTOR, "endpoint": other, "scopes": [other + "/.default"]}}


def test_one_module_builds_credentials_and_clients() -> None:
    """azure.identity is imported, and ``ArmClients`` constructed, only in ``remediator.azure.credentials``
    (and by the test doubles in ``remediator.testing``): no entry point can build its own ARM
    credential. The one other credential is the store's Entra connection to Table and Queue
    Storage (``REMEDIATOR_STORAGE_CONNECTION__*``: the Functions host's storage identity, not ARM)."""
    import ast

    from tests.conftest import ROOT

    credentials = []
    constructions = []
    for package in ("remediator", "bot", "function_app"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                    [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if any(n.startswith("azure.identity") for n in names):
                    credentials.append(rel)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ArmClients" \
                        and not rel.startswith("remediator/testing/"):
                    constructions.append(rel)
    assert credentials == ["remediator/azure/credentials.py", "remediator/store/azure.py"]
    assert constructions == ["remediator/azure/credentials.py"]


def test_the_graph_endpoint_setting_reaches_the_clients_graph_writes_use(env: dict[str, str]) -> None:
    # the app-role removal writes through ArmClients.msgraph(): a sovereign deployment's graph_endpoint holds
    # there too, and "off" (names off) leaves the cloud's own endpoint for the writes a playbook asks for
    gov_graph = "https://dod-graph.microsoft.us"
    wiring = azure_wiring(replace(load_settings(), graph_endpoint=gov_graph + "/"))
    assert wiring.executor_clients().msgraph().endpoint == gov_graph
    off = azure_wiring(replace(load_settings(), graph_endpoint="off"))
    assert off.executor_clients().msgraph().endpoint == "https://graph.microsoft.us"
