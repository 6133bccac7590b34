"""Succeeded ARM writes of the watched operations as findings: Event Grid ResourceWriteSuccess (Event Grid
schema and CloudEvents) and the Activity Log (REST event, records export, legacy webhook, common alert
schema) give one finding a playbook's ``match.operations`` claims; other operations and unfinished
writes are Ignored; the token claims and authorization never reach the finding."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.errors import PayloadError, PlaybookError
from remediator.findings.model import Finding, Ignored
from remediator.findings.parse import parse_bytes, parse_value
from remediator.playbooks import load_playbooks
from remediator.playbooks.loader import load_playbook_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "defender" / \
    "azure-docs__event-grid__event-schema-resource-groups.md__ResourceWriteSuccess.json"
SUB = "ae640e6b-ba3e-4256-9d62-2993eecfa6f2"
EXEMPTION = f"/subscriptions/{SUB}/resourceGroups/demoCluster/providers/Microsoft.Authorization/policyExemptions/" \
            "DemoExpensiveVM"
WRITE = "Microsoft.Authorization/policyExemptions/write"
CALLER = "5f2e7c1d-3b4a-4c8d-9e0f-1a2b3c4d5e6f"
CORRELATION = "7c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def sample() -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return value


def resource_write_event(resource: str = EXEMPTION, operation: str = WRITE) -> dict[str, Any]:
    """The docs' ResourceWriteSuccess sample for ``operation`` on ``resource`` (caller and correlation set)."""
    event = copy.deepcopy(sample()[0])
    event["subject"] = event["data"]["resourceUri"] = event["data"]["authorization"]["scope"] = resource
    event["data"]["operationName"] = event["data"]["authorization"]["action"] = operation
    event["data"]["resourceProvider"] = operation.split("/", 1)[0]
    event["data"]["claims"][OID] = CALLER
    event["data"]["correlationId"] = CORRELATION
    return event


def cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the CloudEvents 1.0 schema (event-grid/cloud-event-schema.md's mapping)."""
    return {"specversion": "1.0", "type": event["eventType"], "source": event["topic"], "subject": event["subject"],
            "id": event["id"], "time": event["eventTime"], "data": event["data"]}


def activity_log_event(resource: str = EXEMPTION, operation: str = WRITE, status: str = "Succeeded") -> dict[str, Any]:
    """activity-log-alerts-webhook.md's "Common" + "Administrative" activityLog fields, for ``operation``."""
    return {
        "authorization": {"action": operation, "scope": resource},
        "channels": "Operation",
        "claims": json.dumps({OID: CALLER, "ipaddr": "203.0.113.9"}),
        "caller": "me@contoso.com",
        "correlationId": CORRELATION,
        "description": "",
        "eventSource": "Administrative",
        "eventTimestamp": "2018-07-19T18:38:04.6117357+00:00",
        "eventDataId": "8195a56a-85de-4663-943e-1a2bf401ad94",
        "httpRequest": json.dumps({"clientIpAddress": "203.0.113.9", "method": "PUT"}),
        "level": "Informational",
        "operationName": operation,
        "operationId": CORRELATION,
        "resourceId": resource,
        "resourceGroupName": "demoCluster",
        "resourceProviderName": operation.split("/", 1)[0],
        "status": status,
        "subStatus": "Created",
        "subscriptionId": SUB,
        "submissionTimestamp": "2018-07-19T18:38:20.3863637+00:00",
    }


def legacy_webhook(ev: dict[str, Any]) -> dict[str, Any]:
    return {"schemaId": "Microsoft.Insights/activityLogs",
            "data": {"status": "Activated", "context": {"activityLog": ev}, "properties": {}}}


def common_schema(ev: dict[str, Any]) -> dict[str, Any]:
    return {"schemaId": "azureMonitorCommonAlertSchema",
            "data": {"essentials": {"monitoringService": "Activity Log - Administrative",
                                    "alertTargetIDs": [ev["resourceId"].lower()]},
                     "alertContext": ev}}


def records_export(resource: str = EXEMPTION, operation: str = WRITE) -> dict[str, Any]:
    """An Administrative record as diagnostic settings export it (upper-cased names, identity.claims)."""
    return {"records": [{
        "time": "2018-07-19T18:38:04.6117357Z", "resourceId": resource.upper(), "operationName": operation.upper(),
        "category": "Administrative", "resultType": "Success", "resultSignature": "Succeeded.Created",
        "durationMs": "312", "callerIpAddress": "203.0.113.9", "correlationId": CORRELATION,
        "identity": {"authorization": {"action": operation, "scope": resource}, "claims": {OID: CALLER}},
        "level": "Information", "location": "global", "properties": {"statusCode": "Created"},
    }]}


def only(payload: Any) -> Finding:
    (record,) = parse_value(payload, source="test")
    assert isinstance(record, Finding), record
    return record


def test_the_docs_sample_is_a_write_of_another_operation_and_ignored() -> None:
    (record,) = parse_value(sample(), source=str(SAMPLE))
    assert isinstance(record, Ignored)
    assert record.reason.startswith("ResourceWriteSuccess of microsoft.storage/storageaccounts/write: not a "
                                    "watched operation")


def test_every_shape_of_one_write_is_the_same_finding() -> None:
    ev = activity_log_event()
    shapes = {
        "event-grid": resource_write_event(), "cloudevents": cloud_event(resource_write_event()),
        "legacy-webhook": legacy_webhook(ev), "common-schema": common_schema(ev), "records": records_export(),
        "rest": ev,
    }
    found = {name: only(payload) for name, payload in shapes.items()}
    assert len({f.id for f in found.values()}) == 1  # deduplicates across Event Grid and the Activity Log
    for name, f in found.items():
        assert (f.kind, f.type) == ("operation", "microsoft.authorization/policyexemptions/write"), name
        assert f.resource_id.lower() == EXEMPTION.lower(), name
        assert f.resource_type.lower() == "microsoft.authorization/policyexemptions", name
        assert (f.subscription_id or "").lower() == SUB, name
        assert (f.resource_group or "").lower() == "democluster", name
        assert f.additional_data["caller"] == CALLER, name
        assert f.additional_data["eventtime"].startswith("2018-07-19T18:38:04"), name
    assert found["event-grid"].source == "resource-event"
    assert found["rest"].source == "activity-log"


def test_claims_authorization_and_request_never_reach_the_finding() -> None:
    for payload in (resource_write_event(), legacy_webhook(activity_log_event()), records_export()):
        f = only(payload)
        text = json.dumps({"raw": f.raw, "extra": dict(f.additional_data), "ext": dict(f.extended_properties),
                           "title": f.title, "description": f.description}, default=str)
        for secret in ('"claims"', '"authorization"', '"httpRequest"', '"identity"', "{issuer-claim}", "203.0.113.9",
                       "Subscription Admin", "{user-name}", "evidence"):
            assert secret not in text, secret
        assert CALLER in text


def test_unfinished_failed_and_other_writes_are_ignored_with_a_reason() -> None:
    (started,) = parse_value(legacy_webhook(activity_log_event(status="Started")), source="t")
    assert isinstance(started, Ignored)
    assert "status Started: only a succeeded write is a finding" in started.reason
    failure = resource_write_event()
    failure["eventType"] = "Microsoft.Resources.ResourceWriteFailure"
    (ignored,) = parse_value(failure, source="t")
    assert isinstance(ignored, Ignored)
    assert "only a ResourceWriteSuccess" in ignored.reason
    other = activity_log_event(operation="Microsoft.Insights/actionGroups/write")
    (ignored,) = parse_value(legacy_webhook(other), source="t")
    assert isinstance(ignored, Ignored)
    assert "or a watched ARM write" in ignored.reason
    (ignored,) = parse_value(resource_write_event(operation="Microsoft.Authorization/policyExemptions/delete"),
                             source="t")
    assert isinstance(ignored, Ignored)


def test_a_write_event_without_a_resource_is_a_one_line_error() -> None:
    event = resource_write_event()
    del event["data"]["resourceUri"]
    event["subject"] = ""
    from remediator.errors import PayloadError

    with pytest.raises(PayloadError, match=r"^x: .*names no resource id"):
        parse_bytes(json.dumps(event), source="x")


def test_the_shipped_playbooks_claim_the_watched_writes_and_nothing_else() -> None:
    playbooks = load_playbooks(ROOT / "playbooks")
    exemption = playbooks.match(only(resource_write_event()))
    assert exemption is not None
    assert exemption.name == "policy-limit-exemptions"
    peer = "/subscriptions/subid/resourceGroups/peerTest/providers/Microsoft.Network/virtualNetworks/vnet1/" \
           "virtualNetworkPeerings/peer"
    peering = playbooks.match(only(common_schema(activity_log_event(
        peer, "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write"))))
    assert peering is not None
    assert peering.name == "vnet-restrict-peerings"
    grant = f"/subscriptions/{SUB}/resourceGroups/rg-ml/providers/Microsoft.Authorization/roleAssignments/" \
            "4e1f0d62-9a3b-4c5d-8e7f-0a1b2c3d4e5f"
    role = playbooks.match(only(resource_write_event(grant, "Microsoft.Authorization/roleAssignments/write")))
    assert role is not None
    assert role.name == "rbac-make-ai-access-eligible"


ASSIGNMENT = f"/subscriptions/{SUB}/resourceGroups/rg-ml/providers/Microsoft.Storage/storageAccounts/sttrain/" \
             "providers/Microsoft.Authorization/roleAssignments/4e1f0d62-9a3b-4c5d-8e7f-0a1b2c3d4e5f"


def role_assignment_row() -> dict[str, Any]:
    """A Resource Graph ``authorizationresources`` row of a role assignment (lower-case type, ARG columns)."""
    return {"id": ASSIGNMENT, "name": "4e1f0d62-9a3b-4c5d-8e7f-0a1b2c3d4e5f",
            "type": "microsoft.authorization/roleassignments", "tenantId": "t", "subscriptionId": SUB,
            "resourceGroup": "rg-ml",
            "properties": {"roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                               "roleDefinitions/b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
                           "principalId": CALLER, "principalType": "Group",
                           "scope": ASSIGNMENT.split("/providers/Microsoft.Authorization", maxsplit=1)[0]}}


def test_an_existing_role_assignment_is_a_finding_of_its_write_operation() -> None:
    found = only(role_assignment_row())
    assert (found.kind, found.type, found.resource_id, found.principal_id, found.source) == (
        "operation", "microsoft.authorization/roleassignments/write", ASSIGNMENT, CALLER, "role-assignment")
    assert found.title == f"Storage Blob Data Owner of Group {CALLER} on sttrain"
    assert found.additional_data["role"] == "Storage Blob Data Owner"
    assert only(role_assignment_row()).id == found.id  # stable across scans
    event = only(resource_write_event(ASSIGNMENT, "Microsoft.Authorization/roleAssignments/write"))
    assert event.type == found.type
    assert event.id != found.id  # the write carries its correlation id; the scan's row is "existing"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("id", "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a",
     "not a role assignment id"),
    ("properties", {"principalId": "p"}, "properties.roleDefinitionId"),
])
def test_a_malformed_role_assignment_row_is_a_one_line_error(field: str, value: Any, message: str) -> None:
    row = role_assignment_row()
    row[field] = value
    with pytest.raises(PayloadError, match=message) as caught:
        parse_value(row, source="scan")
    assert "\n" not in str(caught.value)


def test_match_operations_is_checked_when_loading(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\ndescription: d\nmatch:\n  operations: [Microsoft.Storage/storageAccounts/write]\n"
        "  resource_types: [Microsoft.Storage/storageAccounts]\nrisk: low\napproval: auto\n"
        "steps:\n  - action: storage.disable-public-blob-access\n", encoding="utf-8")
    with pytest.raises(PlaybookError, match=r"p\.yaml:4: match\.operations\[0\]: .*never becomes a finding"):
        load_playbook_file(path)
    path.write_text(path.read_text(encoding="utf-8").replace("Microsoft.Storage/storageAccounts/write", "write"),
                    encoding="utf-8")
    with pytest.raises(PlaybookError, match="expected an ARM operation name"):
        load_playbook_file(path)
