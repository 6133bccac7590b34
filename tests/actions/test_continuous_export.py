"""``defender.restore-export`` and ``export_status``: what counts as a working continuous export, and what the plan
does about one that is not (offline: saved documents; the whole path against FakeArm is
tests/scenarios/test_continuous_export.py)."""

from __future__ import annotations

from typing import Any

import pytest

from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.actions.continuous_export import (
    AUTOMATION_NAME,
    EXPORT_POLICY,
    UNHEALTHY_RULES,
    export_finding,
    export_status,
)
from remediator.azure.state import SavedState
from remediator.config.settings import load_settings
from remediator.errors import ActionError, ConfigError
from tests.support.builders import continuous_export, make_finding

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
HUB = f"/subscriptions/{SUB}/resourceGroups/rg-rem/providers/Microsoft.EventHub/namespaces/ns-rem/eventhubs/export"
OTHER = f"/subscriptions/{SUB}/resourceGroups/rg-siem/providers/Microsoft.EventHub/namespaces/ns-siem/eventhubs/siem"
GROUP = {"id": f"/subscriptions/{SUB}/resourceGroups/rg-security", "name": "rg-security",
         "type": "Microsoft.Resources/resourceGroups", "location": "westeurope"}
ACTION = REGISTRY["defender.restore-export"]


def plan(docs: list[dict[str, Any]], **settings: Any) -> list[Any]:
    ctx = PlanContext(finding=make_finding(f"/subscriptions/{SUB}", kind="policy", type=EXPORT_POLICY),
                      state=SavedState(docs), settings={"export_event_hub_id": HUB, **settings})
    return ACTION.plan(ctx, ACTION.parse_params({}))


@pytest.mark.parametrize(("docs", "problem"), [
    ([], "missing"),
    ([continuous_export(SUB, OTHER)], "elsewhere"),
    ([continuous_export(SUB, HUB, enabled=False)], "disabled"),
    ([continuous_export(SUB, HUB, sources=("Alerts", "assessments"))], "sources"),
    ([continuous_export(SUB, HUB)], ""),
    # a SAS export names the namespace (its connection string, never returned, names the hub)
    ([continuous_export(SUB, HUB.rsplit("/eventhubs/", 1)[0])], ""),
    # of two to the hub, the enabled one counts
    ([continuous_export(SUB, HUB, name="old", enabled=False), continuous_export(SUB, HUB)], ""),
])
def test_export_status(docs: list[dict[str, Any]], problem: str) -> None:
    status = export_status(SUB, docs, hub=HUB.upper())  # ids compare without case
    assert status.problem == problem, status.line()
    assert status.ok is (problem == "")


def test_an_export_scoped_to_one_resource_group_is_widened_to_the_subscription() -> None:
    doc = continuous_export(SUB, HUB)
    doc["properties"]["scopes"] = [{"scopePath": f"/subscriptions/{SUB}/resourceGroups/rg-ai"}]
    status = export_status(SUB, [doc], hub=HUB)
    assert status.problem == "scope"
    assert status.line().endswith("it covers only part of the subscription (its scopes are resource groups)")
    (change,) = plan([doc])
    assert change.note.startswith("scopes: its resource groups -> the whole subscription")
    assert change.after["properties"]["scopes"] == [{"description": f"subscription {SUB}",
                                                    "scopePath": f"/subscriptions/{SUB}"}]
    assert ACTION.differences(change.after, doc) == ["covers only part of the subscription"]


def test_the_finding_is_one_per_subscription_whatever_is_wrong() -> None:
    missing = export_finding(export_status(SUB.upper(), [], hub=HUB))
    disabled = export_finding(export_status(SUB, [continuous_export(SUB, HUB, enabled=False)], hub=HUB))
    assert missing.id == disabled.id == f"continuous-export:{SUB}"
    assert (missing.kind, missing.type, missing.resource_id) == ("policy", EXPORT_POLICY, f"/subscriptions/{SUB}")
    assert missing.title.endswith("is missing")
    assert disabled.title.endswith("is disabled")


def test_a_missing_export_is_created_in_the_resource_group_with_the_unhealthy_rule_set() -> None:
    (change,) = plan([GROUP], export_resource_group="rg-security",
                     export_sources=("Alerts", "Assessments", "AssessmentsSnapshot"))
    assert change.operation == "create"
    assert change.resource_id.endswith(f"/resourceGroups/rg-security/providers/Microsoft.Security/automations/"
                                       f"{AUTOMATION_NAME}")
    props = change.after["properties"]
    assert props["isEnabled"] is True
    assert props["sources"] == [{"eventSource": "Alerts", "ruleSets": []},
                                {"eventSource": "Assessments", "ruleSets": [UNHEALTHY_RULES]},
                                {"eventSource": "AssessmentsSnapshot", "ruleSets": [UNHEALTHY_RULES]}]
    assert props["scopes"] == [{"description": f"subscription {SUB}", "scopePath": f"/subscriptions/{SUB}"}]
    assert change.after["location"] == "westeurope"
    assert ACTION.undo(change).operation == "delete"


def test_a_repair_keeps_what_the_export_had() -> None:
    doc = continuous_export(SUB, HUB, enabled=False, sources=("Alerts",))
    doc["properties"]["sources"][0]["ruleSets"] = [{"rules": [{"propertyJPath": "Severity", "propertyType": "String",
                                                               "expectedValue": "High", "operator": "Equals"}]}]
    (change,) = plan([doc])
    assert change.operation == "update"
    assert change.note == ("isEnabled: false -> true; sources: + Assessments, SubAssessments; it sends to export; its "
                           "other sources, rule sets and actions are kept")
    after = change.after["properties"]
    assert after["sources"][0] == doc["properties"]["sources"][0]
    assert after["actions"] == doc["properties"]["actions"]
    body = ACTION.body(change.after)
    assert set(body) == {"location", "etag", "properties"}  # the etag, as the spec's update examples send it
    assert body["etag"] == doc["etag"]
    assert ACTION.undo(change).after == {k: v for k, v in doc.items() if k != "etag"}


def test_an_export_that_is_right_plans_nothing() -> None:
    assert plan([continuous_export(SUB, HUB)]) == []


@pytest.mark.parametrize(("docs", "settings", "words"), [
    ([GROUP], {"export_event_hub_id": ""}, "set export_event_hub_id (REMEDIATOR_EXPORT_EVENT_HUB_ID"),
    ([GROUP], {"export_event_hub_id": OTHER.replace(SUB, "9d3f1c2e-0b4a-4e8f-a1d2-6c7b8e9f0a13")},
     "set export_resource_group (REMEDIATOR_EXPORT_RESOURCE_GROUP"),
    ([], {"export_resource_group": "rg-security"}, "resource group rg-security not found"),
    ([GROUP, continuous_export(SUB, OTHER, name=AUTOMATION_NAME)], {"export_resource_group": "rg-security"},
     f"{AUTOMATION_NAME} exists in rg-security but does not send to export"),
])
def test_refusals_name_what_to_set(docs: list[dict[str, Any]], settings: dict[str, Any], words: str) -> None:
    with pytest.raises(ActionError, match=words.replace("(", r"\(")):
        plan(docs, **settings)


def test_without_a_resource_group_the_hubs_own_is_used_in_its_subscription() -> None:
    rem = {**GROUP, "id": f"/subscriptions/{SUB}/resourceGroups/rg-rem", "name": "rg-rem"}
    (change,) = plan([rem])
    assert "/resourceGroups/rg-rem/providers/Microsoft.Security/automations/" in change.resource_id


def test_settings_are_checked_one_line_each() -> None:
    settings = load_settings({"REMEDIATOR_EXPORT_EVENT_HUB_ID": HUB, "REMEDIATOR_EXPORT_SILENCE": "2d",
                              "REMEDIATOR_EXPORT_SOURCES": "alerts, subassessments",
                              "REMEDIATOR_EXPORT_RESOURCE_GROUP": "rg-sec"})
    assert settings.export_sources == ("Alerts", "SubAssessments")
    assert settings.export_silence.days == 2
    with pytest.raises(ConfigError) as e:
        load_settings({"REMEDIATOR_EXPORT_EVENT_HUB_ID": HUB.rsplit("/eventhubs/", 1)[0],
                       "REMEDIATOR_EXPORT_SOURCES": "Alerts,PolicyStates", "REMEDIATOR_EXPORT_SILENCE": "10m"})
    assert [p.split(":")[0] for p in e.value.problems] == [
        "REMEDIATOR_EXPORT_EVENT_HUB_ID", "REMEDIATOR_EXPORT_SOURCES", "REMEDIATOR_EXPORT_SILENCE"]
    assert "expected the id of an Event Hub" in e.value.problems[0]
    assert "'PolicyStates' is not an event source of continuous export; valid: Assessments," in e.value.problems[1]
