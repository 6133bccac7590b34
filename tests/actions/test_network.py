"""network.restrict-inbound: plan on saved ARM documents, then apply/verify/undo through the real SDK
against FakeArm, and the port-range arithmetic (with a property-based test)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from remediator.actions import ports
from remediator.actions.base import PlanContext
from remediator.actions.change import Change, without_etag
from remediator.actions.network import RestrictInbound, RestrictInboundParams
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.findings.model import Finding, Severity
from tests.support.builders import apply_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "arm"
SUB = "subid"
RG = "/subscriptions/subid/resourceGroups/rg1"
NSG_ID = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/testnsg"
SUBNET_NSG_ID = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/subnet-nsg"
VM_ID = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
NIC_ID = f"{RG}/providers/Microsoft.Network/networkInterfaces/vm1-nic"
VNET_ID = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet1"
SUBNET_ID = f"{VNET_ID}/subnets/default"
COMPLEMENT = ["0-21", "23-3388", "3390-5984", "5987-65535"]

ACTION = RestrictInbound()


# --- documents in the ARM REST shape -----------------------------------------------------------------

def fixture_body(name: str) -> dict[str, Any]:
    doc = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return copy.deepcopy(doc["responses"]["200"]["body"])


def rule(name: str, priority: int, *, ports_: str | list[str] = "22",
         source: str | list[str] = "*", access: str = "Allow", direction: str = "Inbound",
         protocol: str = "Tcp") -> dict[str, Any]:
    """A security rule as ARM's GET returns it: one of each singular/plural pair set, the other
    empty (the plural as [], the singular absent)."""
    props: dict[str, Any] = {
        "provisioningState": "Succeeded", "protocol": protocol, "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "access": access, "priority": priority, "direction": direction,
        "sourcePortRanges": [], "destinationAddressPrefixes": [],
    }
    if isinstance(ports_, list):
        props["destinationPortRanges"] = ports_
    else:
        props["destinationPortRange"] = ports_
        props["destinationPortRanges"] = []
    if isinstance(source, list):
        props["sourceAddressPrefixes"] = source
    else:
        props["sourceAddressPrefix"] = source
        props["sourceAddressPrefixes"] = []
    return {
        "name": name, "id": f"{NSG_ID}/securityRules/{name}",
        "etag": 'W/"00000000-0000-0000-0000-000000000001"',
        "type": "Microsoft.Network/networkSecurityGroups/securityRules", "properties": props,
    }


def nsg(*rules: dict[str, Any], nsg_id: str = NSG_ID) -> dict[str, Any]:
    """The NetworkSecurityGroupGet example (its default rules kept) with ``rules`` as securityRules
    (their ids moved under ``nsg_id``)."""
    doc = fixture_body("network__2024-05-01__NetworkSecurityGroupGet.json")
    doc["id"] = nsg_id
    for r in rules:
        r["id"] = f"{nsg_id}/securityRules/{r['name']}"
    doc["name"] = nsg_id.rsplit("/", 1)[-1]
    for d in doc["properties"]["defaultSecurityRules"]:
        d["id"] = f"{nsg_id}/defaultSecurityRules/{d['name']}"
    doc["properties"]["securityRules"] = list(rules)
    return doc


def vm(nic_ids: list[str]) -> dict[str, Any]:
    return {
        "id": VM_ID, "name": "vm1", "type": "Microsoft.Compute/virtualMachines", "location": "westus",
        "properties": {
            "vmId": "0f9a7e1e-3c4b-4a43-9c55-1d7b7b0c2b11", "provisioningState": "Succeeded",
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "networkProfile": {"networkInterfaces": [{"id": n, "properties": {"primary": i == 0}}
                                                     for i, n in enumerate(nic_ids)]},
        },
    }


def nic(nic_id: str = NIC_ID, nsg_id: str | None = NSG_ID, subnet_id: str = SUBNET_ID) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "virtualMachine": {"id": VM_ID},
        "ipConfigurations": [{
            "name": "ipconfig1", "id": f"{nic_id}/ipConfigurations/ipconfig1",
            "properties": {"privateIPAddress": "10.0.0.4", "privateIPAllocationMethod": "Dynamic",
                           "subnet": {"id": subnet_id}, "primary": True},
        }],
    }
    if nsg_id:
        props["networkSecurityGroup"] = {"id": nsg_id}
    return {"id": nic_id, "name": nic_id.rsplit("/", 1)[-1], "type": "Microsoft.Network/networkInterfaces",
            "location": "westus", "properties": props}


def vnet(subnet_nsg: str | None = SUBNET_NSG_ID) -> dict[str, Any]:
    subnet: dict[str, Any] = {"name": "default", "id": SUBNET_ID,
                              "type": "Microsoft.Network/virtualNetworks/subnets",
                              "properties": {"addressPrefix": "10.0.0.0/24",
                                             "provisioningState": "Succeeded"}}
    if subnet_nsg:
        subnet["properties"]["networkSecurityGroup"] = {"id": subnet_nsg}
    return {"id": VNET_ID, "name": "vnet1", "type": "Microsoft.Network/virtualNetworks", "location": "westus",
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [subnet]}}


def finding(resource_id: str = NSG_ID, **extra: Any) -> Finding:
    from remediator import ids

    rid = ids.parse(resource_id)
    return Finding(
        id="f1", kind="recommendation", type="bc303248-3d14-44c2-96a0-55f5c326b5fe",
        title="Management ports should be closed on your virtual machines", severity=Severity.MEDIUM,
        status="Unhealthy", resource_id=resource_id, subscription_id=rid.subscription_id,
        resource_group=rid.resource_group, resource_type=rid.type, source="assessment", **extra,
    )


def plan(docs: list[dict[str, Any]], resource_id: str = NSG_ID, **params: Any) -> list[Change]:
    ctx = PlanContext(finding=finding(resource_id), state=SavedState(docs))
    return ACTION.plan(ctx, ACTION.parse_params(params))


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, [c.note for c in changes]
    return changes[0]


def props_after(change: Change) -> dict[str, Any]:
    assert change.after is not None
    return dict(change.after["properties"])


# --- plan: which rules, and what happens to them ----------------------------------------------------

def test_world_open_ssh_rule_is_deleted_with_its_full_document_before() -> None:
    ssh = rule("allow-ssh", 100)
    change = only(plan([nsg(ssh)]))
    assert change.operation == "delete"
    assert change.resource_id == ssh["id"]
    assert change.before == ssh
    assert change.after is None
    assert change.action == "network.restrict-inbound"


def test_fixture_rule_on_port_80_and_default_rules_are_untouched() -> None:
    doc = fixture_body("network__2024-05-01__NetworkSecurityGroupGet.json")  # rule1: 80 from *
    assert plan([doc], resource_id=doc["id"]) == []


def test_default_rules_are_never_touched_even_when_open_to_the_world() -> None:
    doc = nsg()
    weird_default = rule("AllowAnyInBound", 65000, ports_="*")
    weird_default["id"] = f"{NSG_ID}/defaultSecurityRules/AllowAnyInBound"
    doc["properties"]["defaultSecurityRules"].append(weird_default)
    assert plan([doc]) == []


@pytest.mark.parametrize("source", ["10.0.0.0/8", "203.0.113.7", "VirtualNetwork", "AzureLoadBalancer",
                                    ["10.1.0.0/16", "192.168.0.0/24"]])
def test_rules_open_to_specific_sources_are_untouched(source: str | list[str]) -> None:
    assert plan([nsg(rule("from-office", 100, source=source))]) == []


@pytest.mark.parametrize("source",
                         ["*", "Internet", "internet", "INTERNET", "0.0.0.0/0", "::/0", "Any", "any"])
def test_every_spelling_of_the_world_is_recognised(source: str) -> None:
    assert only(plan([nsg(rule("r", 100, source=source))])).operation == "delete"


@pytest.mark.parametrize(("access", "direction", "protocol"), [
    ("Deny", "Inbound", "Tcp"), ("Allow", "Outbound", "Tcp"), ("Allow", "Inbound", "Icmp"),
    ("Allow", "Inbound", "Esp"), ("Allow", "Inbound", "Ah"),
])
def test_deny_outbound_and_portless_rules_are_untouched(access: str, direction: str, protocol: str) -> None:
    r = rule("r", 100, ports_="*", access=access, direction=direction, protocol=protocol)
    assert plan([nsg(r)]) == []


def test_rules_on_other_ports_are_untouched() -> None:
    assert plan([nsg(rule("web", 100, ports_=["80", "443"]), rule("alt", 110, ports_="8000-8080"))]) == []


def test_star_ports_rule_is_narrowed_to_the_exact_complement() -> None:
    any_port = rule("any-port", 100, ports_="*")
    change = only(plan([nsg(any_port)]))
    assert change.operation == "update"
    after = props_after(change)
    assert after["destinationPortRanges"] == COMPLEMENT
    assert "destinationPortRange" not in after  # ARM omits the singular when the list is used
    # everything else is the rule as it was
    def rest(props: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in props.items() if not k.startswith("destinationPortRange")}

    assert rest(after) == rest(any_port["properties"])
    assert change.after is not None
    assert {k: v for k, v in change.after.items() if k != "properties"} == \
        {k: v for k, v in any_port.items() if k != "properties"}


def test_source_address_prefixes_with_the_world_inside() -> None:
    only_world = rule("list-world", 100, source=["0.0.0.0/0"])
    assert only(plan([nsg(only_world)])).operation == "delete"

    mixed = rule("mixed", 100, source=["10.0.0.0/8", "0.0.0.0/0", "192.168.1.0/24"])
    change = only(plan([nsg(mixed)]))
    assert change.operation == "update"  # the specific sources keep their access, the world loses it
    assert props_after(change)["sourceAddressPrefixes"] == ["10.0.0.0/8", "192.168.1.0/24"]

    one_left = rule("one-left", 100, source=["Internet", "10.0.0.0/8"])
    after = props_after(only(plan([nsg(one_left)])))
    assert after["sourceAddressPrefix"] == "10.0.0.0/8"
    assert after["sourceAddressPrefixes"] == []


def test_destination_port_ranges_list_keeps_the_other_ports_verbatim() -> None:
    r = rule("web-and-admin", 100, ports_=["80", "443", "22", "3389", "8000-8100"])
    change = only(plan([nsg(r)]))
    assert props_after(change)["destinationPortRanges"] == ["80", "443", "8000-8100"]


def test_list_with_only_target_ports_is_deleted() -> None:
    assert only(plan([nsg(rule("admin", 100, ports_=["22", "3389"]))])).operation == "delete"


def test_ranges_are_split_around_target_ports() -> None:
    after = props_after(only(plan([nsg(rule("rdp-range", 100, ports_="3380-3390"))])))
    assert after["destinationPortRanges"] == ["3380-3388", "3390"]
    assert "destinationPortRange" not in after

    after = props_after(only(plan([nsg(rule("smtp-ssh", 100, ports_="20-25"))])))
    assert after["destinationPortRanges"] == ["20-21", "23-25"]


def test_a_list_that_shrinks_to_one_port_goes_back_to_the_singular_field() -> None:
    after = props_after(only(plan([nsg(rule("two", 100, ports_=["443", "22"]))])))
    assert after["destinationPortRange"] == "443"
    assert after["destinationPortRanges"] == []


def test_a_star_inside_a_port_list_is_understood() -> None:
    # seen in a real Entra Domain Services NSG: ["5986", "5987", "*"]
    after = props_after(only(plan([nsg(rule("ps-remoting", 301, ports_=["5986", "5987", "*"]))])))
    assert after["destinationPortRanges"] == ["5987", *COMPLEMENT]


def test_saved_empty_singular_field_is_kept_as_saved() -> None:
    r = rule("web-and-ssh", 320, ports_=["443", "22", "80"])
    r["properties"]["destinationPortRange"] = ""
    after = props_after(only(plan([nsg(r)])))
    assert after["destinationPortRange"] == ""
    assert after["destinationPortRanges"] == ["443", "80"]


def test_custom_ports_and_star() -> None:
    docs = [nsg(rule("sql", 100, ports_="1433"), rule("ssh", 110))]
    assert [c.resource_id.rsplit("/", 1)[-1] for c in plan(docs, ports=[1433])] == ["sql"]
    assert [c.operation for c in plan(docs, ports=["*"])] == ["delete", "delete"]
    assert [c.resource_id.rsplit("/", 1)[-1] for c in plan(docs, ports=["1400-1500"])] == ["sql"]


def test_defender_port_hint_is_only_information() -> None:
    ctx = PlanContext(finding=finding(NSG_ID, additional_data={"nsg open ports": "3389"}),
                      state=SavedState([nsg(rule("ssh", 100))]))
    change = only(ACTION.plan(ctx, ACTION.parse_params({})))
    assert change.resource_id.endswith("/ssh")  # the ports param decides, not the hint
    assert "Defender reported open ports: 3389" in change.note


def test_several_rules_in_one_nsg_in_document_order() -> None:
    docs = [nsg(rule("a-ssh", 100), rule("b-office", 110, source="203.0.113.0/24"),
                rule("c-any", 120, ports_="*"), rule("d-rdp", 130, ports_="3389", source="Internet"))]
    assert [(c.resource_id.rsplit("/", 1)[-1], c.operation) for c in plan(docs)] == \
        [("a-ssh", "delete"), ("c-any", "update"), ("d-rdp", "delete")]


# --- plan: resolving the NSGs ------------------------------------------------------------------------

def test_vm_resolves_to_nic_nsg_and_subnet_nsg() -> None:
    docs = [vm([NIC_ID]), nic(), vnet(), nsg(rule("nic-ssh", 100)),
            nsg(rule("subnet-rdp", 200, ports_="3389"), nsg_id=SUBNET_NSG_ID)]
    changes = plan(docs, resource_id=VM_ID)
    assert [c.resource_id for c in changes] == [f"{NSG_ID}/securityRules/nic-ssh",
                                                f"{SUBNET_NSG_ID}/securityRules/subnet-rdp"]


def test_vm_without_its_document_falls_back_to_nics_pointing_at_it() -> None:
    other_nic = nic(f"{RG}/providers/Microsoft.Network/networkInterfaces/other-nic", nsg_id=SUBNET_NSG_ID)
    other_vm = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm2"
    other_nic["properties"]["virtualMachine"] = {"id": other_vm}
    docs = [nic(), other_nic, vnet(subnet_nsg=None), nsg(rule("nic-ssh", 100)),
            nsg(rule("not-mine", 100), nsg_id=SUBNET_NSG_ID)]
    assert [c.resource_id for c in plan(docs, resource_id=VM_ID)] == [f"{NSG_ID}/securityRules/nic-ssh"]


def test_same_nsg_on_nic_and_subnet_is_planned_once() -> None:
    docs = [vm([NIC_ID]), nic(), vnet(subnet_nsg=NSG_ID), nsg(rule("ssh", 100))]
    assert len(plan(docs, resource_id=VM_ID)) == 1


def test_include_subnet_nsgs_false_skips_the_subnet() -> None:
    docs = [vm([NIC_ID]), nic(), nsg(rule("nic-ssh", 100)),
            nsg(rule("subnet-ssh", 100), nsg_id=SUBNET_NSG_ID)]  # no vnet saved: not needed
    changes = plan(docs, resource_id=VM_ID, include_subnet_nsgs=False)
    assert [c.resource_id.rsplit("/", 1)[-1] for c in changes] == ["nic-ssh"]


def test_nic_finding_and_nic_without_nsg() -> None:
    docs = [nic(nsg_id=None), vnet(), nsg(rule("subnet-ssh", 100), nsg_id=SUBNET_NSG_ID)]
    assert [c.resource_id.rsplit("/", 1)[-1] for c in plan(docs, resource_id=NIC_ID)] == ["subnet-ssh"]


def test_missing_subnet_plans_the_nic_nsg_and_warns_how_to_add_it() -> None:
    ctx = PlanContext(finding=finding(VM_ID), state=SavedState([vm([NIC_ID]), nic(), nsg(rule("ssh", 100))]))
    changes = ACTION.plan(ctx, ACTION.parse_params({}))
    assert [c.resource_id for c in changes] == [f"{NSG_ID}/securityRules/ssh"]
    assert ctx.warnings == [
        f"subnet {SUBNET_ID} not in the resource state: the NSG of the network interface's subnet was not "
        f"checked; add its virtual network with `az network vnet show --ids {VNET_ID} > vnet.json` to the "
        "--resources folder, or set include_subnet_nsgs: false"]


def test_missing_nic_of_several_and_missing_nsg_of_several_are_warnings() -> None:
    nic2 = f"{RG}/providers/Microsoft.Network/networkInterfaces/vm1-nic2"
    ctx = PlanContext(finding=finding(VM_ID), state=SavedState([vm([NIC_ID, nic2]), nic(), vnet(),
                                                                 nsg(rule("ssh", 100))]))
    changes = ACTION.plan(ctx, ACTION.parse_params({}))
    assert [c.resource_id for c in changes] == [f"{NSG_ID}/securityRules/ssh"]
    assert [w.split(" not in ")[0] for w in ctx.warnings] == [f"network interface {nic2}",
                                                             f"network security group {SUBNET_NSG_ID}"]
    assert "az resource show --ids" in ctx.warnings[0]


def test_missing_documents_fail_loudly_in_one_line() -> None:
    with pytest.raises(ActionError, match="no network security group found on what the resource state holds, "
                                          "and 1 linked resource") as e:
        plan([vm([NIC_ID]), nic(nsg_id=None), nsg(rule("ssh", 100))], resource_id=VM_ID)
    assert "\n" not in str(e.value)
    assert f"subnet {SUBNET_ID} not in the resource state" in str(e.value)
    with pytest.raises(ActionError, match="network interface not found"):
        plan([vm([NIC_ID])], resource_id=VM_ID)
    with pytest.raises(ActionError, match="no network interface in its resource group"):
        plan([], resource_id=VM_ID)
    with pytest.raises(ActionError, match="network security group not found"):
        plan([], resource_id=NSG_ID)
    with pytest.raises(ActionError, match="no network security group on the network interfaces"):
        plan([vm([NIC_ID]), nic(nsg_id=None), vnet(subnet_nsg=None)], resource_id=VM_ID)
    with pytest.raises(ActionError, match="cannot resolve network security groups"):
        plan([], resource_id=f"{RG}/providers/Microsoft.Storage/storageAccounts/sa1")


# --- modes -------------------------------------------------------------------------------------------

def test_mode_deny_flips_a_target_only_rule_and_cuts_a_mixed_one() -> None:
    docs = [nsg(rule("ssh", 100), rule("web-ssh", 110, ports_=["443", "22"]))]
    flip, cut = plan(docs, mode="deny")
    assert flip.operation == "update"
    assert props_after(flip)["access"] == "Deny"
    assert {k: v for k, v in props_after(flip).items() if k != "access"} == \
        {k: v for k, v in (flip.before or {})["properties"].items() if k != "access"}
    assert props_after(cut)["access"] == "Allow"
    assert props_after(cut)["destinationPortRange"] == "443"


def test_mode_narrow_replaces_the_source_of_a_target_only_rule() -> None:
    change = only(plan([nsg(rule("ssh", 100))], mode="narrow", allowed_sources=["203.0.113.0/24"]))
    after = props_after(change)
    assert change.operation == "update"
    assert after["sourceAddressPrefix"] == "203.0.113.0/24"
    assert after["access"] == "Allow"

    change = only(plan([nsg(rule("ssh", 100, source=["10.0.0.0/8", "*"]))], mode="narrow",
                       allowed_sources=["203.0.113.0/24", "10.0.0.0/8", "AzureCloud.WestEurope"]))
    after = props_after(change)
    assert after["sourceAddressPrefixes"] == ["10.0.0.0/8", "203.0.113.0/24", "AzureCloud.WestEurope"]
    assert "sourceAddressPrefix" not in after


def test_mode_narrow_splits_a_mixed_rule_next_to_its_priority() -> None:
    web = rule("web-and-ssh", 300, ports_=["443", "22", "80"])
    create, update = plan([nsg(web, rule("other", 310, source="10.0.0.0/8"))], mode="narrow",
                          allowed_sources=["203.0.113.0/24"])
    assert create.operation == "create"
    assert create.before is None
    assert create.resource_id == f"{NSG_ID}/securityRules/web-and-ssh-restricted"
    assert create.after == {
        "name": "web-and-ssh-restricted", "id": create.resource_id,
        "type": "Microsoft.Network/networkSecurityGroups/securityRules",
        "properties": {
            "protocol": "Tcp", "sourcePortRange": "*", "destinationAddressPrefix": "*", "access": "Allow",
            "priority": 299, "direction": "Inbound", "sourcePortRanges": [], "destinationAddressPrefixes": [],
            "destinationPortRange": "22", "destinationPortRanges": [],
            "sourceAddressPrefix": "203.0.113.0/24", "sourceAddressPrefixes": [],
            "description": "Ports 22 of rule web-and-ssh, restricted by remediator to 203.0.113.0/24",
        },
    }
    assert update.operation == "update"
    assert props_after(update)["destinationPortRanges"] == ["443", "80"]
    assert props_after(update)["sourceAddressPrefix"] == "*"  # the other ports stay as open as they were


def test_mode_narrow_takes_the_next_free_adjacent_priority_and_unique_names() -> None:
    docs = [nsg(rule("any", 300, ports_="*"), rule("below", 299, source="10.0.0.0/8"),
                rule("any-restricted", 500, source="10.0.0.0/8"))]
    create, _ = plan(docs, mode="narrow", allowed_sources=["203.0.113.9"])
    assert props_after(create)["priority"] == 301
    assert props_after(create)["destinationPortRanges"] == ["22", "3389", "5985-5986"]
    assert create.resource_id.endswith("/any-restricted-2")


def test_mode_narrow_fails_when_no_adjacent_priority_is_free() -> None:
    docs = [nsg(rule("any", 300, ports_="*"), rule("a", 299, source="10.0.0.0/8"),
                rule("b", 301, source="10.0.0.0/8"))]
    with pytest.raises(ActionError, match="299 and 301 are taken"):
        plan(docs, mode="narrow", allowed_sources=["203.0.113.9"])


def test_priorities_planned_for_one_split_are_not_reused_by_the_next() -> None:
    docs = [nsg(rule("a", 300, ports_="*"), rule("b", 302, ports_="*"))]
    changes = plan(docs, mode="narrow", allowed_sources=["203.0.113.9"])
    assert [props_after(c)["priority"] for c in changes if c.operation == "create"] == [299, 301]


# --- params ------------------------------------------------------------------------------------------

def test_defaults() -> None:
    p = RestrictInboundParams()
    assert p.ports == [22, 3389, 5985, 5986]
    assert p.mode == "remove"
    assert p.allowed_sources == []
    assert p.include_subnet_nsgs is True


@pytest.mark.parametrize(("params", "message"), [
    ({"mode": "narrow"}, "mode 'narrow' needs allowed_sources"),
    ({"mode": "narrow", "allowed_sources": ["*"]}, "whole Internet"),
    ({"mode": "narrow", "allowed_sources": ["0.0.0.0/0"]}, "whole Internet"),
    ({"mode": "narrow", "allowed_sources": ["Internet"]}, "whole Internet"),
    ({"mode": "narrow", "allowed_sources": ["10.0.0.0/33"]}, "neither a CIDR"),
    ({"allowed_sources": ["10.0.0.0/8"]}, "applies only to mode 'narrow'"),
    ({"ports": [70000]}, "less than or equal to 65535"),
    ({"ports": ["25-20"]}, "empty range"),
    ({"ports": ["ssh"]}, "should match pattern"),
    ({"ports": []}, "at least 1 item"),
    ({"mode": "close"}, "'remove', 'deny' or 'narrow'"),
    ({"port": [22]}, "Extra inputs are not permitted"),
])
def test_invalid_params_are_validation_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ACTION.parse_params(params)


def test_params_schema_is_published_with_descriptions() -> None:
    schema = RestrictInboundParams.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"ports", "mode", "allowed_sources", "include_subnet_nsgs"}
    assert all(p.get("description") for p in schema["properties"].values())


def test_declared_role_and_permissions() -> None:
    assert ACTION.role.name == "Network Contributor"
    assert ACTION.role.id == "4d97b98b-1d4f-4787-a291-c67834d212e7"
    assert set(ACTION.permissions) == {f"Microsoft.Network/networkSecurityGroups/securityRules/{op}"
                                       for op in ("read", "write", "delete")}
    assert ACTION.reversible


# --- undo ----------------------------------------------------------------------------------------------

def test_undo_inverts_each_operation() -> None:
    ssh = rule("ssh", 100)
    delete = only(plan([nsg(ssh)]))
    # an undo's documents carry no ETag (what remediator wrote is stale by construction; the applier
    # puts the one it verified back, so the undo's write is conditional on that)
    assert ACTION.undo(delete) == Change(action=ACTION.name, resource_id=ssh["id"], operation="create",
                                         before=None, after=without_etag(ssh), note=ACTION.undo(delete).note)
    update = only(plan([nsg(rule("any", 100, ports_="*"))]))
    back = ACTION.undo(update)
    assert (back.operation, back.before, back.after) == ("update", without_etag(update.after),
                                                         without_etag(update.before))
    create, _ = plan([nsg(rule("web", 300, ports_=["443", "22"]))], mode="narrow",
                     allowed_sources=["10.1.2.3"])
    gone = ACTION.undo(create)
    assert (gone.operation, gone.before, gone.after) == ("delete", without_etag(create.after), None)


# --- port arithmetic ---------------------------------------------------------------------------------------

def test_port_helpers() -> None:
    assert ports.parse_range("*") == (0, 65535)
    assert ports.parse_range(" 3380 - 3390 ") == (3380, 3390)
    assert ports.subtract_specs(["*"], ports.parse_ranges([22, 3389, 5985, 5986])) == COMPLEMENT
    assert ports.subtract_specs(["80", "20-25"], [(22, 22)]) == ["80", "20-21", "23-25"]
    management = ports.parse_ranges([22, 3389, 5985, 5986])
    assert ports.intersect_specs(["*"], management) == ["22", "3389", "5985-5986"]
    assert ports.normalize([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == [(1, 9), (20, 30)]
    for bad in ("", "-1", "65536", "a-b", "5-4", "1-2-3"):
        with pytest.raises(ports.PortSpecError):
            ports.parse_range(bad)
    with pytest.raises(ports.PortSpecError):
        ports.parse_range(True)


_port = st.integers(min_value=0, max_value=65535)
_spec = st.one_of(
    st.just("*"),
    _port.map(str),
    st.tuples(_port, _port).map(lambda t: f"{min(t)}-{max(t)}"),
)
_target = st.one_of(_port, st.tuples(_port, st.integers(0, 3000)).map(
    lambda t: f"{t[0]}-{min(65535, t[0] + t[1])}"))


def _inside(port: int, ranges: list[ports.PortRange]) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(_spec, min_size=1, max_size=5), targets=st.lists(_target, min_size=1, max_size=6))
def test_subtraction_removes_exactly_the_target_ports(specs: list[str], targets: list[int | str]) -> None:
    target_ranges = ports.parse_ranges(targets)
    allowed = [ports.parse_range(s) for s in specs]
    remaining = [ports.parse_range(s) for s in ports.subtract_specs(specs, target_ranges)]
    hit = [ports.parse_range(s) for s in ports.intersect_specs(specs, target_ranges)]
    # Membership in a union of ranges only changes at a range's ends, so checking every end and its
    # neighbours of every range involved checks all 65536 ports.
    probes = {0, 65535} | {p + d for lo, hi in (*allowed, *target_ranges, *remaining, *hit)
                           for p in (lo, hi) for d in (-1, 0, 1) if 0 <= p + d <= 65535}
    for port in probes:
        was_open, target = _inside(port, allowed), _inside(port, target_ranges)
        assert _inside(port, remaining) == (was_open and not target), port  # no target port; all others kept
        assert _inside(port, hit) == (was_open and target), port


def test_subtraction_oracle_on_full_sets() -> None:
    specs = ["*", "20-25", "3389", "5000-6000"]
    target_ranges = ports.parse_ranges([22, "3380-3390", 5985, 5986])
    remaining = ports.expand(ports.parse_range(s) for s in ports.subtract_specs(specs, target_ranges))
    assert remaining == set(range(65536)) - ports.expand(target_ranges)


# --- apply / verify / undo through the real SDK against FakeArm -----------------------------------------

NETWORK_API_VERSION = "2026-03-01"  # azure-mgmt-network 33.x default (reference §4)


def live_state(arm: Any) -> Any:
    from remediator.azure.reader import LiveState

    return LiveState(arm.clients())


def network_estate() -> list[dict[str, Any]]:
    return [vm([NIC_ID]), nic(), vnet(),
            nsg(rule("ssh", 100), rule("any-port", 110, ports_="*"),
                rule("office", 120, source="203.0.113.0/24")),
            nsg(rule("rdp", 200, ports_="3389", source="Internet"), nsg_id=SUBNET_NSG_ID)]


def live_plan(arm: Any, resource_id: str = VM_ID, **params: Any) -> list[Change]:
    ctx = PlanContext(finding=finding(resource_id), state=live_state(arm))
    return ACTION.plan(ctx, ACTION.parse_params(params))


def test_plan_through_live_state_only_reads_and_equals_the_saved_plan(arm: Any) -> None:
    arm.load(network_estate())
    changes = live_plan(arm)
    assert arm.writes == []
    assert {r.method for r in arm.requests} == {"GET"}
    saved = plan(network_estate(), resource_id=VM_ID)
    assert [c.to_json() for c in changes] == [c.to_json() for c in saved]
    assert [c.resource_id.rsplit("/", 1)[-1] for c in changes] == ["ssh", "any-port", "rdp"]


def test_apply_delete_polls_the_operation_verifies_and_undo_recreates(arm: Any) -> None:
    arm.load(network_estate())
    change = live_plan(arm)[0]
    arm.reset_log()

    result = ACTION.apply(arm.clients(), change)
    assert result.change is change
    writes = arm.writes
    assert [(w.method, w.path, w.query) for w in writes] == \
        [("DELETE", change.resource_id, {"api-version": NETWORK_API_VERSION})]
    assert any(r.method == "GET" and r.path.startswith("/_operations/") for r in arm.requests)  # LRO polled
    assert arm.get(change.resource_id) is None
    assert ACTION.verify(live_state(arm), change) is None

    arm.reset_log()
    undo = ACTION.undo(change)
    ACTION.apply(arm.clients(), undo)
    (put,) = arm.writes
    assert (put.method, put.path) == ("PUT", change.resource_id)
    assert put.query == {"api-version": NETWORK_API_VERSION}
    before = dict((change.before or {})["properties"])
    before.pop("provisioningState")
    assert put.body == {"properties": before}
    assert ACTION.verify(live_state(arm), undo) is None
    assert ACTION.verify(live_state(arm), change) == "security rule ssh still exists"


def test_apply_update_puts_the_full_rule_and_verifies(arm: Any) -> None:
    arm.load(network_estate())
    change = next(c for c in live_plan(arm) if c.resource_id.endswith("/any-port"))
    arm.reset_log()
    result = ACTION.apply(arm.clients(), change)
    (put,) = arm.writes
    assert (put.method, put.path) == ("PUT", change.resource_id)
    assert put.body == {"properties": {
        "protocol": "Tcp", "sourcePortRange": "*", "destinationAddressPrefix": "*", "access": "Allow",
        "priority": 110, "direction": "Inbound", "sourcePortRanges": [], "destinationAddressPrefixes": [],
        "destinationPortRanges": COMPLEMENT, "sourceAddressPrefix": "*", "sourceAddressPrefixes": [],
    }}
    polls = [r for r in arm.requests if r.path.startswith("/_operations/")]
    assert len(polls) >= 2  # Azure-AsyncOperation: InProgress, then Succeeded
    assert result.response is not None
    assert result.response["properties"]["destinationPortRanges"] == COMPLEMENT
    state = live_state(arm)
    assert ACTION.verify(state, change) is None
    # the NSG as a whole now reads back with the narrowed rule inside
    assert ACTION.plan(PlanContext(finding=finding(VM_ID), state=state), ACTION.parse_params({}))[0] \
        .resource_id.endswith("/ssh")

    ACTION.apply(arm.clients(), ACTION.undo(change))
    assert (arm.get(change.resource_id) or {})["properties"]["destinationPortRange"] == "*"
    assert ACTION.verify(live_state(arm), ACTION.undo(change)) is None


def test_verify_reports_a_rule_that_does_not_hold_the_plan(arm: Any) -> None:
    arm.load(network_estate())
    change = next(c for c in live_plan(arm) if c.resource_id.endswith("/any-port"))
    problem = ACTION.verify(live_state(arm), change)  # not applied yet
    assert problem is not None
    assert problem.startswith("security rule any-port differs from the plan: destinationPortRanges is ['*']")
    recreate = ACTION.undo(only(plan([nsg(rule("x", 100))])))
    assert ACTION.verify(live_state(arm), recreate) == "security rule x does not exist"


def test_narrow_split_applies_create_then_update(arm: Any) -> None:
    arm.load([nsg(rule("web-and-ssh", 300, ports_=["443", "22"]))])
    create, update = live_plan(arm, NSG_ID, mode="narrow", allowed_sources=["203.0.113.0/24"])
    arm.reset_log()
    for c in (create, update):
        ACTION.apply(arm.clients(), c)
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in arm.writes] == \
        [("PUT", "web-and-ssh-restricted"), ("PUT", "web-and-ssh")]
    state = live_state(arm)
    assert ACTION.verify(state, create) is None
    assert ACTION.verify(state, update) is None
    assert live_plan(arm, NSG_ID, mode="narrow", allowed_sources=["203.0.113.0/24"]) == []  # compliant now
    for c in (ACTION.undo(update), ACTION.undo(create)):
        ACTION.apply(arm.clients(), c)
    assert arm.get(create.resource_id) is None
    assert ACTION.verify(live_state(arm), ACTION.undo(update)) is None


def test_another_operation_in_progress_is_one_line_action_error(arm: Any) -> None:
    arm.load(network_estate())
    change = next(c for c in live_plan(arm) if c.operation == "update")
    text = apply_error(arm, ACTION, change, ("PUT", "/securityRules/", 409), code="AnotherOperationInProgress",
                       message="Another operation on this or dependent resource is in progress.\n"
                               "Retry the request later.")
    assert "409 AnotherOperationInProgress: Another operation on this or dependent resource is in " \
           "progress. Retry the request later." in text
    assert text.startswith("network.restrict-inbound: write of security rule testnsg/any-port failed")

    arm.fail_next("DELETE", "/securityRules/ssh", 409, body={"error": {
        "code": "AnotherOperationInProgress", "message": "busy"}})
    with pytest.raises(ActionError, match="delete of security rule testnsg/ssh failed: 409"):
        ACTION.apply(arm.clients(), live_plan(arm)[0])


def test_apply_refuses_what_is_not_a_rule_change(arm: Any) -> None:
    bogus = Change(action=ACTION.name, resource_id=NSG_ID, operation="delete", before={}, after=None)
    with pytest.raises(ActionError, match="not a security rule id"):
        ACTION.apply(arm.clients(), bogus)
    assert arm.requests == []
