"""Helpers for the AI estate actions' tests: the four finding shapes a playbook must match (Defender
assessment in the ARM and the continuous-export shapes, Policy events in EventGridSchema and
CloudEvents), built from the real payloads in tests/fixtures/defender/, and an apply under a PIM grant
the way the engine does it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from remediator.actions.base import Action, ApplyResult
from remediator.actions.change import Change
from remediator.azure.errors import Backoff
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.privilege.elevation import PimAssignElevator, Ticket
from remediator.testing import FakeArm
from tests.support.builders import FIXTURES, parse_one, policy_event

EXEC = "0f3c2a51-8d7e-4b6a-9c21-7e5d4b3a2f10"
BROKER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
DEFENDER = FIXTURES / "defender"


def _fixture(name: str) -> Any:
    return json.loads((DEFENDER / name).read_text(encoding="utf-8"))


def assessment_arm(resource_id: str, key: str, display: str) -> dict[str, Any]:
    """An Unhealthy ``Microsoft.Security/assessments`` in the ARM API shape (from the REST example)."""
    doc = copy.deepcopy(_fixture("restapispecs__2021-06-01__GetAssessmentWithExpand_example.json")
                        ["responses"]["200"]["body"])
    doc["id"] = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    doc["name"] = key
    props = doc["properties"]
    props["resourceDetails"]["id"] = resource_id
    props["displayName"] = display
    props["status"] = {"code": "Unhealthy"}
    props.pop("links", None)
    props.pop("additionalData", None)
    return doc


def assessment_export(resource_id: str, key: str, display: str) -> dict[str, Any]:
    """The same assessment as continuous export sends it to Event Hub (the real export sample)."""
    doc = copy.deepcopy(_fixture("sumologic-docs__microsoft-defender-for-cloud.md__eventhub_recommendation_"
                                 "NotApplicable.json"))
    doc["id"] = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    doc["name"] = key
    props = doc["properties"]
    details = props["resourceDetails"]
    details["id"] = details["nativeResourceId"] = resource_id
    details["resourceName"] = resource_id.rsplit("/", 1)[-1]
    props["displayName"] = props["metadata"]["displayName"] = display
    props["metadata"].pop("policyDefinitionId", None)
    props["status"] = {"code": "Unhealthy", "statusChangeDate": "2026-11-27T10:51:36.3376828Z",
                       "firstEvaluationDate": "2026-11-27T10:51:36.3376828Z"}
    props.pop("additionalData", None)
    return doc


def policy_cloudevent(resource_id: str, policy_definition: str) -> dict[str, Any]:
    """The Event Grid policy event in the CloudEvents 1.0 schema (same data, CloudEvents envelope)."""
    grid = policy_event(resource_id, policy_definition)
    return {"specversion": "1.0", "type": grid["eventType"], "source": grid["topic"], "subject": grid["subject"],
            "id": grid["id"], "time": grid["eventTime"], "dataschema": None, "data": grid["data"]}


def four_shapes(resource_id: str, *, key: str | None, policy: str, display: str) -> list[Finding]:
    """The findings of every shape a team may send: two Defender (when Defender has the recommendation)
    and two Policy."""
    out = []
    if key is not None:
        out += [parse_one(assessment_arm(resource_id, key, display)),
                parse_one(assessment_export(resource_id, key, display))]
    out += [parse_one([policy_event(resource_id, policy)]), parse_one([policy_cloudevent(resource_id, policy)])]
    return out


TICKET = Ticket(remediation_id="rem-ai01", fingerprint="sha256:" + "ab" * 32, approvers=("U0APPROVE1",))


def apply_under_grant(arm: FakeArm, action: Action[Any], change: Change) -> ApplyResult:
    """Refused without the PIM grant (403 through the real SDK), then applied under a time-bound
    assignment of the action's role scoped to the resource, released afterwards."""
    arm.enforce_grants(EXEC, role_id=action.role.id)
    executor = arm.clients(principal_id=EXEC)
    with pytest.raises(ActionError, match="AuthorizationFailed"):
        action.apply(executor, change)
    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                                 sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0,
                                 propagation_backoff=Backoff(initial=0.01, cap=0.04))
    grant = elevator.elevate(action=action, change=change, ticket=TICKET)
    try:
        result = elevator.run(grant, lambda: action.apply(executor, change), clients=executor)
    finally:
        elevator.release(grant)
    assert arm.pim_grants() == [] or all(g.scope for g in arm.pim_grants())
    return result
