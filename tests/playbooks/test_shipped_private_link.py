"""The shipped playbooks on live-shaped documents (tests/fixtures/live/): with the private-link settings every
public AI-estate resource plans its private path in one plan; without them nothing closes a resource that
nobody could then reach."""

from __future__ import annotations

from typing import Any

import pytest

from remediator import ids
from remediator.actions.private_link_table import PrivateLinkSettings
from remediator.azure.state import SavedState
from remediator.planning.planner import Planner
from tests.support.builders import assessment_arm, parse_one, policy_event
from tests.support.engine import PLAYBOOKS
from tests.support.live import live, live_documents

SUB = "6a2f1c3e-9b4d-4e1a-8c7f-2d5e8b9a0c41"
SUBNET = (f"/subscriptions/{SUB}/resourceGroups/rg-hub-network/providers/Microsoft.Network/virtualNetworks/"
          "vnet-hub-weu/subnets/snet-private-endpoints")
DNS = f"/subscriptions/{SUB}/resourceGroups/rg-private-dns/providers/Microsoft.Network/privateDnsZones"
ZONES = [d for d in live_documents() if str(d.get("type")).lower() == "microsoft.network/privatednszones"]
SETTINGS = PrivateLinkSettings(subnets={"westeurope": SUBNET}, zones={str(z["name"]): str(z["id"]) for z in ZONES})

# (live document, the finding that asks for the fix: a policy id or a Defender assessment key, the playbook,
#  the group ids, the zones)
CASES = [
    ("cognitiveservices__account_openai.json", "d6759c02-b87f-42b7-892e-71b3f471d782", "private-link", ["account"],
     [["privatelink.openai.azure.com"]]),
    ("cognitiveservices__account_aiservices.json", "assessment:54f53ddf-6ebd-461e-a247-394c542bc5d1", "private-link",
     ["account"], [["privatelink.cognitiveservices.azure.com", "privatelink.openai.azure.com",
                    "privatelink.services.ai.azure.com"]]),
    ("cognitiveservices__account_cognitiveservices.json", "assessment:f738efb8-005f-680d-3d43-b3db762d6243",
     "cognitive-restrict-network-access", ["account"], [["privatelink.cognitiveservices.azure.com"]]),
    ("search__service.json", "0fda3595-9f2b-4592-8675-4231d6fa82fe", "private-link", ["searchService"],
     [["privatelink.search.windows.net"]]),
    ("cosmosdb__account_sql.json", "58440f8a-10c5-4151-bdce-dfbaad4a20b7", "private-link", ["Sql"],
     [["privatelink.documents.azure.com"]]),
    ("cosmosdb__account_mongodb.json", "58440f8a-10c5-4151-bdce-dfbaad4a20b7", "private-link", ["MongoDB"],
     [["privatelink.mongo.cosmos.azure.com"]]),
    ("keyvault__vault.json", "assessment:52f7826a-ace7-3107-dd0d-4875853c1576", "keyvault-restrict-network-access",
     ["vault"], [["privatelink.vaultcore.azure.net"]]),
    ("keyvault__vault.json", "a6abeaec-4d90-4a02-805f-6b26c4d3fbe9", "private-link", ["vault"],
     [["privatelink.vaultcore.azure.net"]]),
    ("keyvault__vault.json", "9d4fad1f-5189-4a42-b29e-cf7929c6b6df", "private-link", ["vault"],  # the DINE one
     [["privatelink.vaultcore.azure.net"]]),
    ("machinelearning__workspace.json", "7838fd83-5cbb-4b5d-888c-bfa240972597", "private-link", ["amlworkspace"],
     [["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"]]),
    ("search__service.json", "d6759c02-b87f-42b7-892e-71b3f471d782", "private-link", ["searchService"],
     [["privatelink.search.windows.net"]]),  # the AI services definition covers Search too
    ("machinelearning__workspace.json", "438c38d2-3772-465a-a9cc-7a6666a275ce", "ml-disable-public-network-access",
     ["amlworkspace"], [["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"]]),
    ("machinelearning__hub.json", "45e05259-1eb5-4f70-9574-baf73e9d219b", "private-link", ["amlworkspace"],
     [["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"]]),
    ("storage__account.json", "b2982f36-99f2-4db5-8eff-283140c09693", "storage-disable-public-network-access",
     ["blob"], [["privatelink.blob.core.windows.net"]]),
    ("storage__account_hns.json", "6edd7eda-6dd8-40f7-810d-67160c639cd9", "private-link", ["blob", "dfs"],
     [["privatelink.blob.core.windows.net"], ["privatelink.dfs.core.windows.net"]]),
    ("containerregistry__registry_premium.json", "assessment:9b828565-a0ed-61c2-6bf3-1afc99a9b2ca",
     "acr-restrict-network-access", ["registry"], [["privatelink.azurecr.io"]]),
]


def finding(doc: dict[str, Any], key: str) -> Any:
    rid = str(doc["id"])
    if key.startswith("assessment:"):
        return parse_one(assessment_arm(rid, key.split(":", 1)[1]))
    return parse_one(policy_event(rid, key))


def planner(link: PrivateLinkSettings | None) -> Planner:
    return Planner(playbooks=PLAYBOOKS, state=SavedState(live_documents()), private_link=link)


@pytest.mark.parametrize(("name", "key", "playbook", "groups", "zones"), CASES,
                         ids=[f"{c[0].removesuffix('.json')}-{c[2]}" for c in CASES])
def test_with_the_settings_each_public_resource_plans_its_private_path(name: str, key: str, playbook: str,
                                                                       groups: list[str],
                                                                       zones: list[list[str]]) -> None:
    doc = live(name)
    result = planner(SETTINGS).plan_one(finding(doc, key))
    assert (result.outcome, result.playbook, result.warnings) == ("changes", playbook, ()), result.reason
    changes = list(result.changes)
    close = changes.pop()
    assert (close.operation, close.resource_id) == ("update", doc["id"])
    assert str(close.after["properties"]["publicNetworkAccess"]).lower() == "disabled"
    assert len(changes) == 2 * len(groups)
    for group, zone_names, pe, zg in zip(groups, zones, changes[::2], changes[1::2], strict=True):
        assert ids.resource_type(pe.resource_id) == "Microsoft.Network/privateEndpoints"
        assert ids.parse(pe.resource_id).resource_group == ids.parse(str(doc["id"])).resource_group  # same sub
        assert pe.after["properties"]["subnet"]["id"] == SUBNET
        assert pe.after["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] == [group]
        assert [c["properties"]["privateDnsZoneId"] for c in zg.after["properties"]["privateDnsZoneConfigs"]] == \
            [f"{DNS}/{z}" for z in zone_names]


@pytest.mark.parametrize(("name", "key", "playbook"), [(c[0], c[1], c[2]) for c in CASES],
                         ids=[f"{c[0].removesuffix('.json')}-{c[2]}" for c in CASES])
def test_without_the_settings_nothing_closes_a_resource_nobody_could_reach(name: str, key: str,
                                                                          playbook: str) -> None:
    result = planner(None).plan_one(finding(live(name), key))
    assert (result.outcome, result.playbook, result.changes) == ("error", playbook, ()), result.reason
    assert "cuts off every client" in result.reason
    assert "private_link_subnets" in result.reason


def test_a_basic_registry_and_an_ml_project_are_refused_in_one_line() -> None:
    basic = planner(SETTINGS).plan_one(finding(live("containerregistry__registry_basic.json"),
                                               "e8eef0a8-67cf-4eb4-9386-14b0e78733d4"))
    assert basic.outcome == "error"
    assert "private endpoints need the Premium SKU; this container registry is Basic" in basic.reason
    project = planner(SETTINGS).plan_one(finding(live("machinelearning__project.json"),
                                                 "45e05259-1eb5-4f70-9574-baf73e9d219b"))
    assert project.outcome == "error"
    assert "a project is reached through its hub's private endpoint" in project.reason
