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
from remediator.playbooks.excused import EXCUSED
from tests.support.builders import make_finding
from tests.support.contract import CASES, approved_endpoint
from tests.support.live import live_documents

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "remediator" / "playbooks" / "policy-catalog.tsv"
FIXABLE = ("a", "b0", "b")

UNCLAIMED = EXCUSED  # remediator/playbooks/excused.py: the reasons `remediator coverage` shows


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


PRIVATE_LINK_NOTES = ("private endpoint", "private DNS zone group")


def _claimed_or_excused(rows: list[dict[str, str]]) -> dict[str, list[Any]]:
    claims = _claims()
    missing = [f'{r["id"]} {r["displayName"]}' for r in rows if r["id"] not in claims and r["id"] not in UNCLAIMED]
    assert not missing, "neither claimed nor in UNCLAIMED:\n" + "\n".join(missing)
    assert not sorted(set(UNCLAIMED) & set(claims))
    return claims


def test_every_private_link_definition_is_claimed_or_excused() -> None:
    """Class c, but the private endpoint and DNS zone group definitions are fixes remediator makes: each is
    claimed by a shipped playbook that takes all its resource types, or listed in UNCLAIMED with the reason."""
    with CATALOG.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["class"] == "c" and r["note"] in PRIVATE_LINK_NOTES]
    assert len(rows) == 52, len(rows)  # the catalog's (f4a50bac)
    claims = _claimed_or_excused(rows)
    dropped = [f'{r["id"]}: {t}' for r in rows for t in r["resource_types"].split(",")
               if r["id"] in claims and ids.type_key(t.strip()) not in {x for pb in claims[r["id"]]
                                                                       for x in pb.match.resource_types}]
    assert not dropped, dropped
    claimed = sum(1 for r in rows if r["id"] in claims)
    assert claimed == 43, f"{claimed} of {len(rows)} claimed"


DIAGNOSTIC_NOTE = "diagnostic setting (child resource)"


def test_every_diagnostic_setting_definition_is_claimed_or_excused() -> None:
    """Class c, but one action makes every one of them (monitor.enable-diagnostic-logs): the catalog's
    diagnostic-setting definitions are claimed by a shipped playbook, or in ``UNCLAIMED`` with the reason."""
    with CATALOG.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["note"] == DIAGNOSTIC_NOTE]
    claims = _claimed_or_excused(rows)
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


def test_every_defender_plan_definition_is_claimed_or_excused() -> None:
    """Class c, but fixable by a pricing (or an Advanced Threat Protection setting): every catalog row whose note is a
    Defender plan is claimed by a shipped playbook, or in UNCLAIMED with the reason."""
    with CATALOG.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if r["note"].startswith(("Defender plan", "Defender for Cosmos DB"))
                or "microsoft.security/pricings/" in r["checked_properties"].lower()]
    claims = _claims()
    missing = [f'{r["id"]} {r["displayName"]}' for r in rows if r["id"] not in claims and r["id"] not in UNCLAIMED]
    assert len(rows) == 39, len(rows)
    assert not missing, "\n".join(missing)
    # and `remediator coverage` (docs/coverage.md) counts them: their type is Microsoft.Resources/subscriptions, a
    # playbook's is `subscription`
    from remediator.planning.coverage import Coverage
    from remediator.playbooks import PlaybookSet

    coverage = Coverage(PlaybookSet(load_playbooks(ROOT / "playbooks")))
    unclaimed = [f'{r["id"]}: {row.reason}' for r in rows if r["id"] in claims
                 and not (row := coverage.row(r["id"])).fixable]
    assert not unclaimed, "\n".join(unclaimed)
