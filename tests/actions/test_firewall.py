"""The firewall family gives the same answer on every service: every registered firewall action (found
by its base class, not listed by hand) takes the same IP and subnet inputs to the same result, plans
the same rule (written in the service's own notation), and closes the same way."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.actions.change import Change
from remediator.actions.firewall import FirewallAction, ip_key
from remediator.actions.properties import get_path
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from tests.support.builders import make_finding, private_endpoint_connection

FIREWALLS = sorted((name, action) for name, action in REGISTRY.items() if isinstance(action, FirewallAction))
NAMES = [name for name, _ in FIREWALLS]
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/hub/subnets/apps"

# input -> the one answer: the normalised value, or a refusal (a piece of its message)
IP_ANSWERS: list[tuple[str, str]] = [
    ("203.0.113.0/24", "203.0.113.0/24"),
    (" 198.51.100.0/25 ", "198.51.100.0/25"),
    ("203.0.113.7", "203.0.113.7"),
    ("203.0.113.7/32", "203.0.113.7"),  # a /32 is one address, everywhere
    ("203.0.113.6/31", "refused: /31 ranges are not supported"),
    ("100.64.1.0/24", "refused: shared address space, RFC 6598"),  # carrier-grade NAT, everywhere
    ("10.1.0.0/16", "refused: private, RFC 1918"),
    ("172.16.0.1", "refused: private, RFC 1918"),
    ("192.168.1.0/24", "refused: private, RFC 1918"),
    ("127.0.0.1", "refused: loopback"),
    ("169.254.10.0/24", "refused: link-local"),
    ("224.0.0.1", "refused: multicast"),
    ("0.0.0.0/0", "refused: the whole Internet"),
    ("2001:db8::/32", "refused: IPv4 addresses and ranges only"),
    ("::ffff:203.0.113.7", "refused: IPv4 addresses and ranges only"),
    ("example.com", "refused: not an IPv4 address or CIDR range"),
    ("203.0.113.1/24", "refused: host bits set"),
]
SUBNET_ANSWERS: list[tuple[str, str]] = [
    (SUBNET, SUBNET),
    (f"  {SUBNET}  ", SUBNET),
    (SUBNET.rsplit("/subnets/", 1)[0], "refused: is not a subnet id"),  # the virtual network
    (SUBNET.lstrip("/"), "refused: is not a subnet id"),
    (SUBNET.replace("/resourceGroups/rg-net", ""), "refused: is not a subnet id"),
    ("apps", "refused: is not a subnet id"),
]


def test_the_family_is_found_in_the_registry() -> None:
    assert set(NAMES) >= {"storage.restrict-network-access", "cognitive.restrict-network-access",
                          "keyvault.restrict-network-access", "acr.restrict-network-access"}


def _answer(action: Any, key: str, value: str) -> str:
    try:
        params = action.parse_params({key: [value]})
    except ValidationError as e:
        return "refused: " + str(e.errors()[0]["msg"])
    return str(getattr(params, key)[0])


def _same(answer: str, expected: str) -> bool:
    return answer == expected or (expected.startswith("refused: ") and answer.startswith("refused: ")
                                  and expected.removeprefix("refused: ") in answer)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("value", "expected"), IP_ANSWERS)
def test_every_firewall_action_gives_the_same_answer_for_an_ip_range(name: str, value: str, expected: str) -> None:
    answer = _answer(REGISTRY[name], "allowed_ip_ranges", value)
    assert _same(answer, expected), (name, value, answer)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("value", "expected"), SUBNET_ANSWERS)
def test_every_firewall_action_gives_the_same_answer_for_a_subnet(name: str, value: str, expected: str) -> None:
    action = REGISTRY[name]
    answer = _answer(action, "allowed_subnet_ids", value)
    if not action.firewall.subnet_rules:  # a registry's rule set has no virtual network rules (data)
        assert "Extra inputs are not permitted" in answer
        return
    assert _same(answer, expected), (name, value, answer)


# --- plans -------------------------------------------------------------------------------------------

def _resource(action: Any, **props: Any) -> dict[str, Any]:
    rtype = action.profile.type
    rid = f"/subscriptions/{SUB}/resourceGroups/rg/providers/{rtype}/res1"
    return {"id": rid, "name": "res1", "type": rtype, "sku": {"name": "Premium", "tier": "Premium"},
            "properties": dict(props)}


def _plan(action: Any, doc: dict[str, Any], **params: Any) -> list[Change]:
    ctx = PlanContext(finding=make_finding(doc["id"]), state=SavedState([doc]))
    return list(action.plan(ctx, action.parse_params(params)))


def _rules(action: Any, change: Change) -> dict[str, Any]:
    rules = get_path(change.after, action.firewall.rules)
    assert isinstance(rules, dict)
    return rules


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("value", "expected"), [(v, e) for v, e in IP_ANSWERS if not e.startswith("refused")])
def test_the_same_rule_is_planned_in_the_services_notation(name: str, value: str, expected: str) -> None:
    action = REGISTRY[name]
    [change] = _plan(action, _resource(action), mode="firewall", allowed_ip_ranges=[value])
    rules = _rules(action, change)
    assert rules["defaultAction"] == "Deny"
    [rule] = rules["ipRules"]
    assert ip_key(rule["value"]) == ip_key(expected)
    assert rule["value"] == action.firewall.notation(expected)
    assert rule.get("action") == action.firewall.rule_action
    assert f"1 IP rule ({action.firewall.notation(expected)})" in change.note


@pytest.mark.parametrize("name", NAMES)
def test_a_rule_already_there_in_either_notation_is_not_added_twice(name: str) -> None:
    action = REGISTRY[name]
    for existing in ("203.0.113.7", "203.0.113.7/32"):
        doc = _resource(action)
        doc["properties"] = {**doc["properties"], **_rule_set(action, [{"value": existing}], "Allow")}
        [change] = _plan(action, doc, mode="firewall", allowed_ip_ranges=["203.0.113.7/32"])
        assert [r["value"] for r in _rules(action, change)["ipRules"]] == [existing]
        doc["properties"] = {**doc["properties"], **_rule_set(action, [{"value": existing}], "Deny")}
        assert _plan(action, doc, mode="firewall", allowed_ip_ranges=["203.0.113.7"]) == []


def _rule_set(action: Any, ip_rules: list[dict[str, str]], default: str) -> dict[str, Any]:
    return {action.firewall.rules.removeprefix("properties."): {"defaultAction": default, "ipRules": ip_rules}}


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].firewall.subnet_rules])
def test_the_same_subnet_rule_is_planned(name: str) -> None:
    action = REGISTRY[name]
    [change] = _plan(action, _resource(action), mode="firewall", allowed_subnet_ids=[SUBNET])
    [rule] = _rules(action, change)["virtualNetworkRules"]
    assert rule["id"] == SUBNET
    assert "1 virtual network rule (apps)" in change.note
    assert change.after is not None
    assert _plan(action, dict(change.after), mode="firewall", allowed_subnet_ids=[SUBNET.upper()]) == []


@pytest.mark.parametrize("name", NAMES)
def test_private_endpoints_and_who_is_cut_off_are_the_same_everywhere(name: str) -> None:
    action = REGISTRY[name]
    open_doc = _resource(action)
    with pytest.raises(ActionError, match=r"refused: cuts off every client: no approved private endpoint"):
        _plan(action, open_doc, mode="firewall", refuse_if_everyone_cut_off=True)
    assert _plan(action, open_doc, mode="firewall", refuse_if_everyone_cut_off=True,
                 allowed_ip_ranges=["203.0.113.0/24"])
    with pytest.raises(ActionError, match=f"refused: the {action.noun} has no approved private endpoint"):
        _plan(action, open_doc, mode="private-endpoint")
    behind = _resource(action, privateEndpointConnections=[private_endpoint_connection(open_doc["id"])])
    [change] = _plan(action, behind, mode="auto")
    assert get_path(change.after, "properties.publicNetworkAccess") == "Disabled"
    assert "cuts off every client except 1 approved private endpoint (pe1)" in change.note
    assert _plan(action, _resource(action, publicNetworkAccess="Disabled"), mode="firewall") == []
