# ruff: noqa: E501  (the estate's documents are data literals)
"""A FakeArm estate for the backlog benchmarks, served from a child process.

The fake runs in its own process so that the peak RSS measured in the benchmark is remediator's
(the scan, the store, the planner), not the fake's copy of the estate. The parent talks to it only
over HTTP, through the real SDK clients, and asks it for counters through a pipe.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _util import ensure_repo_on_path

ensure_repo_on_path()

PUBLIC_KEY = "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6"  # storage-disable-public-blob-access
NETWORK_KEY = "45d313c3-3fca-5040-035f-d61928366d31"  # storage-restrict-network-access
PUBLIC_POLICY = "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751"


def subscriptions(n: int) -> list[str]:
    return [f"{i + 1:08x}-0000-4000-8000-00000000b10c" for i in range(n)]


def account_id(sub: str, i: int) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg-data-{i % 10}/providers/Microsoft.Storage/storageAccounts/st{i:05d}"


def account(sub: str, i: int) -> dict[str, Any]:
    rid = account_id(sub, i)
    return {"id": rid, "name": rid.rsplit("/", 1)[1], "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
            "kind": "StorageV2", "sku": {"name": "Standard_LRS", "tier": "Standard"}, "tags": {"team": f"t{i % 7}"},
            "properties": {"allowBlobPublicAccess": True, "minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True,
                           "publicNetworkAccess": "Enabled", "provisioningState": "Succeeded",
                           "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [],
                                           "virtualNetworkRules": []}}}


def findings(sub: str, i: int) -> list[dict[str, Any]]:
    """Five open findings on one account: two assessments, a policy state and two alerts."""
    rid = account_id(sub, i)
    date = "2026-11-01T08:00:00Z"
    out: list[dict[str, Any]] = []
    for key in (PUBLIC_KEY, NETWORK_KEY):
        out.append({"id": f"{rid}/providers/Microsoft.Security/assessments/{key}", "name": key,
                    "type": "Microsoft.Security/assessments",
                    "properties": {"resourceDetails": {"source": "Azure", "id": rid}, "displayName": key,
                                   "status": {"code": "Unhealthy", "statusChangeDate": date, "firstEvaluationDate": date},
                                   "metadata": {"severity": "High", "displayName": key}}})
    out.append({"id": f"{rid}/providers/Microsoft.PolicyInsights/policyStates/{i:032x}", "name": f"{i:032x}",
                "type": "Microsoft.PolicyInsights/policyStates",
                "properties": {"complianceState": "NonCompliant", "resourceId": rid, "timestamp": date,
                               "policyDefinitionId": f"/providers/Microsoft.Authorization/policyDefinitions/{PUBLIC_POLICY}",
                               "policyAssignmentId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                                                     "policyAssignments/storage-baseline"}})
    rg = rid.split("/")[4]
    for n, alert_type in enumerate(("Storage.Blob_OpenACL", "Storage.Blob_AnonymousAccessAnomaly")):
        name = f"2517{i:010d}{n}_{sub[:8]}"
        out.append({"id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Security/locations/westeurope/"
                          f"alerts/{name}", "name": name, "type": "Microsoft.Security/Locations/alerts",
                    "properties": {"alertType": alert_type, "systemAlertId": name, "status": "Active",
                                   "severity": "High", "alertDisplayName": alert_type,
                                   "resourceIdentifiers": [{"type": "AzureResource", "azureResourceId": rid}]}})
    return out


def _serve(conn: Any, docs_per_sub: int, subs: list[str], latency: float, quota: int | None) -> None:
    from remediator.testing import FakeArm

    arm = FakeArm(latency=latency)
    for sub in subs:
        arm.add_subscription(sub)
        for i in range(docs_per_sub):
            arm.add(account(sub, i))
            for doc in findings(sub, i):
                arm.add(doc)
    if quota:
        arm.graph_quota(quota, window=5.0)
    with arm:
        conn.send(arm.base_url)
        while True:
            cmd, arg = conn.recv()
            if cmd == "stop":
                break
            if cmd == "latency":
                arm.latency = float(arg)
                conn.send(None)
            elif cmd == "throttle":
                arm.throttle(arg[0], retry_after=arg[1], methods=("PATCH",))
                conn.send(None)
            elif cmd == "reset":
                arm.reset_log()
                conn.send(None)
            elif cmd == "stats":
                reqs = arm.requests
                patches: dict[str, int] = {}
                for r in reqs:
                    if r.method == "PATCH" and r.status == 200:
                        patches[r.path.lower()] = patches.get(r.path.lower(), 0) + 1
                conn.send({"requests": len(reqs), "graph": len(arm.graph_requests),
                           "gets": sum(1 for r in reqs if r.method == "GET"),
                           "per_subscription": arm.calls_per_subscription(), "throttle": arm.throttle_stats,
                           "patches": patches,
                           "injected_by_sub": arm.injected_by_subscription})


class Estate:
    def __init__(self, conn: Any, base_url: str) -> None:
        self.conn = conn
        self.base_url = base_url

    def call(self, cmd: str, arg: Any = None) -> Any:
        self.conn.send((cmd, arg))
        return self.conn.recv()

    def clients(self, *, concurrency: int = 8) -> Any:
        from remediator.azure.clients import ArmClients
        from remediator.testing.auth import FAKE_TOKEN, FakeCredential, StaticAuthPolicy

        return ArmClients(FakeCredential(FAKE_TOKEN), base_url=self.base_url, concurrency=concurrency,
                          authentication_policy=StaticAuthPolicy(FAKE_TOKEN), retry_total=0, polling_interval=0)


@contextmanager
def estate(*, subs: list[str], per_sub: int, latency: float, quota: int | None = 15) -> Iterator[Estate]:
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_serve, args=(child, per_sub, subs, latency, quota), daemon=True)
    proc.start()
    try:
        yield Estate(parent, parent.recv())
    finally:
        parent.send(("stop", None))
        proc.join(timeout=10)
