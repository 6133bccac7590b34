"""Helpers for the Key Vault, disk and registry action tests: apply under a real PIM grant on
FakeArm, the four finding payload shapes, and role coverage.

* ``pim_apply(arm, action, change)`` does what the worker does for one change: the default
  ``pim-assign`` strategy (``PimAssignElevator``) creates an ``AdminAssign`` schedule request for the
  executor with the action's role at the change's scope, runs ``action.apply`` with the executor's
  clients, and removes the grant. With ``arm.enforce_grants(EXEC, role_id=action.role.id)`` a write
  outside that grant is a 403.
* ``payloads(resource_id, assessment=…, policy=…)``: the Defender assessment in the ARM shape (the
  shipped sample 05) and the continuous-export shape (the Sumo Logic docs' Event Hub message), and
  the Azure Policy ``PolicyStateChanged`` event in EventGridSchema and CloudEvents (the crafted
  fixtures in tests/fixtures/crafted/), each moved onto ``resource_id`` with the given key or id.
* ``covers(role_actions, operation)``: whether a role's ``actions`` (wildcards as Azure RBAC
  matches them, case-insensitive) include ``operation``.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from remediator import ids
from remediator.actions.base import Action, ApplyResult
from remediator.actions.change import Change
from remediator.privilege.elevation import PimAssignElevator, Ticket
from remediator.testing import FakeArm

ROOT = Path(__file__).resolve().parents[1]
EXEC = "0f3c2a51-8d7e-4b6a-9c21-7e5d4b3a2f10"
BROKER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


TICKET = Ticket(remediation_id="rem-kv01", fingerprint="sha256:" + "cd" * 32, approvers=("U0APPROVE1", "U0APPROVE2"))


def pim_apply(arm: FakeArm, action: Action[Any], change: Change) -> ApplyResult:
    """Elevate (PIM AdminAssign of ``action.role`` at the change's scope), apply, release."""
    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                                 sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0)
    clients = arm.clients(principal_id=EXEC)
    grant = elevator.elevate(action=action, change=change, ticket=TICKET)
    try:
        return elevator.run(grant, lambda: action.apply(clients, change), clients=clients)
    finally:
        elevator.release(grant)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def assessment_arm(resource_id: str, key: str) -> dict[str, Any]:
    doc = _load(ROOT.parent / "remediator" / "samples" / "findings" / "05-storage-network-assessment.json")
    doc["id"] = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    doc["name"] = key
    doc["properties"]["resourceDetails"]["id"] = resource_id
    return doc


def assessment_export(resource_id: str, key: str) -> dict[str, Any]:
    doc = _load(ROOT / "fixtures" / "defender" /
                "sumologic-docs__microsoft-defender-for-cloud.md__eventhub_recommendation_NotApplicable.json")
    rid = ids.parse(resource_id)
    doc["id"] = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    doc["name"] = key
    details = doc["properties"]["resourceDetails"]
    details.update(id=resource_id, nativeResourceId=resource_id, resourceName=rid.name,
                   resourceType=rid.types[-1] if rid.types else "", resourceProvider=rid.namespace)
    doc["properties"]["status"] = {"code": "Unhealthy", "statusChangeDate": "2026-01-02T10:00:00Z",
                                   "firstEvaluationDate": "2026-01-02T10:00:00Z"}
    doc["properties"]["metadata"]["severity"] = "Medium"
    return doc


def _policy(name: str, resource_id: str, policy: str) -> list[dict[str, Any]]:
    events = copy.deepcopy(_load(ROOT / "fixtures" / "crafted" / name))
    sub = ids.parse(resource_id).subscription_id
    for event in events:
        event["subject"] = resource_id
        for key in ("topic", "source"):
            if key in event:
                event[key] = f"/subscriptions/{sub}"
        event["data"]["policyDefinitionId"] = f"/providers/microsoft.authorization/policydefinitions/{policy}"
        event["data"]["subscriptionId"] = sub
        event["data"]["policyDefinitionReferenceId"] = ""
    return events


def policy_eventgrid(resource_id: str, policy: str) -> list[dict[str, Any]]:
    return _policy("crafted__eventgrid-schema__PolicyStateChanged_acr_admin_NonCompliant.json", resource_id, policy)


def policy_cloudevent(resource_id: str, policy: str) -> list[dict[str, Any]]:
    return _policy("crafted__cloudevents__PolicyStateChanged_acr_admin_NonCompliant.json", resource_id, policy)


def payloads(resource_id: str, *, assessment: str | None = None, policy: str | None = None) -> list[tuple[str, Any]]:
    """(shape, payload) for each of the four shapes that apply."""
    out: list[tuple[str, Any]] = []
    if assessment:
        out += [("assessment-arm", assessment_arm(resource_id, assessment)),
                ("assessment-export", assessment_export(resource_id, assessment))]
    if policy:
        out += [("policy-eventgrid", policy_eventgrid(resource_id, policy)),
                ("policy-cloudevents", policy_cloudevent(resource_id, policy))]
    return out


def covers(role_actions: Sequence[str], operation: str) -> bool:
    return any(fnmatch.fnmatchcase(operation.lower(), pattern.lower()) for pattern in role_actions)
