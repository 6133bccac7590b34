"""remediator's own deployment passes remediator's own playbooks.

The resources infra/main.bicep declares (its private variant: every parameter at its default) are
rendered as ARM documents from the parsed template (``tests.infra.bicep``) and served as saved,
offline state. For every shipped playbook in playbooks/ (whatever is there) and every rendered
resource of a type the playbook could claim, a finding is synthesised for each way the playbook
matches: each recommendation key, each alert type (globs filled in), each Azure Policy id and each
watched ARM write operation, as
Defender or Policy would report it on that resource. Each goes through the planner with that
playbook alone: nothing may be planned (``no_changes``), and every resource type some playbook
claims must have been evaluated by at least one playbook.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.azure.state import SavedState
from remediator.findings.model import Finding, Severity
from remediator.planning.planner import Planner
from remediator.playbooks import Playbook, PlaybookSet, load_playbooks
from remediator.playbooks.match import mismatch
from tests.conftest import ROOT
from tests.infra.bicep import RESOURCE_GROUP, SUBSCRIPTION, Template

PLAYBOOKS = load_playbooks(ROOT / "playbooks")

# Where the deployment departs from a shipped playbook on purpose, and why (as its checkov skips do):
# (playbook, resource type) -> reason.
DELIBERATE: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        (("diagnostics-audit-logs-to-storage", "microsoft.keyvault/vaults"),
         ("diagnostics-audit-logs-to-event-hub", "microsoft.keyvault/vaults"),
         *((p, t) for p in ("diagnostics-all-logs-to-storage", "diagnostics-all-logs-to-event-hub")
           for t in ("microsoft.network/networksecuritygroups", "microsoft.network/virtualnetworks"))),
        "remediator keeps its own resource logs in its own Log Analytics workspace; an archive account or an Event "
        "Hub stream is a deployment's choice (diagnosticsStorageAccountId, diagnosticsEventHubAuthorizationRuleId "
        "empty: those playbooks refuse, naming the setting)"),
    ("web-disable-public-network-access", "microsoft.web/sites"):
        "Slack and Logic Apps must reach the app; neither can use a private endpoint (CKV_AZURE_222 in main.bicep)",
    ("private-link", "microsoft.web/sites"):
        "the app's private endpoint would close it: Slack and Logic Apps must reach it publicly (CKV_AZURE_222)",
    ("web-require-client-certificates", "microsoft.web/sites"):
        "Slack and Logic Apps send no client certificate (CKV_AZURE_17 in main.bicep)",
    ("web-route-outbound-through-vnet", "microsoft.web/sites"):
        "a Flex Consumption app with virtual network integration sends all outbound traffic through it; the "
        "site's vnetRouteAllEnabled is not what decides",
    ("web-route-configuration-through-vnet", "microsoft.web/sites"):
        "Flex Consumption reaches its deployment storage with the identity over the private endpoint; there is "
        "no content share or image pull to route",
    ("web-enable-end-to-end-encryption", "microsoft.web/sites"):
        "end-to-end TLS to workers is a feature of Premium and dedicated plans, not Flex Consumption",
    ("web-disable-ssh", "microsoft.web/sites"): "a Flex Consumption app has no SSH console to turn off",
    ("storage-allow-trusted-services", "microsoft.storage/storageaccounts"):
        "stricter on purpose: bypass None, nothing but the app's private endpoints reaches the store",
}


def private_variant() -> list[dict[str, Any]]:
    """The documents as ARM returns them once deployed: each target of the template's private endpoints shows
    its Approved connection (ARM adds it when the endpoint is created; the deployment holds the targets' rights,
    so it is auto-approved), which the template itself does not declare."""
    docs = Template(ROOT / "infra" / "main.bicep").documents()
    by_id = {ids.key(str(d["id"])): d for d in docs}
    for pe in (d for d in docs if ids.type_key(d["type"]) == "microsoft.network/privateendpoints"):
        for conn in (pe.get("properties") or {}).get("privateLinkServiceConnections") or []:
            target = by_id.get(ids.key(str((conn.get("properties") or {}).get("privateLinkServiceId") or "")))
            if target is None:
                continue
            target.setdefault("properties", {}).setdefault("privateEndpointConnections", []).append({
                "id": f"{target['id']}/privateEndpointConnections/{pe['name']}", "name": pe["name"],
                "properties": {"privateEndpoint": {"id": pe["id"]}, "groupIds": conn["properties"].get("groupIds"),
                               "privateLinkServiceConnectionState": {"status": "Approved",
                                                                     "description": "Auto-Approved"}}})
    return docs


def deployed_settings() -> dict[str, Any]:
    """The settings the plans read, as the template sets them (where resource logs go: its own workspace)."""
    app = Template(ROOT / "infra" / "main.bicep").var("appSettings")
    return {"diagnostics_workspace_id": app["REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID"] or None,
            "diagnostics_storage_account_id": app["REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID"] or None}


def findings_for(playbook: Playbook, doc: dict[str, Any]) -> Iterator[Finding]:
    """Every finding by which ``playbook`` could claim ``doc``: one per key, alert type and policy."""
    rid = str(doc["id"])
    base: dict[str, Any] = {
        "title": f"synthesised for {playbook.name}", "severity": Severity.HIGH, "status": "Unhealthy",
        "resource_id": rid, "subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
        "resource_type": ids.resource_type(rid), "source": "own-medicine",
    }
    spec = playbook.match
    for key in spec.recommendations:
        yield Finding(id=f"rec:{key}:{rid}", kind="recommendation", type=key, **base)
    for glob in spec.alerts:
        alert = glob.replace("*", "X").replace("?", "X")
        yield Finding(id=f"alert:{alert}:{rid}", kind="alert", type=alert, **base)
    for ref in spec.policies:
        guid = ref.rsplit("/", 1)[-1]
        yield Finding(id=f"policy:{guid}:{rid}", kind="policy", type=guid, **base,
                      policy_definition_id=f"/providers/Microsoft.Authorization/policyDefinitions/{guid}")
    for operation in spec.operations:
        yield Finding(id=f"operation:{operation}:{rid}", kind="operation", type=operation, **base)


def test_each_deliberate_departure_names_a_shipped_playbook_and_a_claimed_type() -> None:
    by_name = {p.name: p for p in PLAYBOOKS}
    for (name, rtype), reason in DELIBERATE.items():
        assert name in by_name, f"{name}: no such shipped playbook; remove it from DELIBERATE"
        assert rtype in by_name[name].match.resource_types, (name, rtype)
        assert reason.strip()


def test_the_template_renders_resources_of_the_claimed_types() -> None:
    """Not vacuous: the playbooks' resource types that the template declares are there to check."""
    types = {ids.type_key(d["type"]) for d in private_variant()}
    assert "microsoft.storage/storageaccounts" in types
    assert "microsoft.network/networksecuritygroups" in types
    claimed = {t for p in PLAYBOOKS for t in p.match.resource_types}
    assert types & claimed, "no shipped playbook claims any resource type of the template"


def test_no_shipped_playbook_plans_a_change_to_remediators_own_resources() -> None:
    docs = private_variant()
    state = SavedState(docs)
    evaluated: dict[str, set[str]] = defaultdict(set)  # resource type -> playbooks evaluated on it
    claimable: set[str] = set()
    problems: list[str] = []
    settings = deployed_settings()
    for playbook in PLAYBOOKS:
        planner = Planner(playbooks=PlaybookSet([playbook]), state=state, settings=settings)
        for doc in docs:
            rtype = ids.type_key(doc["type"])
            if rtype not in playbook.match.resource_types or (playbook.name, rtype) in DELIBERATE:
                continue
            claimable.add(rtype)
            for finding in findings_for(playbook, doc):
                tags = {str(k): str(v) for k, v in (doc.get("tags") or {}).items()}
                if mismatch(playbook.match, finding, tags) is not None:
                    continue  # e.g. a tag condition of the playbook excludes this resource
                result = planner.plan_one(finding)
                evaluated[rtype].add(playbook.name)
                if result.outcome != "no_changes":
                    problems.append(f"{playbook.name} on {doc['type']} {doc['name']} ({finding.kind} "
                                    f"{finding.type}): {result.outcome}: {result.reason}; "
                                    f"{[c.to_json() for c in result.changes]}")
    assert problems == []
    assert claimable, "no playbook could claim any of the template's resources"
    assert {t for t in claimable if not evaluated[t]} == set()


@pytest.mark.parametrize("variant", [{"publicTrial": True}])
def test_the_public_trial_variant_is_what_the_playbooks_would_fix(variant: dict[str, Any]) -> None:
    """The check can fail: the PUBLIC TRIAL variant's storage account is open to public networks,
    and the shipped network playbook plans to close it."""
    docs = Template(ROOT / "infra" / "main.bicep", variant).documents()
    storage = next(d for d in docs if d["type"] == "Microsoft.Storage/storageAccounts")
    playbook = PLAYBOOKS.get("storage-restrict-network-access")
    assert playbook is not None
    planner = Planner(playbooks=PlaybookSet([playbook]), state=SavedState(docs))
    results = [planner.plan_one(f) for f in findings_for(playbook, storage)]
    assert results
    assert {r.outcome for r in results} == {"changes"}


def test_findings_cover_every_way_a_playbook_matches() -> None:
    doc = {"id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                 "Microsoft.Storage/storageAccounts/x", "name": "x", "type": "Microsoft.Storage/storageAccounts"}
    for playbook in PLAYBOOKS:
        spec = playbook.match
        made = list(findings_for(playbook, doc))
        assert len(made) == len(spec.recommendations) + len(spec.alerts) + len(spec.policies) + len(spec.operations)


def test_playbooks_dir_is_the_shipped_one() -> None:
    assert Path(ROOT / "playbooks").is_dir()
    assert len(PLAYBOOKS) == len(list((ROOT / "playbooks").glob("*.yaml")))
