"""The shipped playbooks against Azure Policy's catalog (remediator/playbooks/policy-catalog.tsv, a copy of the
project's reference table: Azure/azure-policy built-in-policies/policyDefinitions at f4a50bac).

* Every class a, b0 and b definition is claimed by a shipped playbook, or listed in ``UNCLAIMED`` with the
  reason; the counts per class are in the failure message.
* A claimed definition's resource types are each claimed for it (a playbook that lists the id drops no finding
  of a type the definition targets), or listed in ``TYPES_LEFT_OUT`` with the reason.
* Where a claimed definition's effect can be Modify, the claiming playbook's step, planned on the spec-example
  document of its contract case (tests/support/contract.py), sets each property the Modify operations name to
  the same value (Azure Policy compares case-insensitively), and a second plan on the fixed document plans
  nothing.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.actions.properties import get_path
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.playbooks import load_playbooks
from tests.support.builders import make_finding
from tests.support.contract import CASES, approved_endpoint
from tests.support.live import live_documents

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "remediator" / "playbooks" / "policy-catalog.tsv"
FIXABLE = ("a", "b0", "b")

_NO_ROLE = ("no built-in role narrower than Contributor writes {what}, and remediator never grants Contributor "
            "(tests/actions/test_registry.py, TOO_BROAD): it needs a custom role, which remediator does not model")
_SYNAPSE = _NO_ROLE.format(what="Synapse workspaces or their settings")
_CLASSIC_NSG = ("Microsoft.ClassicNetwork/networkSecurityGroups is the classic (ASM) provider: it has no REST API "
                "spec in Azure/azure-rest-api-specs (no stable version to read the resource with), and classic "
                "networking was retired with Cloud Services (classic) and classic VMs; the ARM network security "
                "group definitions of the same families are claimed")
_SCOPE_POOLS = ("Microsoft.Synapse/workspaces/scopePools has no REST API spec in Azure/azure-rest-api-specs (the "
                "Synapse specs define bigDataPools, kustoPools and sqlPools): no documented version to read it with; "
                "the other Synapse pools' definitions are claimed")

# Definitions of class a, b0 or b that no shipped playbook claims, and why. (The catalog's class is a guide;
# where the definition file says otherwise, the reason says so.)
UNCLAIMED: dict[str, str] = {
    "1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d": "soft delete only: keyvault.enable-purge-protection would also turn on "
        "purge protection, which is irreversible; soft delete is on by default and cannot be turned off since 2020",
    "8426280e-b5be-43d9-979e-653d12a08638": "its Modify sets networkAccessPolicy AllowPrivate with a deployment's "
        "diskAccessId parameter; disks.restrict-network-access sets DenyAll (also compliant with 8405fdab) - not "
        "the same value, so left to the Modify-definition engine (issue 20 part 2)",
    "2158ddbe-fefa-408e-b43f-d4faef8ff3b8": "class b in the catalog, but the definition reads the workspace's "
        "azureADOnlyAuthentication, set at creation (an existing workspace changes the azureADOnlyAuthentications "
        "child, 6ea81a52); and as for every Synapse definition: " + _NO_ROLE.format(what="Synapse workspaces"),
    "c3624673-d2ff-48e0-b28c-5de1c6767c3c": "Modify twin of 2158ddbe: applies to the create request (see there)",
    "38d8df46-cf4e-4073-8e03-48c24b29de0d": _SYNAPSE,
    "5c8cad01-ef30-4891-b230-652dadb4876a": _SYNAPSE,
    "6ea81a52-5ca7-4575-9669-eaa910b7edf8": _SYNAPSE,
    "738949be-6fd2-46b9-b969-99b53712b192": _SYNAPSE,
    "cb3738a6-82a2-4a18-b87b-15217b9deff4": _SYNAPSE,
    "8b5c654c-fb07-471b-aa8f-15fea733f140": _SYNAPSE,
    "0e7849de-b939-4c50-ab48-fc6b0f5eeba2": _NO_ROLE.format(what="Databricks workspaces"),
    "51c1490f-3319-459c-bbbc-7f391bbed753": _NO_ROLE.format(what="Databricks workspaces"),
    "817dcf37-e83d-4999-a472-644eada2ea1e": _NO_ROLE.format(what="App Service Environments (Website Contributor "
                                                                 "covers sites only)"),
    "d6545c6b-dd9d-4265-91e6-0b451e2f1c50": _NO_ROLE.format(what="App Service Environments"),
    "fb74e86f-d351-4b8d-b034-93da7391c01f": _NO_ROLE.format(what="App Service Environments"),
    "21a8cd35-125e-4d13-b82d-2e19b7208bb7": _NO_ROLE.format(
        what="Storage Sync services (Azure File Sync Administrator also assigns roles and reads account keys)"),
    "0e07b2e9-6cd9-4c40-9ccb-52817b95133b": _NO_ROLE.format(what="Storage Sync services"),
    "564feb30-bf6a-4854-b4bb-0d2d2d1e6c66": "class c, not b: enabling WAF on an Application Gateway attaches a WAF "
        "policy resource (firewallPolicy) and needs the WAF_v2 SKU, a cost-bearing SKU change - more than a property",
    "e413671a-dd10-4cc1-a943-45b598596cb7": "class d, not b: v1LegacyMode true turns the workspace back to the v1 "
        "network isolation model and blocks v2 features (managed networks among them) - a choice for old SDK v1 "
        "estates, not a fix; ml-isolate-managed-network is the fix the mission wants",
    "679ddf89-ab8f-48a5-9029-e76054077449": "not a property write: a compute instance's idle shutdown is set by the "
        "POST updateIdleShutdownSetting action (Compute_UpdateIdleShutdownSetting), a special case not built here",
    "32395e13-9837-458f-936d-4b21b1e37694": "Microsoft.FileShares is a preview resource provider (only -preview API "
        "versions in the specs); not pinned in a shipped playbook",
    "edfb40e6-36fe-4928-96e9-e921bc7dfc70": "Microsoft.FileShares: as 32395e13",
    "ddcf4b94-9dfa-4a80-aca6-22bb654fde72": "Azure NetApp Files volumes: not built in this pass (a Volumes_Update "
        "PATCH of smbEncryption; the capacity pool's volumes are outside the AI estate's usual types)",
    "5dc99dae-cfb2-42cc-8762-9aae02b74e27": "preview: securityProfile.imageIntegrity exists only in preview AKS API "
        "versions, and needs Azure Policy image-integrity definitions assigned as well",
    # class c, the diagnostic-setting definitions (test_every_diagnostic_setting_definition_is_claimed_or_excused)
    "087dbf66-448d-4235-b7b8-17af48edc9db": _CLASSIC_NSG,
    "6f7fa8b1-4456-4d4c-94c2-1f1651b18235": _CLASSIC_NSG,
    "6308bf75-8340-4bab-b2ec-2f5000697af4": _CLASSIC_NSG,
    "f018b68f-d953-4238-81a3-94a0f39507e3": _SCOPE_POOLS,
    "9dbcaaa7-0c1b-4861-81c2-d340661b4382": _SCOPE_POOLS,
    "a12e0815-0735-48d9-b5b3-8a3b60a85b86": _SCOPE_POOLS,
}

# (definition, resource type) pairs a claiming playbook leaves out, and why.
_CMK = "702dd420-7fcc-42c5-afe8-4026edd20fe0"
TYPES_LEFT_OUT: dict[tuple[str, str], str] = {
    (_CMK, "Microsoft.Compute/virtualMachineScaleSets"): "a scale set's disks follow its model: changing their key is "
        "a model update and a reimage of every instance (a rollout), not a property write",
    (_CMK, "Microsoft.Compute/images"): "an image is immutable: it is re-created from an encrypted source",
    (_CMK, "Microsoft.Compute/galleries/images/versions"): "an image version is immutable: it is re-published with "
        "a disk encryption set per region",
    ("22730e10-96f6-4aac-ad84-9383d35b5917", "Microsoft.ClassicCompute/virtualMachines"):
        "classic VMs have no NSG to edit through ARM; retired by Azure",
    ("9daedab3-fb2d-461e-b861-71790eead4f6", "Microsoft.ClassicCompute/virtualMachines"):
        "classic VMs have no NSG to edit through ARM; retired by Azure",
}

# Claimed Modify definitions whose operation the generic check below cannot replay, and why.
MODIFY_NOT_REPLAYED: dict[str, str] = {}


def _rows() -> list[dict[str, str]]:
    """The fixable rows, and the diagnostic-setting rows (class c, made by one action)."""
    with CATALOG.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f, delimiter="\t")
                if r["class"] in FIXABLE or r["note"] == "diagnostic setting (child resource)"]


def _claims() -> dict[str, list[Any]]:
    """Definition GUID -> the shipped playbooks listing it."""
    out: dict[str, list[Any]] = {}
    for pb in load_playbooks(ROOT / "playbooks"):
        for ref in pb.match.policies:
            out.setdefault(ref.rsplit("/", 1)[-1].lower(), []).append(pb)
    return out


def test_every_fixable_catalog_definition_is_claimed_or_excused() -> None:
    rows, claims = _rows(), _claims()
    claimed = Counter(r["class"] for r in rows if r["id"] in claims)
    total = Counter(r["class"] for r in rows)
    missing = [f'{r["class"]} {r["id"]} {r["displayName"]}' for r in rows
               if r["id"] not in claims and r["id"] not in UNCLAIMED]
    counts = ", ".join(f"{k}: {claimed[k]}/{total[k]}" for k in FIXABLE)
    assert not missing, f"claimed {counts}; neither claimed nor in UNCLAIMED:\n" + "\n".join(missing)
    stale = sorted(set(UNCLAIMED) & set(claims))
    assert not stale, f"claimed now, remove from UNCLAIMED: {stale}"
    assert all(reason.strip() for reason in UNCLAIMED.values())
    assert sum(claimed.values()) + len(set(UNCLAIMED) & {r["id"] for r in rows}) == len(rows), counts


DIAGNOSTIC_NOTE = "diagnostic setting (child resource)"


def test_every_diagnostic_setting_definition_is_claimed_or_excused() -> None:
    """Class c, but one action makes every one of them (monitor.enable-diagnostic-logs): the catalog's
    diagnostic-setting definitions are claimed by a shipped playbook, or in ``UNCLAIMED`` with the reason."""
    with CATALOG.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["note"] == DIAGNOSTIC_NOTE]
    claims = _claims()
    missing = [f'{r["id"]} {r["displayName"]}' for r in rows if r["id"] not in claims and r["id"] not in UNCLAIMED]
    assert not missing, "neither claimed nor in UNCLAIMED:\n" + "\n".join(missing)
    assert not sorted(set(UNCLAIMED) & set(claims))
    steps = {s.action for r in rows for pb in claims.get(r["id"], []) for s in pb.steps}
    assert steps == {"monitor.enable-diagnostic-logs"}
    assert sum(r["id"] in claims for r in rows) == len(rows) - 6, "six excused: classic NSGs and Synapse scope pools"


def test_a_claimed_definition_drops_none_of_its_resource_types() -> None:
    claims = _claims()
    dropped = []
    for row in _rows():
        playbooks = claims.get(row["id"], [])
        if not playbooks:
            continue
        handled = {t for pb in playbooks for t in pb.match.resource_types}
        for rtype in (t.strip() for t in row["resource_types"].split(",") if t.strip()):
            if ids.type_key(rtype) not in handled and (row["id"], rtype) not in TYPES_LEFT_OUT:
                dropped.append(f'{row["id"]} ({row["displayName"]}): {rtype} not in {[p.name for p in playbooks]}')
    assert not dropped, "\n".join(dropped)


def _modify_rows() -> list[Any]:
    claims = _claims()
    return [pytest.param(r, id=r["id"][:8]) for r in _rows() if r["modify_ops"] and r["id"] in claims
            and r["id"] not in MODIFY_NOT_REPLAYED]


def _path(alias: str, resource_types: list[str]) -> str:
    """An alias as a document path: ``<type>/<a.b>`` -> ``properties.a.b`` (the longest type that prefixes it)."""
    for rtype in sorted(resource_types, key=len, reverse=True):
        if alias.lower().startswith(rtype.lower() + "/"):
            return "properties." + alias[len(rtype) + 1:]
    raise AssertionError(f"alias {alias} names none of {resource_types}")


def _same(have: Any, want: Any) -> bool:
    if isinstance(have, str) and isinstance(want, str):
        return have.lower() == want.lower()
    return bool(have == want)


def _value(text: str) -> Any:
    return {"true": True, "false": False, "none": None}.get(text.strip().lower(), text.strip())


@pytest.mark.parametrize("row", _modify_rows())
def test_the_plan_sets_what_the_modify_definition_sets(row: Mapping[str, str]) -> None:
    playbook = _claims()[row["id"]][0]
    for step in playbook.steps:
        action = REGISTRY[step.action]
        case = CASES[step.action]
        docs = case.docs()
        params = dict(step.params or {})
        if params.get("mode") == "private-endpoint" or params.get("refuse_if_everyone_cut_off"):
            for doc in docs:  # the playbook closes public access behind private endpoints: the resource has one
                if ids.key(doc["id"]) == ids.key(case.target):
                    doc["properties"]["privateEndpointConnections"] = [approved_endpoint()]
        state = SavedState(docs)
        ctx = PlanContext(finding=make_finding(case.target, kind="policy", type=row["id"]), state=state)
        changes = action.plan(ctx, action.parse_params(step.params))
        assert changes, f"{step.action} planned nothing on its contract case"
        types = [t.strip() for t in row["resource_types"].split(",")] + [ids.resource_type(c.resource_id)
                                                                         for c in changes]
        for op in (o.strip() for o in row["modify_ops"].split("; ") if o.strip()):
            alias, _, raw = op.partition("=")
            if raw.startswith("[parameters("):
                continue  # a deployment's parameter (none of the claimed definitions' properties)
            path = _path(alias, types)
            after = next(c.after for c in changes if c.after is not None)
            assert _same(get_path(after, path), _value(raw)), f"{path}: {get_path(after, path)!r} != {raw!r}"
        fixed = SavedState([*docs, *(c.after for c in changes if c.after is not None)])
        again = action.plan(PlanContext(finding=ctx.finding, state=fixed), action.parse_params(step.params))
        assert again == [], f"{step.action} plans again on the fixed document: {[c.note for c in again]}"


def _live_cases() -> list[Any]:
    """(Modify definition, live document) for each claimed Modify definition and each live-shaped document
    (tests/fixtures/live/) of a type it targets."""
    claims = _claims()
    out = []
    for row in _rows():
        if not row["modify_ops"] or row["id"] not in claims or row["id"] in MODIFY_NOT_REPLAYED:
            continue
        types = {ids.type_key(t) for t in row["resource_types"].split(",") if t.strip()}
        for doc in live_documents():
            if ids.type_key(str(doc.get("type", ""))) in types:
                out.append(pytest.param(row, doc, id=f"{row['id'][:8]}-{doc['name']}"))
    return out


def _plan_or_refusal(action: Any, ctx: PlanContext, params: Any) -> list[Any] | str:
    try:
        return list(action.plan(ctx, params))
    except ActionError as e:
        return str(e)


@pytest.mark.parametrize(("row", "doc"), _live_cases())
def test_on_live_documents_the_plan_sets_what_the_modify_definition_sets(row: Mapping[str, str],
                                                                          doc: dict[str, Any]) -> None:
    """The same check on documents shaped as live Azure returns them: a plan, or a refusal that says why
    (an API for MongoDB account keeps its keys; closing without a private endpoint cuts everyone off)."""
    playbook = _claims()[row["id"]][0]
    for step in playbook.steps:
        action = REGISTRY[step.action]
        finding = make_finding(str(doc["id"]), kind="policy", type=row["id"])
        ctx = PlanContext(finding=finding, state=SavedState([doc]))
        params = action.parse_params(step.params)
        changes = _plan_or_refusal(action, ctx, params)
        if isinstance(changes, str):
            assert "refused:" in changes, changes
            continue
        types = [t.strip() for t in row["resource_types"].split(",")]
        for change in changes:
            for op in (o.strip() for o in row["modify_ops"].split("; ") if o.strip()):
                alias, _, raw = op.partition("=")
                if raw.startswith("[parameters("):
                    continue
                path = _path(alias, types)
                assert _same(get_path(change.after, path), _value(raw)), f"{path}: {get_path(change.after, path)!r}"
        fixed = SavedState([c.after for c in changes if c.after is not None] or [doc])
        assert action.plan(PlanContext(finding=finding, state=fixed), params) == []
