"""Shared test helpers: the real ARM example documents, and findings and payloads built from them.

``arm_fixture(name)`` returns the ``responses["200"].body`` (a real ARM document from the REST
spec examples in tests/fixtures/arm/); ``make_finding(resource_id, ...)`` builds a ``Finding``
for an ARM resource with sensible defaults, for tests that do not start from a Defender payload.

The payloads a team may send about one resource, each moved onto ``resource_id`` from a real
document: ``alert_payload`` (a Defender alert, continuous-export shape), ``assessment_arm`` (a
Defender assessment as the ARM API returns it, from the REST spec example), ``assessment_export``
(the same as continuous export sends it to Event Hub, from the Sumo Logic docs' message),
``policy_event`` / ``policy_cloudevent`` (Azure Policy's ``PolicyStateChanged`` in EventGridSchema
and CloudEvents 1.0). ``payloads(resource_id, assessment=key, policy=definition)`` lists the
shapes that apply as ``(shape, payload)``; ``four_shapes(...)`` parses each to its ``Finding``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.actions.base import PlanContext
from remediator.actions.change import Change
from remediator.azure.state import StateReader
from remediator.errors import ActionError
from remediator.findings.model import Finding, FindingKind, Severity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ARM_FIXTURES = FIXTURES / "arm"
PRIVATE_ENDPOINT_EXAMPLE = "cognitiveservices__2024-10-01__GetPrivateEndpointConnection.json"


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def arm_fixture(name: str, status: str = "200") -> dict[str, Any]:
    """A fresh copy of the response body of an ARM example in tests/fixtures/arm/."""
    return copy.deepcopy(_load(ARM_FIXTURES / name)["responses"][status]["body"])


def make_finding(
    resource_id: str,
    *,
    kind: FindingKind = "recommendation",
    type: str = "00000000-0000-0000-0000-000000000000",
    title: str = "test finding",
    severity: Severity = Severity.HIGH,
    status: str = "Unhealthy",
    source: str = "test",
    principal_id: str | None = None,
    additional_data: dict[str, Any] | None = None,
    extended_properties: dict[str, str] | None = None,
    raw: dict[str, Any] | None = None,
    finding_id: str | None = None,
) -> Finding:
    """A ``Finding`` on ``resource_id``; subscription, group and type derived from the id."""
    rid = ids.parse(resource_id)
    return Finding(
        id=finding_id or f"test:{ids.key(resource_id)}:{type}",
        kind=kind,
        type=type,
        title=title,
        severity=severity,
        status=status,
        resource_id=resource_id,
        subscription_id=rid.subscription_id,
        resource_group=rid.resource_group,
        resource_type=rid.type,
        source=source,
        principal_id=principal_id,
        additional_data={k.lower(): v for k, v in (additional_data or {}).items()},
        extended_properties={k.lower(): v for k, v in (extended_properties or {}).items()},
        raw=raw or {},
    )


def example_connection(status: str = "Approved", example: str = PRIVATE_ENDPOINT_EXAMPLE) -> dict[str, Any]:
    """The REST example's private endpoint connection (``petest01``; Key Vault's is ``sample-pe``) with
    ``status``."""
    conn = arm_fixture(example)
    conn["properties"]["privateLinkServiceConnectionState"]["status"] = status
    return conn


def private_endpoint_connection(resource_id: str, name: str = "pe1", status: str = "Approved") -> dict[str, Any]:
    """A private endpoint connection as a resource embeds it (``properties.privateEndpointConnections[]``,
    the shape of the REST examples' GetPrivateEndpointConnection), to the private endpoint ``name``."""
    sub = ids.parse(resource_id).subscription_id or "00000000-0000-0000-0000-000000000000"
    return {"id": f"{resource_id}/privateEndpointConnections/{name}", "properties": {
        "privateEndpoint": {"id": f"/subscriptions/{sub}/resourceGroups/net/providers/Microsoft.Network/"
                                  f"privateEndpoints/{name}"},
        "privateLinkServiceConnectionState": {"status": status, "description": "", "actionsRequired": "None"}}}


def plan_changes(action: Any, state: StateReader, target: str | Finding, **params: Any) -> list[Change]:
    """What ``action`` plans, with ``params``, for ``target`` (a resource id, or a finding) on ``state``."""
    finding = target if isinstance(target, Finding) else make_finding(target)
    return list(action.plan(PlanContext(finding=finding, state=state), action.parse_params(params)))


def alert_payload(resource_id: str, *, container: str | None = None,
                  alert_type: str = "Storage.Blob_OpenACL") -> dict[str, Any]:
    """A continuous-export (PascalCase) Defender for Storage alert on ``resource_id``, shaped like the
    real sample ``remediator/samples/findings/01-storage-open-container-alert.json``."""
    rid = ids.parse(resource_id)
    entities: list[dict[str, Any]] = [
        {"$id": "2", "ResourceId": resource_id, "ResourceType": "Azure Resource", "ResourceName": rid.name,
         "Type": "azure-resource"},
    ]
    extended: dict[str, str] = {"Storage Account": rid.name, "ProductComponentName": "Storage",
                                "EffectiveAzureResourceId": resource_id}
    if container is not None:
        entities.append({"$id": "3", "Name": container, "StorageResource": {"$ref": "2"},
                         "Type": "blob-container"})
        extended["Container"] = container
    return {
        "VendorName": "Microsoft", "AlertType": alert_type, "ProductName": "Microsoft Defender for Cloud",
        "StartTimeUtc": "2026-11-27T08:12:09.000Z", "EndTimeUtc": "2026-11-27T08:12:09.000Z",
        "TimeGenerated": "2026-11-27T08:14:31.620Z", "Severity": "Medium", "Status": "New",
        "IsIncident": False,
        "SystemAlertId": "2517331970709999999_" + hashlib.sha256(resource_id.encode()).hexdigest()[:12],
        "Intent": "Collection", "AzureResourceId": resource_id, "CompromisedEntity": rid.name,
        "AlertDisplayName": "Publicly accessible storage containers have been exposed",
        "Description": f"The access policy of container '{container}' in storage account '{rid.name}' was "
                       "changed to allow anonymous access.",
        "Entities": entities, "ExtendedProperties": extended,
        "ResourceIdentifiers": [{"$id": "4", "AzureResourceId": resource_id, "Type": "AzureResource"}],
    }


def policy_event(resource_id: str, policy_definition: str) -> dict[str, Any]:
    """An Event Grid ``PolicyStateChanged`` NonCompliant event on ``resource_id``, shaped like the real
    sample ``remediator/samples/findings/04-acr-admin-user-policy-event.json``."""
    sub = ids.parse(resource_id).subscription_id or ""
    return {
        "id": "5829794FCB5075FCF585476619577B5A", "topic": f"/subscriptions/{sub}", "subject": resource_id,
        "data": {
            "timestamp": "2026-11-27T09:41:12.4129542Z",
            "policyAssignmentId":
                f"/subscriptions/{sub}/providers/Microsoft.Authorization/policyAssignments/acr",
            "policyDefinitionId": f"/providers/Microsoft.Authorization/policyDefinitions/{policy_definition}",
            "policyDefinitionReferenceId": "", "complianceState": "NonCompliant", "subscriptionId": sub,
            "complianceReasonCode": "",
        },
        "eventType": "Microsoft.PolicyInsights.PolicyStateChanged",
        "eventTime": "2026-11-27T09:41:12.4129542Z",
        "dataVersion": "1", "metadataVersion": "1",
    }


def policy_cloudevent(resource_id: str, policy_definition: str) -> dict[str, Any]:
    """``policy_event`` in the CloudEvents 1.0 schema (same data, CloudEvents envelope)."""
    grid = policy_event(resource_id, policy_definition)
    return {"specversion": "1.0", "type": grid["eventType"], "source": grid["topic"], "subject": grid["subject"],
            "id": grid["id"], "time": grid["eventTime"], "dataschema": None, "data": grid["data"]}


def assessment_arm(resource_id: str, key: str, display: str | None = None) -> dict[str, Any]:
    """An Unhealthy ``Microsoft.Security/assessments`` ``key`` on ``resource_id`` in the ARM API shape
    (the REST spec example); ``display``: its display name (the example's when not given)."""
    doc = copy.deepcopy(_load(FIXTURES / "defender" / "restapispecs__2021-06-01__GetAssessmentWithExpand_example.json")
                        ["responses"]["200"]["body"])
    doc["id"] = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    doc["name"] = key
    props = doc["properties"]
    props["resourceDetails"]["id"] = resource_id
    if display is not None:
        props["displayName"] = display
    props["status"] = {"code": "Unhealthy"}
    props.pop("links", None)
    props.pop("additionalData", None)
    return doc


def assessment_export(resource_id: str, key: str, display: str | None = None) -> dict[str, Any]:
    """The same Unhealthy assessment as continuous export sends it to Event Hub (the Sumo Logic docs'
    real message, moved onto ``resource_id``); ``display`` as in ``assessment_arm``."""
    doc = copy.deepcopy(_load(FIXTURES / "defender" /
                              "sumologic-docs__microsoft-defender-for-cloud.md__eventhub_recommendation_"
                              "NotApplicable.json"))
    rid = ids.parse(resource_id)
    doc["id"] = f"{resource_id}/providers/Microsoft.Security/assessments/{key}"
    doc["name"] = key
    props = doc["properties"]
    props["resourceDetails"].update(id=resource_id, nativeResourceId=resource_id, resourceName=rid.name,
                                    resourceType=rid.types[-1] if rid.types else "", resourceProvider=rid.namespace)
    if display is not None:
        props["displayName"] = props["metadata"]["displayName"] = display
    props["metadata"].pop("policyDefinitionId", None)  # the assessment key identifies it, not a policy
    props["metadata"]["severity"] = "Medium"
    props["status"] = {"code": "Unhealthy", "statusChangeDate": "2026-11-27T10:51:36.3376828Z",
                       "firstEvaluationDate": "2026-11-27T10:51:36.3376828Z"}
    props.pop("additionalData", None)
    return doc


def payloads(resource_id: str, *, assessment: str | None = None, policy: str | None = None,
             display: str | None = None) -> list[tuple[str, Any]]:
    """``(shape, payload)`` of every shape that applies: the Defender assessment ``assessment`` (a key)
    in the ARM and the continuous-export shapes, and the policy ``policy`` (a definition name) as an
    Event Grid delivery in EventGridSchema and in CloudEvents (each a one-event array)."""
    out: list[tuple[str, Any]] = []
    if assessment is not None:
        out += [("assessment-arm", assessment_arm(resource_id, assessment, display)),
                ("assessment-export", assessment_export(resource_id, assessment, display))]
    if policy is not None:
        out += [("policy-eventgrid", [policy_event(resource_id, policy)]),
                ("policy-cloudevents", [policy_cloudevent(resource_id, policy)])]
    return out


def four_shapes(resource_id: str, *, assessment: str | None = None, policy: str | None = None,
                display: str | None = None) -> list[Finding]:
    """The ``Finding`` of each of ``payloads(...)`` (two Defender, two Policy; those that apply)."""
    return [parse_one(payload) for _, payload in payloads(resource_id, assessment=assessment, policy=policy,
                                                          display=display)]


def parse_one(payload: Any) -> Finding:
    """The one ``Finding`` a payload parses to (through ``remediator.findings.parse.parse_value``)."""
    from remediator.findings.parse import parse_value

    records = parse_value(payload, source="test")
    assert len(records) == 1, records
    record = records[0]
    assert isinstance(record, Finding), record
    return record


def docstring_playbook(action: object) -> str:
    """The fenced ``yaml`` playbook example of an action's docstring."""
    doc = type(action).__doc__ or ""
    start = doc.index("```yaml") + len("```yaml")
    end = doc.index("```", start)
    lines = doc[start:end].splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines).strip() + "\n"


def apply_error(arm: Any, action: Any, change: Change, fail: tuple[str, str, int], *, code: str = "",
                message: str = "") -> str:
    """The ``ActionError`` text of ``action.apply`` when ARM answers the matching request (``fail``:
    method, path part, status) with an error (``code`` and ``message``; FakeArm's default error without
    them); asserted to be one line."""
    method, where, status = fail
    body = {"error": {"code": code, "message": message}} if code else None
    arm.fail_next(method, where, status, body=body)
    with pytest.raises(ActionError) as e:
        action.apply(arm.clients(), change)
    text = str(e.value)
    assert "\n" not in text
    return text


def defender_plans(subscription: str, tier: str = "Standard") -> list[dict[str, Any]]:
    """The subscription's pricing of every Defender plan the shipped playbooks turn on, at ``tier`` (the
    shape of the pricings list example, security 2024-01-01 ListPricings_example.json)."""
    from remediator.app.doctor import defender_plans as wanted
    from remediator.playbooks import load_playbooks
    from tests.conftest import ROOT

    return [{"id": f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings/{plan}", "name": plan,
             "type": "Microsoft.Security/pricings",
             "properties": {"pricingTier": tier, "freeTrialRemainingTime": "PT0S", "enforce": "False"}}
            for plan in wanted(load_playbooks(ROOT / "playbooks"))]



def continuous_export(subscription: str, hub: str, *, name: str = "ExportToEventHub", enabled: bool = True,
                      sources: tuple[str, ...] = ("Alerts", "Assessments", "SubAssessments"),
                      group: str = "rg-security") -> dict[str, Any]:
    """A Defender continuous export of ``subscription`` to the Event Hub ``hub``: the spec's automation example
    (security 2023-12-01-preview GetAutomationResourceGroup_example.json) moved there, with an EventHub action (the
    shape infra/main.bicep deploys: trusted service, no connection string)."""
    doc = arm_fixture("security__2023-12-01-preview__GetAutomationResourceGroup.json")
    doc["id"] = f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Security/automations/{name}"
    doc["name"] = name
    doc["properties"].update(
        isEnabled=enabled, scopes=[{"description": "the subscription", "scopePath": f"/subscriptions/{subscription}"}],
        sources=[{"eventSource": s} for s in sources],
        actions=[{"actionType": "EventHub", "eventHubResourceId": hub, "isTrustedServiceEnabled": True}])
    return doc
