"""The private endpoint helper on the real embedded connection shapes (Cognitive Services and Key
Vault REST examples): approved or not, and who closing public access or the firewall cuts off."""

from __future__ import annotations

from typing import Any

from remediator.actions.private_endpoints import connections, cut_off, has_approved_private_endpoint
from tests.support.builders import arm_fixture, example_connection

SUBNET = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net/providers/"
          "Microsoft.Network/virtualNetworks/hub/subnets/apps")


def _account(*conns: dict[str, Any], acls: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = arm_fixture("cognitiveservices__2024-10-01__GetAccount.json")
    doc["properties"]["privateEndpointConnections"] = list(conns)
    if acls is not None:
        doc["properties"]["networkAcls"] = acls
    return doc


def _conn(status: str = "Approved", fixture: str = "cognitiveservices__2024-10-01__GetPrivateEndpointConnection.json"
          ) -> dict[str, Any]:
    return example_connection(status, fixture)


def test_connections_parse_the_real_shapes() -> None:
    [cs] = connections(_account(_conn()))
    assert cs.approved
    assert cs.label == "petest01"
    assert cs.private_endpoint_id.endswith("/privateEndpoints/petest01")
    [kv] = connections({"properties": {"privateEndpointConnections": [
        _conn(fixture="keyvault__2023-07-01__getPrivateEndpointConnection.json")]}})
    assert kv.approved
    assert kv.label == "sample-pe"


def test_only_approved_counts() -> None:
    assert has_approved_private_endpoint(_account(_conn()))
    assert not has_approved_private_endpoint(_account(_conn("Pending"), _conn("Rejected")))
    assert not has_approved_private_endpoint(arm_fixture("cognitiveservices__2024-10-01__GetAccount.json"))
    assert not has_approved_private_endpoint({"properties": {"privateEndpointConnections": "junk"}})
    assert not has_approved_private_endpoint(None)
    assert has_approved_private_endpoint(_account(_conn("approved")))  # case-insensitive


def test_closing_public_access_keeps_only_private_endpoints() -> None:
    acls = {"defaultAction": "Allow", "ipRules": [{"value": "203.0.113.0/24"}], "virtualNetworkRules": []}
    c = cut_off(_account(_conn("Pending"), acls=acls), closing="public")
    assert c.everyone
    assert c.sentence == ("cuts off every client: no approved private endpoint (1 connection not approved: "
                          "petest01 Pending)")
    c = cut_off(_account(_conn(), acls=acls), closing="public")
    assert not c.everyone
    assert c.ip_rules == ()
    assert c.sentence == "cuts off every client except 1 approved private endpoint (petest01)"


def test_default_deny_keeps_rules_old_and_new() -> None:
    doc = _account(acls={"defaultAction": "Allow", "ipRules": [{"value": "203.0.113.0/24"}]})
    c = cut_off(doc, closing="default", add_ip_rules=["203.0.113.0/24", "198.51.100.7"], add_subnets=[SUBNET])
    assert c.ip_rules == ("203.0.113.0/24", "198.51.100.7")
    assert c.sentence == ("cuts off every client except 2 IP rules (203.0.113.0/24, 198.51.100.7), "
                          "1 virtual network rule (apps)")
    bare = cut_off(_account(), closing="default")
    assert bare.everyone
    assert bare.sentence == "cuts off every client: no approved private endpoint and no IP or virtual network rule"
