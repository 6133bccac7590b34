"""The findings parser against the real public payloads, crafted payloads and hostile input.

Every file in ``tests/fixtures/defender`` has its expected outcome spelled out below; a new
fixture without one fails ``test_every_public_fixture_has_an_expected_outcome``.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remediator.errors import PayloadError
from remediator.findings.model import Finding, Ignored, Record, Severity
from remediator.findings.parse import blob_containers, parse_bytes, parse_file, parse_value
from tests.conftest import FIXTURES

DEFENDER = FIXTURES / "defender"
CRAFTED = FIXTURES / "crafted"

SUMO_ALERT = "sumologic-docs__microsoft-defender-for-cloud.md__eventhub_alert_K8S_AdmissionController.json"
SUMO_RECOMMENDATION = "sumologic-docs__microsoft-defender-for-cloud.md__eventhub_recommendation_NotApplicable.json"
GRAFANA_ALERT = "grafana-azure_eventhub_to_loki__tests__issue_19_sample_1.json"
GRAFANA_SUB = "grafana-azure_eventhub_to_loki__tests__issue_19_sample_2.json"
ELASTIC_NDJSON = "elastic-integrations__microsoft_defender_cloud__event__test-alert.log.ndjson"
ELASTIC_PORTS = (
    "elastic-integrations__microsoft_defender_cloud__assessment__test-assessment.log__line4_management_ports.json"
)
ELASTIC_IDENTITY = (
    "elastic-integrations__microsoft_defender_cloud__assessment__test-assessment.log__"
    "line6_disabled_owner_accounts_with_subassessment.json"
)
DEMISTO = (
    "demisto-content__MicrosoftDefenderForCloudEventCollector__test_data__ListAlerts.json__"
    "element4_KV_ListGetAnomaly.json"
)
ACTIVITY_LOG = "mdc-repo__Security_Alerts_in_Azure_Activity_Log__README.md__ActivityLogAlert_sample.json"
SSH_WEBHOOK = "azure-docs-cs-cz__activity-log-alerts-webhook.md__Security_SSH_bruteforce_webhook.json"
COMMON_SCHEMA = "crafted__azure-monitor-common-alert-schema__ActivityLog_Security_EICAR.json"
METRICS = "grafana-azure_eventhub_to_loki__tests__issue_15_records_envelope_NOT_DEFENDER.json"
OLD_SCHEMA = "restapispecs__2019-01-01__GetAlertSubscriptionLocation_example_OLDSCHEMA.json"
ARM_ALERT = "restapispecs__2022-01-01__GetAlertSubscriptionLocation_example.json"
SPEC_SUB = "restapispecs__2019-01-01-preview__GetSubAssessment_example.json"
OPEN_ACL = "crafted__export-alert__Storage.Blob_OpenACL.json"
ARM_SCOPE = "crafted__export-alert__ARM_storage_keys_subscription_scope.json"
POLICY_EG = "crafted__eventgrid-schema__PolicyStateChanged_acr_admin_NonCompliant.json"
POLICY_CE = "crafted__cloudevents__PolicyStateChanged_acr_admin_NonCompliant.json"
POLICY_OTHER = "crafted__eventgrid-schema__PolicyState_Compliant_and_Deleted.json"

SUB_ELASTIC = "/subscriptions/5abcdef6-1234-5678-8912-e1234abcdef1"
SUB_CRAFTED = "3f2b1c4e-8d7a-4e21-9b6f-0c5d2e7a9f13"
VM_ELASTIC = (
    f"{SUB_ELASTIC}/resourceGroups/DEFENDER_CLOUD_GROUP/providers/Microsoft.Compute/virtualMachines/"
    "vm-for-defender-cloud-test"
)
REGISTRY = (
    f"/subscriptions/{SUB_CRAFTED}/resourceGroups/rg-platform/providers/Microsoft.ContainerRegistry/"
    "registries/contosoregistry"
)
ACR_ADMIN_POLICY = "dc921057-6b28-4fbe-9b83-f7bec05db6c2"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def only(records: list[Record]) -> Record:
    assert len(records) == 1, records
    return records[0]


def finding(records: list[Record]) -> Finding:
    record = only(records)
    assert isinstance(record, Finding), record
    return record


def ignored(records: list[Record]) -> Ignored:
    record = only(records)
    assert isinstance(record, Ignored), record
    return record


def payload_error(fn: Callable[[], object]) -> str:
    """Run ``fn``, expect a PayloadError, and check its message is one line."""
    with pytest.raises(PayloadError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    assert "\r" not in message, message
    assert message.strip(), "empty error message"
    return message


def upper_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.upper(): upper_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [upper_keys(v) for v in value]
    return value


def unhealthy(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of an assessment-like record turned Unhealthy (status keys are lower camelCase here)."""
    out = copy.deepcopy(record)
    out["properties"]["status"].update(code="Unhealthy", cause="", description="")
    return out


# --------------------------------------------------------------------------- every public fixture

# file -> expected records: ("F", source, type, resource_id) or ("I", exact reason)
EXPECTED: dict[str, list[tuple[str, ...]]] = {
    SSH_WEBHOOK: [
        ("F", "activity-log-alert", "Failed SSH brute force attack",
         "/subscriptions/12345-5645-123a-9867-123b45a6789/resourceGroups/contoso/providers/Microsoft.Security/"
         "locations/centralus/alerts/Sec-07f2-4d74-aaf0-03d2f53d5a33"),
    ],
    "azure-docs__event-grid__cloud-event-schema.md__CloudEvent_BlobCreated.json": [
        ("I", "Event Grid event Microsoft.Storage.BlobCreated is not a policy-state or resource-write event"),
    ],
    "azure-docs__event-grid__event-schema-resource-groups.md__ResourceWriteSuccess.json": [
        ("I", "ResourceWriteSuccess of microsoft.storage/storageaccounts/write: not a watched operation "
              "(microsoft.authorization/policyexemptions/write, microsoft.authorization/roleassignments/write, "
              "microsoft.network/virtualnetworks/virtualnetworkpeerings/write)"),
    ],
    "azure-docs__event-grid__webhook-event-delivery.md__SubscriptionValidationEvent.json": [
        ("I", "Event Grid subscription validation handshake"),
    ],
    DEMISTO: [
        ("I", "simulated alert SIMULATED_KV_ListGetAnomaly ([SAMPLE ALERT] Suspicious secret listing and query "
              "in a Key Vault): not a real detection"),
    ],
    "elastic-integrations__microsoft_defender_cloud__assessment__test-assessment.log__line1_healthy_with_cause.json": [
        ("I", "assessment status Healthy (mdeTvm)"),
    ],
    ELASTIC_PORTS: [("F", "assessment", "b0123458-ef12-1234-aaaa-5abcdef1234e", VM_ELASTIC)],
    ELASTIC_IDENTITY: [("F", "assessment", "05abcdef-3dda-1234-abcd-81234567890f", SUB_ELASTIC)],
    ELASTIC_NDJSON: [
        ("I", "regulatory-compliance record (Microsoft.Security/regulatoryComplianceStandards/"
              "regulatoryComplianceControls/regulatoryComplianceAssessments, state Skipped): not a finding"),
        ("I", "assessment deleted (enrichment action Delete): nothing left to remediate"),
        ("I", "secure-score record (Microsoft.Security/secureScores/secureScoreControls): a score, not a finding"),
        ("I", "sub-assessment deleted (enrichment action Delete): nothing left to remediate"),
        ("I", "simulated alert ARM_AnomalousServiceOperation.CredentialAccess ([SAMPLE ALERT] Login from a "
              "suspicious IP): not a real detection"),
    ],
    METRICS: [
        ("I", "not a Defender record: platform metric IncomingRequests"),
        ("I", "not a Defender record: platform metric IncomingRequests"),
    ],
    GRAFANA_ALERT: [
        ("I", "simulated alert SIMULATED_KV_ListGetAnomaly ([SAMPLE ALERT] Suspicious secret listing and query "
              "in a Key Vault): not a real detection"),
    ],
    GRAFANA_SUB: [("I", "sub-assessment status NotApplicable (Unscanned)")],
    ACTIVITY_LOG: [
        ("F", "activity-log-alert", "PREVIEW - Role binding to the cluster-admin role detected",
         "/subscriptions/SUBSCRIPTION_ID/resourceGroups/RESOURCE_GROUP_NAME/providers/Microsoft.Security/locations/"
         "centralus/alerts/2518250008431989649_e7313e05-edf4-466d-adfd-35974921aeff"),
    ],
    SPEC_SUB: [
        ("F", "sub-assessment", "21300918-b2e3-0346-785f-c77ff57d243b",
         "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg/providers/"
         "Microsoft.ContainerRegistry/registries/myRegistry"),
    ],
    OLD_SCHEMA: [("I", "alert status Dismissed: already dismissed in Defender, nothing to remediate")],
    "restapispecs__2021-06-01__GetAssessmentWithExpand_example.json": [
        ("I", "assessment status NotApplicable (OffByPolicy)"),
    ],
    "restapispecs__2021-06-01__GetAssessmentsMetadata_example.json": [
        ("I", "assessment metadata: a recommendation definition, not a result"),
    ],
    "restapispecs__2021-06-01__ListAssessments_example.json": [
        ("I", "assessment status Healthy"),
        ("I", "assessment status NotApplicable (OffByPolicy)"),
    ],
    ARM_ALERT: [
        ("F", "arm-alert", "VM_EICAR",
         "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg1/providers/"
         "Microsoft.Compute/virtualMachines/vm1"),
    ],
    "restapispecs__2022-01-01__GetAlertsResourceGroup_example_LIST.json": [
        ("F", "arm-alert", "VM_EICAR",
         "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg1/providers/"
         "Microsoft.Compute/virtualMachines/vm1"),
    ],
    SUMO_ALERT: [
        ("F", "export-alert", "K8S_AdmissionController",
         "/subscriptions/1111111-1111-1111-111-11111111/resourceGroups/qek8dm0-azure-k8stest/providers/"
         "Microsoft.ContainerService/managedClusters/k8s--295-aks1-28-otc-dev-v4"),
    ],
    SUMO_RECOMMENDATION: [("I", "assessment status NotApplicable (UnsupportedPricingPlan)")],
}

AI_ACCOUNT = f"/subscriptions/{SUB_CRAFTED}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/" \
    "oai-contoso"

CRAFTED_EXPECTED: dict[str, list[tuple[str, ...]]] = {
    OPEN_ACL: [
        ("F", "export-alert", "Storage.Blob_OpenACL",
         f"/subscriptions/{SUB_CRAFTED}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/contosodata01"),
    ],
    ARM_SCOPE: [
        ("F", "export-alert", "ARM_MicroBurst.AZStorageKeysREST",
         f"/subscriptions/{SUB_CRAFTED}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/contosodata01"),
    ],
    POLICY_EG: [("F", "policy-event", ACR_ADMIN_POLICY, REGISTRY)],
    POLICY_CE: [("F", "policy-event", ACR_ADMIN_POLICY, REGISTRY)],
    POLICY_OTHER: [
        ("I", "policy state Compliant: only NonCompliant is a finding"),
        ("I", "policy state deleted (resource or assignment removed)"),
    ],
    "crafted__log-analytics__SecurityAlert_row.json": [
        ("F", "la-alert", "VM_SshBruteForceSuccess",
         f"/subscriptions/{SUB_CRAFTED}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-bastion-01"),
    ],
    "crafted__export-alert__AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt.json": [
        ("F", "export-alert", "AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt", AI_ACCOUNT)],
    "crafted__arm-alert__AI.Azure_CredentialTheftAttempt.json": [
        ("F", "arm-alert", "AI.Azure_CredentialTheftAttempt", AI_ACCOUNT)],
    "crafted__log-analytics__AI.Azure_AccessFromSuspiciousIP_row.json": [
        ("F", "la-alert", "AI.Azure_AccessFromSuspiciousIP", AI_ACCOUNT)],
    COMMON_SCHEMA: [
        ("F", "activity-log-alert", "activity-log-security-alert",
         f"/subscriptions/{SUB_CRAFTED}/resourcegroups/rg-app/providers/microsoft.security/locations/westeurope/"
         "alerts/2517059427718829999_7d3e9f41-2c8b-4a06-9e15-b0c4d7a2f863"),
    ],
}


def outcome(record: Record) -> tuple[str, ...]:
    if isinstance(record, Finding):
        return ("F", record.source, record.type, record.resource_id)
    return ("I", record.reason)


def test_every_public_fixture_has_an_expected_outcome() -> None:
    assert sorted(p.name for p in DEFENDER.iterdir()) == sorted(EXPECTED)
    assert sorted(p.name for p in CRAFTED.glob("crafted__*")) == sorted(CRAFTED_EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_public_fixture_outcome(name: str) -> None:
    assert [outcome(r) for r in parse_file(DEFENDER / name)] == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(CRAFTED_EXPECTED))
def test_crafted_fixture_outcome(name: str) -> None:
    assert [outcome(r) for r in parse_file(CRAFTED / name)] == CRAFTED_EXPECTED[name]


def test_findings_are_well_formed_everywhere() -> None:
    for path in [*DEFENDER.iterdir(), *CRAFTED.glob("crafted__*")]:
        for record in parse_file(path):
            if isinstance(record, Ignored):
                assert record.reason
                assert "\n" not in record.reason
                continue
            assert record.id.split(":", 1)[0] in {"alert", "assessment", "subassessment", "policy"}
            assert record.id == record.id.strip()
            assert record.title
            assert record.raw
            assert all(k == k.lower() for k in record.extended_properties)
            assert all(isinstance(v, str) for v in record.extended_properties.values())
            assert all(k == k.lower() for k in record.additional_data)
            for entity in record.entities:
                assert all(k == k.lower() for k in entity)
            json.dumps([dict(e) for e in record.entities])  # resolved graphs stay acyclic


# --------------------------------------------------------------------------- alerts


def test_arm_alert_uses_system_alert_id_not_name() -> None:
    f = finding(parse_file(DEFENDER / ARM_ALERT))
    assert f.id == "alert:2518298467986649999_4d25bfef-2d77-4a08-adc0-3e35715cc92a"
    assert "F144EE95" in f.raw["id"]  # the spec example's id/name quirk: the id path names another alert
    assert (f.kind, f.severity, f.status, f.title) == (
        "alert", Severity.HIGH, "Active", "Azure Security Center test alert (not a threat)")
    assert (f.subscription_id, f.resource_group, f.resource_type) == (
        "20ff7fc3-e762-44dd-bd96-b71116dcdc23", "myRg1", "Microsoft.Compute/virtualMachines")
    assert f.extended_properties == {"property1": "Property1 information"}
    assert f.entities[0]["type"] == "ip"
    assert f.entities[0]["location"]["countrycode"] == "gb"
    assert f.description.startswith("This is a test alert")


def test_old_schema_alert_dismissed_is_ignored_and_active_parses() -> None:
    record = ignored(parse_file(DEFENDER / OLD_SCHEMA))
    assert record.id == "alert:2518770965529163669_f144ee95-a3e5-42da-a279-967d115809aa"
    body = load(DEFENDER / OLD_SCHEMA)["responses"]["200"]["body"]
    body["properties"]["state"] = "Active"
    f = finding(parse_value(body, source="old.json"))
    assert (f.source, f.type, f.severity, f.status) == ("arm-alert-2019", "ThreatIntelligence", Severity.HIGH, "Active")
    assert f.id == record.id
    assert f.resource_id.endswith("/virtualMachines/vm1")
    assert f.extended_properties["attacker ip"] == "192.0.2.1"


def test_export_alert_resolves_refs_to_nested_entities() -> None:
    f = finding(parse_file(DEFENDER / SUMO_ALERT))
    assert f.id == "alert:57963b4b-3cb0-dc3a-16ed-f1e216311809"
    assert (f.severity, f.status) == (Severity.INFORMATIONAL, "New")
    cluster, ref = f.entities
    assert cluster["type"] == "K8s-cluster"
    # {"$ref": "5"} is the CloudResource object nested inside entity $id 4: resolved, and shared
    assert ref is cluster["cloudresource"]
    assert ref["type"] == "azure-resource"
    assert ref["resourcename"] == "k8s--295-aks1-28-otc-dev-v4"
    assert ref["metadata"] == {"isgraphcenter": True}
    assert f.extended_properties["productcomponentname"] == "Containers"
    assert f.extended_properties["webhook configuration rules"].startswith('[{"apiGroups"')
    assert f.resource_type == "Microsoft.ContainerService/managedClusters"


def test_duplicate_ids_resolve_to_the_latest_preceding_definition() -> None:
    line = (DEFENDER / ELASTIC_NDJSON).read_text(encoding="utf-8").splitlines()[4]
    alert = json.loads(line)
    alert["AlertType"], alert["AlertDisplayName"] = "ARM_AnomalousServiceOperation.CredentialAccess", "Login"
    f = finding(parse_value(alert, source="elastic:5"))
    by_type = [(e["type"], e) for e in f.entities]
    first_process = next(e for t, e in by_type if t == "process")
    # "$id": "5" is defined 5 times; the process's Host {"$ref": "5"} means the host written just before it
    assert first_process["host"]["type"] == "host"
    assert first_process["host"]["hostname"] == "Sample-VM"
    container = next(e for t, e in by_type if t == "container")
    assert container["image"] == {"$ref": "4"}  # never defined: kept as a reference, not invented
    assert json.dumps([dict(e) for e in f.entities])
    # the ResourceIdentifiers name only the subscription; AzureResourceId names the VM inside it
    assert f.resource_id.endswith("/virtualMachines/Sample-VM")


def test_effective_resource_id_is_preferred_and_keeps_its_casing() -> None:
    alert = load(DEFENDER / GRAFANA_ALERT)
    alert["AlertType"], alert["AlertDisplayName"] = "KV_ListGetAnomaly", "Suspicious secret listing"
    alert["ExtendedProperties"]["EffectiveAzureResourceId"] = (
        "/subscriptions/11111111-1111-1111-1111-1111111111/resourceGroups/Sample-RG/providers/"
        "Microsoft.KeyVault/vaults/Other-KV")
    f = finding(parse_value(alert, source="x"))
    assert f.resource_id.endswith("/Microsoft.KeyVault/vaults/Other-KV")
    assert (f.resource_type, f.resource_group) == ("Microsoft.KeyVault/vaults", "Sample-RG")


def test_subscription_scope_alert_prefers_the_more_specific_entity() -> None:
    f = finding(parse_file(CRAFTED / ARM_SCOPE))
    assert f.resource_type == "Microsoft.Storage/storageAccounts"
    assert f.subscription_id == SUB_CRAFTED
    assert f.resource_group == "rg-data"
    alert = load(CRAFTED / ARM_SCOPE)
    del alert["Entities"][1]  # no specific resource left: the subscription it is
    f = finding(parse_value(alert, source="x"))
    assert (f.resource_id, f.resource_type) == (f"/subscriptions/{SUB_CRAFTED}", "")


def test_open_acl_alert_names_its_container() -> None:
    f = finding(parse_file(CRAFTED / OPEN_ACL))
    assert blob_containers(f) == ("public-images",)
    blob = next(e for e in f.entities if e["type"] == "blob")
    assert blob["blobcontainer"]["type"] == "blob-container"  # the $ref resolved
    assert f.extended_properties["container"] == "public-images"
    assert f.resource_id == (f"/subscriptions/{SUB_CRAFTED}/resourceGroups/rg-data/providers/"
                             "Microsoft.Storage/storageAccounts/contosodata01")  # EffectiveAzureResourceId


def test_blob_containers_from_each_source_deduplicated() -> None:
    alert = load(CRAFTED / OPEN_ACL)
    alert["ExtendedProperties"]["Container name"] = "Public-Images"  # same container, other casing
    alert["Entities"].append({"Type": "blob", "Name": "x.txt", "Container": "logs"})
    alert["Entities"].append({"Type": "blob", "Name": "y.txt",
                              "Url": "https://contosodata01.blob.core.windows.net/exports/2025/y.txt"})
    alert["Entities"].append({"Type": "blob-container", "Name": "backups"})
    f = finding(parse_value(alert, source="x"))
    assert blob_containers(f) == ("public-images", "logs", "exports", "backups")
    del alert["ExtendedProperties"]["Container"], alert["ExtendedProperties"]["Container name"]
    alert["Entities"] = alert["Entities"][:1]
    assert blob_containers(finding(parse_value(alert, source="x"))) == ()


def test_simulated_alerts_are_ignored_by_type_or_title() -> None:
    for name in (GRAFANA_ALERT, DEMISTO):
        record = ignored(parse_file(DEFENDER / name))
        assert record.reason.startswith("simulated alert SIMULATED_KV_ListGetAnomaly")
        assert record.kind == "alert"
        assert record.id
        assert record.id.startswith("alert:")
    alert = load(DEFENDER / GRAFANA_ALERT)
    alert["AlertType"] = "KV_ListGetAnomaly"  # a real type, but the title still says sample
    assert "simulated" in ignored(parse_value(alert, source="x")).reason
    alert["AlertType"] = "simulated_kv_listgetanomaly"
    alert["AlertDisplayName"] = "Suspicious secret listing"
    assert "simulated" in ignored(parse_value(alert, source="x")).reason


@pytest.mark.parametrize(("status", "finding_expected"),
                         [("New", True), ("Active", True), ("InProgress", True),
                          ("Resolved", False), ("Dismissed", False), ("dismissed", False)])
def test_alert_status(status: str, finding_expected: bool) -> None:
    alert = load(CRAFTED / OPEN_ACL)
    alert["Status"] = status
    record = only(parse_value(alert, source="x"))
    assert isinstance(record, Finding) is finding_expected
    if isinstance(record, Ignored):
        assert record.reason.startswith(f"alert status {status}: already")
        assert record.id


def test_log_analytics_row_with_json_string_columns() -> None:
    f = finding(parse_file(CRAFTED / "crafted__log-analytics__SecurityAlert_row.json"))
    assert (f.severity, f.title, f.status) == (Severity.HIGH, "Successful SSH brute force attack", "New")
    assert f.extended_properties["number of failed authentication attempts to host"] == "412"
    host, account, _ip = f.entities
    assert account["host"] is host


# --------------------------------------------------------------------------- activity log


def test_activity_log_event_is_an_alert_finding() -> None:
    f = finding(parse_file(DEFENDER / ACTIVITY_LOG))
    assert f.id == "alert:2518250008431989649_e7313e05-edf4-466d-adfd-35974921aeff"  # the alert name = systemAlertId
    assert (f.kind, f.severity, f.status) == ("alert", Severity.LOW, "Active")
    assert f.resource_type == "Microsoft.Security/locations/alerts"
    assert f.extended_properties["compromisedentity"] == "ASC-IGNITE-DEMO"
    assert f.extended_properties["intent"] == '["Persistence"]'


def test_activity_log_webhooks_legacy_and_common_schema() -> None:
    legacy = finding(parse_file(DEFENDER / SSH_WEBHOOK))
    assert (legacy.id, legacy.severity, legacy.title) == (
        "alert:sec-07f2-4d74-aaf0-03d2f53d5a33", Severity.MEDIUM, "Failed SSH brute force attack")
    assert legacy.extended_properties["compromisedentity"] == "LinuxVM1"
    common = finding(parse_file(CRAFTED / COMMON_SCHEMA))
    assert (common.title, common.severity) == ("Defender alert on vm-app-01", Severity.LOW)
    assert common.id == "alert:2517059427718829999_7d3e9f41-2c8b-4a06-9e15-b0c4d7a2f863"


def test_other_activity_log_and_monitor_payloads_are_ignored() -> None:
    webhook = load(DEFENDER / SSH_WEBHOOK)
    webhook["data"]["context"]["activityLog"]["operationName"] = "Microsoft.Insights/actionGroups/write"
    assert ignored(parse_value(webhook, source="x")).reason == (
        "Activity Log event Microsoft.Insights/actionGroups/write is not a Defender alert activation or a watched "
        "ARM write")
    metric = {"schemaId": "azureMonitorCommonAlertSchema",
              "data": {"essentials": {"monitoringService": "Platform", "signalType": "Metric"},
                       "alertContext": {"conditionType": "SingleResourceMultipleMetricCriteria"}}}
    reason = ignored(parse_value(metric, source="x")).reason
    assert reason == "Azure Monitor alert from Platform is not a Defender finding"
    records = {"records": [{"time": "2025-01-20T09:12:00Z", "resourceId": "/SUBSCRIPTIONS/X", "category": "AuditEvent",
                            "operationName": "SecretGet"},
                           {"time": "2025-01-20T09:12:00Z", "category": {"value": "StorageRead"}}]}
    assert [r.reason for r in parse_value(records, source="x") if isinstance(r, Ignored)] == [
        "Activity Log event SecretGet is not a Defender alert activation or a watched ARM write",
        "not a Defender record: diagnostic log category StorageRead"]


# --------------------------------------------------------------------------- assessments


def test_management_ports_assessment() -> None:
    f = finding(parse_file(DEFENDER / ELASTIC_PORTS))
    assert (f.kind, f.status, f.severity) == ("recommendation", "Unhealthy", Severity.UNKNOWN)  # no metadata
    assert f.title == "Management ports should be closed on your virtual machines"
    assert f.description == "Management ports on your network security group are open to all sources."
    assert f.additional_data == {"nsg open ports": "22"}
    assert (f.resource_type, f.resource_group) == ("Microsoft.Compute/virtualMachines", "DEFENDER_CLOUD_GROUP")
    assert f.principal_id is None
    assert f.id.startswith("assessment:")


def test_identity_assessment_carries_the_principal() -> None:
    f = finding(parse_file(DEFENDER / ELASTIC_IDENTITY))
    assert f.principal_id == "abcdefaf-aaaa-4568-abcd-e98765567892"
    assert (f.resource_id, f.resource_type, f.subscription_id) == (
        SUB_ELASTIC, "", "5abcdef6-1234-5678-8912-e1234abcdef1")
    assert f.additional_data["subassessment"]["properties"]["status"]["severity"] == "High"


def test_identity_sub_assessment_acts_at_the_subscription() -> None:
    sub = load(DEFENDER / ELASTIC_IDENTITY)["properties"]["additionalData"]["subAssessment"]
    f = finding(parse_value(sub, source="x"))
    assert (f.source, f.kind, f.type) == ("sub-assessment", "recommendation", "05abcdef-3dda-1234-abcd-81234567890f")
    assert (f.principal_id, f.resource_id, f.resource_type) == ("abcdefaf-aaaa-4568-abcd-e98765567892", SUB_ELASTIC, "")
    assert (f.severity, f.status) == (Severity.HIGH, "Unhealthy")


def test_assessment_metadata_severity_and_policy() -> None:
    f = finding(parse_value(unhealthy(load(DEFENDER / SUMO_RECOMMENDATION)), source="x"))
    assert (f.severity, f.type) == (Severity.LOW, "1f655fb7-63ca-4980-91a3-56dbc2b715c6")
    assert f.policy_definition_id == (
        "/providers/Microsoft.Authorization/policyDefinitions/fc9b3da7-8347-4380-8e70-0a0361d8dedd")
    assert f.title.startswith("Vulnerabilities in security configuration")
    assert f.description == (
        "Remediate vulnerabilities in security configuration on your Linux machines to protect them from attacks.")


def test_assessment_resource_falls_back_to_the_id_prefix() -> None:
    record = unhealthy(load(DEFENDER / SUMO_RECOMMENDATION))
    del record["properties"]["resourceDetails"]
    f = finding(parse_value(record, source="x"))
    assert f.resource_id == ("/subscriptions/1111111-1111-1111-111-11111111/resourceGroups/AppServiceEnvV3_group/"
                             "providers/Microsoft.Compute/virtualMachines/ase-ext-test")


def test_snapshots_are_findings_and_dedupe_with_the_original_event() -> None:
    original = unhealthy(load(DEFENDER / SUMO_RECOMMENDATION))
    snapshot = copy.deepcopy(original)
    for key in ("assessmentEventDataEnrichment", "securityEventDataEnrichment"):
        snapshot[key].update(isSnapshot=True, action="Write")
    first, again = finding(parse_value(original, source="a")), finding(parse_value(snapshot, source="b"))
    assert first.id == again.id
    assert again.raw["assessmentEventDataEnrichment"]["isSnapshot"] is True
    # unhealthy again later: a new status change date, a new finding
    later = copy.deepcopy(original)
    later["properties"]["status"]["statusChangeDate"] = "2025-01-02T00:00:00Z"
    assert finding(parse_value(later, source="c")).id != first.id


def test_assessment_ids_differ_per_resource_and_key() -> None:
    base = unhealthy(load(DEFENDER / SUMO_RECOMMENDATION))
    other_vm = copy.deepcopy(base)
    other_vm["properties"]["resourceDetails"]["id"] += "-2"
    other_key = copy.deepcopy(base)
    other_key["name"] = "bc303248-3d14-44c2-96a0-55f5c326b5fe"
    ids = {finding(parse_value(r, source="x")).id for r in (base, other_vm, other_key)}
    assert len(ids) == 3


def test_sub_assessment_resource_prefers_the_native_arm_id_over_an_image_reference() -> None:
    f = finding(parse_value(unhealthy(load(DEFENDER / GRAFANA_SUB)), source="x"))
    assert f.resource_id == ("/subscriptions/11111111-1111-1111-1111-1111111111/resourceGroups/resource-group/"
                             "providers/Microsoft.ContainerService/managedClusters/aks-cluster")
    assert f.type == "c609cf0f-71ab-41e9-a3c6-9a1f7fe1b8d5"
    assert f.additional_data["artifactdetails"]["registryhost"] == "11111111.azurecr.io"


def test_spec_sub_assessment_targets_the_registry() -> None:
    f = finding(parse_file(DEFENDER / SPEC_SUB))
    assert (f.severity, f.title, f.status) == (Severity.HIGH, "'Back Orifice' Backdoor", "Unhealthy")
    assert f.resource_type == "Microsoft.ContainerRegistry/registries"
    assert f.additional_data["cvss"] == {"2.0": {"base": 10}, "3.0": {"base": 10}}


def test_pascal_case_sub_assessment_with_type_discriminators() -> None:
    line = (DEFENDER / ELASTIC_NDJSON).read_text(encoding="utf-8").splitlines()[3]
    record = json.loads(line)
    for key in ("SubAssessmentEventDataEnrichment", "SecurityEventDataEnrichment"):
        record[key]["Action"] = "Insert"
    f = finding(parse_value(record, source="x"))
    assert (f.type, f.severity) == ("c476dc48-8110-4139-91af-c8d940896b98", Severity.LOW)
    assert f.title == "Ensure DCCP is disabled"
    assert f.resource_type == "microsoft.compute/virtualmachines"
    assert f.additional_data["data"]["azid"] == "MSID 54"


def test_assessment_without_status_code_is_an_error() -> None:
    record = load(DEFENDER / ELASTIC_PORTS)
    del record["properties"]["status"]["code"]
    message = payload_error(lambda: parse_value(record, source="ports.json"))
    assert message == "ports.json: properties.status.code is missing, expected Healthy, Unhealthy or NotApplicable"


# --------------------------------------------------------------------------- Azure Policy / Event Grid


def test_policy_noncompliance_event_grid_schema() -> None:
    f = finding(parse_file(CRAFTED / POLICY_EG))
    assert (f.kind, f.type, f.severity, f.status) == ("policy", ACR_ADMIN_POLICY, Severity.UNKNOWN, "NonCompliant")
    assert f.resource_type == "Microsoft.ContainerRegistry/registries"
    assert (f.subscription_id, f.resource_group) == (SUB_CRAFTED, "rg-platform")
    assert f.policy_definition_id == f"/providers/microsoft.authorization/policydefinitions/{ACR_ADMIN_POLICY}"
    assert f.policy_assignment_id
    assert f.policy_assignment_id.endswith("/policyassignments/acr-local-admin-disabled")
    assert f.title == f"Azure Policy non-compliance: {ACR_ADMIN_POLICY}"
    assert f.additional_data["compliancestate"] == "NonCompliant"
    assert f.id.startswith("policy:")


def test_policy_noncompliance_cloudevents() -> None:
    f = finding(parse_file(CRAFTED / POLICY_CE))
    assert f.title == "Azure Policy non-compliance: containerRegistriesShouldHaveLocalAdminAccountDisabled"
    eg = finding(parse_file(CRAFTED / POLICY_EG))
    assert f.id != eg.id  # another assignment (the initiative) of the same definition
    event = load(CRAFTED / POLICY_CE)[0]
    event["data"]["policyAssignmentId"] = eg.policy_assignment_id
    assert finding(parse_value(event, source="x")).id == eg.id  # same state, either schema: same id


def test_policy_compliant_and_deleted_are_ignored() -> None:
    compliant, deleted = parse_file(CRAFTED / POLICY_OTHER)
    assert isinstance(compliant, Ignored)
    assert compliant.type == ACR_ADMIN_POLICY
    assert compliant.resource_id == REGISTRY
    assert isinstance(deleted, Ignored)
    assert deleted.kind == "policy"


def test_policy_event_missing_data_is_an_error() -> None:
    event = load(CRAFTED / POLICY_EG)
    del event[0]["data"]["complianceState"]
    assert payload_error(lambda: parse_value(event, source="eg.json")) == (
        "eg.json: record 1: data.complianceState is missing, expected a non-empty string")


# --------------------------------------------------------------------------- identity and case


def test_parsing_never_mutates_the_input() -> None:
    for name, record in _fixture_records():
        before = copy.deepcopy(record)
        parse_value(record, source=name)
        assert record == before, name


def test_same_alert_gives_the_same_id_in_every_envelope() -> None:
    alert = load(DEFENDER / SUMO_ALERT)
    line = json.dumps(alert)
    payloads = [
        line, f"[{line}]", f'{{"records": [{line}]}}', f'{{"value": [{line}], "nextLink": "https://x"}}',
        f"{line}\n", "\ufeff" + line, json.dumps(alert, indent=4),
    ]
    ids = {finding(parse_bytes(p, source="x")).id for p in payloads}
    ids.add(finding(parse_bytes(line.encode("utf-16"), source="x")).id)  # PowerShell 5 Out-File
    ids.add(finding(parse_bytes(("\ufeff" + line).encode("utf-16"), source="x")).id)
    assert ids == {"alert:57963b4b-3cb0-dc3a-16ed-f1e216311809"}
    twice = parse_bytes(f"{line}\n{line}\n", source="x")
    assert len(twice) == 2
    assert twice[0] == twice[1]


def test_distinct_findings_have_distinct_ids() -> None:
    records: list[Record] = []
    for path in [*DEFENDER.iterdir(), *CRAFTED.glob("crafted__*")]:
        records.extend(parse_file(path))
    found = [r for r in records if isinstance(r, Finding)]
    by_id = {f.id: f for f in found}
    # the 2022 spec examples (single GET and list) are the same alert; everything else is distinct
    assert len(found) - len(by_id) == 1


@pytest.mark.parametrize("name", [SUMO_ALERT, OPEN_ACL, ARM_ALERT, POLICY_CE, ELASTIC_IDENTITY, SPEC_SUB,
                                  ACTIVITY_LOG,
                                  "crafted__log-analytics__SecurityAlert_row.json"])
def test_upper_cased_keys_parse_the_same(name: str) -> None:
    path = DEFENDER / name if (DEFENDER / name).exists() else CRAFTED / name
    original = parse_file(path)
    shouting = parse_value(upper_keys(load(path)), source="upper")
    assert shouting == original  # Finding equality ignores raw, compares everything else
    assert any(isinstance(r, Finding) for r in shouting)


# --------------------------------------------------------------------------- envelopes and NDJSON


def test_elastic_ndjson_parses_line_by_line() -> None:
    records = parse_file(DEFENDER / ELASTIC_NDJSON)
    assert [type(r).__name__ for r in records] == ["Ignored"] * 5
    sources = [r.source for r in records if isinstance(r, Ignored)]
    assert sources == ["", "assessment", "", "sub-assessment", "export-alert"]


def test_ndjson_bad_line_names_its_number(tmp_path: Path) -> None:
    lines = (DEFENDER / ELASTIC_NDJSON).read_text(encoding="utf-8").splitlines()
    path = tmp_path / "batch.ndjson"
    path.write_text("\n".join([lines[0], "", lines[1], '{"truncated": ', lines[2]]) + "\n", encoding="utf-8")
    message = payload_error(lambda: parse_file(path))
    assert message.startswith(f"{path}:4: not JSON: ")


def test_ndjson_unknown_record_names_its_line() -> None:
    line = (DEFENDER / SUMO_ALERT).read_text(encoding="utf-8").replace("\n", " ")
    message = payload_error(lambda: parse_bytes(f'{line}\n{{"foo": 1, "bar": 2}}\n', source="x.ndjson"))
    assert message == (
        "x.ndjson:2: no known shape: expected a Defender alert (AlertType/properties.alertType), an assessment "
        "(type Microsoft.Security/assessments), a sub-assessment, an Event Grid policy event, or a policy state "
        "(complianceState and policyDefinitionId); found keys: foo, bar")


def test_pretty_document_with_trailing_junk_reports_the_document_error() -> None:
    text = json.dumps({"a": 1}, indent=2) + "\n}"
    assert payload_error(lambda: parse_bytes(text, source="x.json")) == (
        "x.json:4: not JSON: trailing characters (column 1)")


def test_spec_example_envelope_and_arm_list() -> None:
    record = parse_file(DEFENDER / "restapispecs__2022-01-01__GetAlertsResourceGroup_example_LIST.json")
    assert [r.id for r in record if isinstance(r, Finding)] == [
        "alert:2518298467986649999_4d25bfef-2d77-4a08-adc0-3e35715cc92a"]


def test_all_ignored_payload_is_not_an_error() -> None:
    records = parse_file(DEFENDER / METRICS)
    assert len(records) == 2
    assert all(isinstance(r, Ignored) for r in records)
    assert parse_bytes(b'{"value": []}', source="x") == []


def test_unknown_record_in_a_batch_fails_the_batch_naming_its_index() -> None:
    batch = [load(DEFENDER / SUMO_ALERT), {"hello": "world", "n": 1}]
    message = payload_error(lambda: parse_value(batch, source="batch.json"))
    assert message.startswith("batch.json: record 2: no known shape: expected a Defender alert")
    assert message.endswith("found keys: hello, n")
    # a bare diagnostic-looking record outside a records envelope is not guessed at
    assert "no known shape" in payload_error(lambda: parse_value({"category": "AuditEvent"}, source="x"))


# --------------------------------------------------------------------------- hostile input


def test_empty_and_whitespace_payloads(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert payload_error(lambda: parse_file(empty)) == f"{empty}: empty payload (no JSON value)"
    assert payload_error(lambda: parse_bytes(" \n\t\r\n", source="ws")) == "ws: empty payload (no JSON value)"
    assert payload_error(lambda: parse_bytes(b"\xef\xbb\xbf", source="bom")) == "bom: empty payload (no JSON value)"


def test_missing_file_is_a_payload_error(tmp_path: Path) -> None:
    assert "cannot read" in payload_error(lambda: parse_file(tmp_path / "nope.json"))


def test_truncated_json() -> None:
    text = (DEFENDER / SUMO_ALERT).read_text(encoding="utf-8")
    message = payload_error(lambda: parse_bytes(text[: len(text) // 2], source="findings/x.json"))
    assert message.startswith("findings/x.json:")
    assert ": not JSON: " in message
    assert payload_error(lambda: parse_bytes('{"a": 1,\n "b" 2}', source="x.json")) == (
        "x.json:2: not JSON: expected `:` (column 6)")


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda a: a.update(Severity=5), Severity.UNKNOWN),
    (lambda a: a.update(Entities={}), Severity.INFORMATIONAL),
    (lambda a: a.update(Entities="not json"), Severity.INFORMATIONAL),
    (lambda a: a.update(ExtendedProperties=[1, 2]), Severity.INFORMATIONAL),
    (lambda a: a.update(ResourceIdentifiers={"a": 1}), Severity.INFORMATIONAL),
    (lambda a: a.update(Status=None), Severity.INFORMATIONAL),
])
def test_wrong_types_in_optional_fields_are_tolerated(mutate: Callable[[dict[str, Any]], None],
                                                     expected: Severity) -> None:
    alert = load(DEFENDER / SUMO_ALERT)
    mutate(alert)
    assert finding(parse_value(alert, source="x")).severity is expected


@pytest.mark.parametrize(("record", "message"), [
    ({"AlertType": "X", "SystemAlertId": 5}, "x: SystemAlertId is a number, expected a non-empty string"),
    ({"AlertType": "", "SystemAlertId": "a"}, "x: AlertType is an empty string, expected a non-empty string"),
    ({"AlertType": "X", "SystemAlertId": "a"}, "x: alert X names no Azure resource (EffectiveAzureResourceId, "
                                               "resourceIdentifiers[AzureResource], AzureResourceId or azure-resource "
                                               "entities)"),
    ({"type": "Microsoft.Security/assessments", "name": "k", "properties": "x"},
     "x: properties is a string, expected an object"),
    ({"type": "Microsoft.Security/assessments/subAssessments", "id": "/subscriptions/s/x", "properties": {}},
     "x: sub-assessment id does not contain /assessments/{key}/subAssessments/{id}"),
    ({"type": "Microsoft.Security/Locations/alerts", "properties": []},
     "x: properties is an array, expected an object"),
    ({"eventType": "Microsoft.PolicyInsights.PolicyStateChanged", "subject": "/subscriptions/s", "data": 3},
     "x: data is a number, expected an object"),
])
def test_wrong_types_in_essential_fields_are_one_line_errors(record: dict[str, Any], message: str) -> None:
    assert payload_error(lambda: parse_value(record, source="x")) == message


@pytest.mark.parametrize(("value", "message"), [
    (5, "x: expected a JSON object or array, found a number"),
    ("alert", "x: expected a JSON object or array, found a string"),
    (None, "x: expected a JSON object or array, found null"),
    ([1], "x: record 1: expected a JSON object, found a number"),
    ({"records": [{"AlertType": "X", "SystemAlertId": "a", "AzureResourceId": "/subscriptions/s"}, []]},
     "x: record 2: expected a JSON object, found an array"),
    ({}, "x: no known shape: expected a Defender alert (AlertType/properties.alertType), an assessment (type "
         "Microsoft.Security/assessments), a sub-assessment, an Event Grid policy event, or a policy state "
         "(complianceState and policyDefinitionId); "
         "found keys: none (empty object)"),
])
def test_non_record_values(value: object, message: str) -> None:
    assert payload_error(lambda: parse_value(value, source="x")) == message


def test_deep_nesting_is_a_clean_error() -> None:
    message = payload_error(lambda: parse_bytes(b"[" * 100_000, source="deep.json"))
    assert message == "deep.json:1: not JSON: nested too deeply (more than 200 levels) (column 202)"
    deep: Any = {}
    for _ in range(100_000):  # already-decoded values no JSON decoder would produce
        deep = [deep]
    assert payload_error(lambda: parse_value(deep, source="deep")) == (
        "deep: record 1: expected a JSON object, found an array")
    nested: Any = "x"
    for _ in range(100_000):
        nested = {"k": nested}
    alert = load(DEFENDER / SUMO_ALERT)
    alert["Entities"].append(nested)
    assert payload_error(lambda: parse_value(alert, source="a")) == "a: nested too deeply to be a Defender payload"
    envelopes: Any = [load(DEFENDER / SUMO_ALERT)]
    for _ in range(3):
        envelopes = [{"records": envelopes}]
    assert len(parse_value(envelopes, source="e")) == 1
    assert payload_error(lambda: parse_value({"value": envelopes}, source="e")) == (
        "e: record 1: record 1: record 1: more than 3 envelopes nested in each other")


def test_self_referencing_value_is_a_clean_error() -> None:
    alert = load(DEFENDER / SUMO_ALERT)
    loop: list[Any] = []
    loop.append(loop)
    alert["Entities"] = loop
    assert "nested too deeply" in payload_error(lambda: parse_value(alert, source="loop"))


def test_binary_garbage_and_bad_encodings() -> None:
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(4096))
    assert ": not JSON: " in payload_error(lambda: parse_bytes(garbage, source="bin"))
    assert payload_error(lambda: parse_bytes(b'{"a": "\xff\xfe"}', source="latin")).startswith("latin:1: not JSON: ")
    assert "not valid UTF-16" in payload_error(lambda: parse_bytes(b"\xff\xfe\x00\xd8", source="u16"))
    assert "not valid Unicode" in payload_error(lambda: parse_bytes('{"a": "\ud800"}', source="surrogate"))
    assert payload_error(lambda: parse_bytes(b"\x00\x01\x02", source="nul")).startswith("nul:1: not JSON: ")
    assert payload_error(lambda: parse_bytes(b'{"a": NaN}', source="nan")).startswith("nan:1: not JSON: ")
    wrong: Any = 42
    assert payload_error(lambda: parse_bytes(wrong, source="int")) == "int: payload is a number, expected bytes or text"


def test_twenty_megabyte_payloads() -> None:
    alert = json.dumps(load(DEFENDER / SUMO_ALERT))
    count = 20 * 1024 * 1024 // len(alert) + 1
    batch = ("\n".join([alert] * count)).encode()
    assert len(batch) > 20 * 1024 * 1024
    records = parse_bytes(batch, source="big.ndjson")
    assert len(records) == count
    assert len({r.id for r in records if isinstance(r, Finding)}) == 1
    blob = json.dumps({"records": [{"category": "x", "blob": "A" * (20 * 1024 * 1024)}]}).encode()
    assert len(parse_bytes(blob, source="blob")) == 1
    junk = b'{"x": "' + b"A" * (20 * 1024 * 1024)
    assert payload_error(lambda: parse_bytes(junk, source="junk")).startswith("junk:1: not JSON: ")
    assert payload_error(lambda: parse_bytes(batch, source="big", max_bytes=1024 * 1024)) == (
        f"big: payload is {len(batch)} bytes, over the limit of 1048576")


def test_source_names_cannot_break_the_one_line_rule() -> None:
    message = payload_error(lambda: parse_bytes(b"", source="evil\nname\u2028.json"))
    assert message == "evil name .json: empty payload (no JSON value)"


def _fixture_records() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted([*DEFENDER.iterdir(), *CRAFTED.glob("crafted__*")]):
        text = path.read_text(encoding="utf-8")
        values = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".ndjson" else [
            json.loads(text)]
        for value in values:
            for record in value if isinstance(value, list) else [value]:
                out.append((path.name, record))
    return out


HOSTILE_VALUES: list[Any] = [5, -1.5, True, None, "", "x", [], [1, "a"], {}, {"$ref": "1"}]


def test_fuzz_every_field_of_every_fixture_with_wrong_types() -> None:
    """Replace each top-level and ``properties``/``data`` field by each hostile value: a result or a one-line error."""
    cases, broken = 0, []
    for name, record in _fixture_records():
        for container_key in (None, "properties", "data", "Properties"):
            target = record if container_key is None else record.get(container_key)
            if not isinstance(target, dict):
                continue
            for key in list(target):
                for bad in HOSTILE_VALUES:
                    mutated = copy.deepcopy(record)
                    (mutated if container_key is None else mutated[container_key])[key] = bad
                    cases += 1
                    try:
                        result: list[object] = list(parse_value(mutated, source=name))
                    except PayloadError as err:
                        result = [] if "\n" not in str(err) else [err]
                    if not all(isinstance(r, Finding | Ignored) for r in result):
                        broken.append((name, key, bad))
    assert cases > 2000
    assert broken == []
