"""Network interface, subnet and flow log settings (``NETWORK_INTERFACE``, ``SUBNET``, ``FLOW_LOG``).

Each is written by PUT (network resources change properties only so; their PATCH is UpdateTags), the document the
plan read with the change, without the spec's read-only properties:

``network.disable-ip-forwarding``  ``enableIPForwarding: false`` on a network interface (Azure Policy
    88c0b9da-ce96-4b03-9635-f29a937e2900).
``network.remove-public-ips``  every ``ipConfigurations[].publicIPAddress`` of a network interface removed
    (83a86a26-fd1f-447c-b59d-e51f44264114); the public IP resources stay, so undo associates them again.
``network.disable-default-outbound``  ``defaultOutboundAccess: false`` on a subnet, or on each subnet of a
    virtual network finding (7bca8353-aa3b-429b-904a-9229c4385837, "Subnets should be private").
``network.enable-flow-log``  ``enabled: true`` on a flow log (27960feb-a23c-4577-8d36-ef8b5f35e0be).

All reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator import ids
from remediator.actions.base import Example, PlanContext, register
from remediator.actions.change import Change
from remediator.actions.profiles import FLOW_LOG, NETWORK_INTERFACE, SUBNET
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.errors import ActionError

VNET_TYPE = "Microsoft.Network/virtualNetworks"
_NIC_READ_ONLY = ("properties.provisioningState", "properties.resourceGuid", "properties.macAddress",
                  "properties.virtualMachine", "properties.primary", "properties.vnetEncryptionSupported",
                  "properties.hostedWorkloads", "properties.tapConfigurations", "properties.privateEndpoint",
                  "properties.dscpConfiguration", "properties.dnsSettings.appliedDnsServers",
                  "properties.dnsSettings.internalFqdn", "properties.dnsSettings.internalDomainNameSuffix",
                  "properties.ipConfigurations.*.properties.provisioningState")


class _Nic(PropertyAction[NoParams]):
    profile = NETWORK_INTERFACE
    method = "PUT"
    read_only = _NIC_READ_ONLY


@register
class DisableIpForwarding(_Nic):
    """Set enableIPForwarding to false: the interface drops traffic not addressed to it."""

    name = "network.disable-ip-forwarding"
    settings = (Setting("properties.enableIPForwarding", False, absent=False),)
    breaks = ("a VM acting as a router, firewall or NAT appliance (an NVA) stops forwarding: the routes through it "
              "black-hole")
    example = Example("Network interfaces do not forward traffic for others.",
                      why="Network interfaces should disable IP forwarding",
                      policies=("88c0b9da-ce96-4b03-9635-f29a937e2900",))


@register
class RemovePublicIps(_Nic):
    """Remove the public IP addresses from a network interface's IP configurations."""

    name = "network.remove-public-ips"
    settings = (Setting("properties.ipConfigurations", None),)
    breaks = ("everything that reaches the VM through its public IP (RDP/SSH, published services) stops; its "
              "outbound traffic leaves through the subnet's NAT gateway or load balancer, or not at all")
    example = Example("VMs in the AI estate have no public IP addresses.",
                      why="Network interfaces should not have public IPs",
                      policies=("83a86a26-fd1f-447c-b59d-e51f44264114",))

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        configs = get_path(doc, "properties.ipConfigurations", [])
        out = []
        for config in configs if isinstance(configs, list) else []:
            if isinstance(config, Mapping) and isinstance(config.get("properties"), Mapping):
                props = {k: v for k, v in config["properties"].items() if k != "publicIPAddress"}
                out.append({**config, "properties": props})
            else:
                out.append(config)
        return {"properties.ipConfigurations": out}

    def same(self, path: str, have: Any, want: Any) -> bool:
        """IP configurations compare by which of them (by name) have a public IP, and which one: the service
        fills in their read-only members (provisioningState) itself."""
        if path == "properties.ipConfigurations" and isinstance(have, list) and isinstance(want, list):
            return _public_ips(have) == _public_ips(want)
        return super().same(path, have, want)


def _public_ips(configs: list[Any]) -> dict[str, str]:
    out = {}
    for config in configs:
        name = str(config.get("name", "")) if isinstance(config, Mapping) else ""
        pip = get_path(config, "properties.publicIPAddress.id") if isinstance(config, Mapping) else None
        out[name] = str(pip).lower() if pip else ""
    return out


@register
class DisableDefaultOutbound(PropertyAction[NoParams]):
    """Set a subnet's defaultOutboundAccess to false: VMs need an explicit way out (NAT gateway, firewall)."""

    name = "network.disable-default-outbound"
    profile = SUBNET
    resource_types = (SUBNET.type, VNET_TYPE)
    finding_only = (VNET_TYPE,)
    method = "PUT"
    read_only = ("properties.provisioningState", "properties.ipConfigurations", "properties.purpose",
                 "properties.privateEndpoints", "properties.serviceAssociationLinks",
                 "properties.resourceNavigationLinks", "properties.ipConfigurationProfiles")
    settings = (Setting("properties.defaultOutboundAccess", False, absent=True),)
    breaks = ("VMs in the subnet without a NAT gateway, load balancer outbound rule or public IP lose Internet "
              "egress once they are next deallocated or created (package installs, model downloads)")
    example = Example("Subnets give no implicit Internet egress.",
                      why="Subnets should be private", policies=("7bca8353-aa3b-429b-904a-9229c4385837",))

    def plan(self, ctx: PlanContext, params: NoParams) -> list[Change]:
        if ids.type_key(ctx.finding.resource_type) != ids.type_key(VNET_TYPE):
            return super().plan(ctx, params)
        vnet = ctx.state.get(ctx.finding.resource_id)
        if vnet is None:
            raise ActionError("virtual network not found", action=self.name, resource_id=ctx.finding.resource_id)
        subnets = get_path(vnet, "properties.subnets", [])
        changes: list[Change] = []
        for subnet in subnets if isinstance(subnets, list) else []:
            sid = subnet.get("id") if isinstance(subnet, Mapping) else None
            if isinstance(sid, str) and sid:
                changes += self.plan_for(ctx, params, sid)
        return changes


@register
class EnableFlowLog(PropertyAction[NoParams]):
    """Set a flow log's enabled to true: the network's flows are recorded again."""

    name = "network.enable-flow-log"
    profile = FLOW_LOG
    method = "PUT"
    read_only = ("properties.provisioningState", "properties.targetResourceGuid")
    settings = (Setting("properties.enabled", True, absent=False),)
    breaks = "nothing stops; flow records are written to the flow log's storage account again (billed)"
    example = Example("Flow logs of the estate's networks are on.",
                      why="All flow log resources should be in enabled state",
                      policies=("27960feb-a23c-4577-8d36-ef8b5f35e0be",))
