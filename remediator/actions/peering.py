"""VNet peering actions: peerings to networks outside the approved list are removed; the rest are
narrowed.

``network.restrict-peerings`` acts on one peering (``…/virtualNetworks/{vnet}/virtualNetworkPeerings/{p}``)
or on every peering of a virtual network (a finding on the VNet). For each peering:

* its remote network (``properties.remoteVirtualNetwork.id``) is **outside** the playbook's allowed list
  (``allowed_remote_networks``: VNet ids or globs; ``allowed_subscriptions``: whole subscriptions):
  the peering is **deleted**. This cuts the two networks apart: nothing flows between them any more,
  and the remote side's own peering goes to ``Disconnected`` (remediator does not touch it: it may
  live in another subscription or tenant). High risk.
* its remote network is allowed: ``allowForwardedTraffic`` and ``allowGatewayTransit`` are turned off
  (``update``). Forwarded traffic lets networks *behind* the approved peer (through its appliances)
  reach this one; gateway transit offers this network's VPN/ExpressRoute gateway, and so everything
  connected to it, to the peer. Neither is needed for the two networks to talk to each other.
  ``useRemoteGateways`` is kept by default (``disable_remote_gateways: false``): it routes this
  network's traffic to on-premises through the approved peer's gateway, the usual hub-and-spoke
  design, and turning it off cuts the spoke from on-premises; set the parameter to turn it off too.

Linked resources the plan looks at, and what happens when the state lacks them (a warning, never a
silent skip): the remote virtual network (its peering back to this network, to say when turning off
``allowGatewayTransit`` breaks a remote network that uses this gateway).

Writes, verify and undo are the child-resource base's (``remediator.actions.children``): a DELETE, or
a PUT of the peering's writable properties, by id (both long-running operations). Undo recreates a
deleted peering from the plan's ``before`` (its writable properties), or puts the previous flags back.
Recreating a peering also needs ``Microsoft.Network/virtualNetworks/peer/action``
on the *remote* network, which a grant scoped to this network does not give: there the undo fails with
ARM's 403 unless the executor holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Params, PlanContext, no_items, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction
from remediator.actions.children import props as _props
from remediator.actions.profiles import PEERING
from remediator.checks import params as checks
from remediator.errors import ActionError, StateError

VNET_TYPE = checks.VNET_TYPE
PEERING_TYPE = PEERING.type
# What a PUT of a peering takes (VirtualNetworkPeeringPropertiesFormat in the 2024-05-01 network spec,
# minus its readOnly fields peeringState, peeringSyncLevel, provisioningState, resourceGuid and
# remoteVirtualNetworkEncryption; remoteAddressSpace and remoteVirtualNetworkAddressSpace are synced
# from the remote network, so they are left to ARM).
WRITABLE_PEERING = ("allowVirtualNetworkAccess", "allowForwardedTraffic", "allowGatewayTransit",
                    "useRemoteGateways", "remoteVirtualNetwork", "doNotVerifyRemoteGateways",
                    "peerCompleteVnets", "enableOnlyIPv6Peering", "localSubnetNames", "remoteSubnetNames")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FLAGS = ("allowForwardedTraffic", "allowGatewayTransit", "useRemoteGateways")


class RestrictPeeringsParams(Params):
    allowed_remote_networks: list[str] = Field(default_factory=no_items)
    """Remote virtual networks a peering may reach: ARM ids or globs (* and ?, no [ ]), case-insensitive, e.g.
    /subscriptions/<hub-sub>/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub-* . Peerings to
    any other network are deleted."""
    allowed_subscriptions: list[str] = Field(default_factory=no_items)
    """Subscription ids whose networks are all allowed as remote networks."""
    disable_forwarded_traffic: bool = True
    """Turn allowForwardedTraffic off on the allowed peerings."""
    disable_gateway_transit: bool = True
    """Turn allowGatewayTransit off on the allowed peerings."""
    disable_remote_gateways: bool = False
    """Also turn useRemoteGateways off on the allowed peerings (off by default: it is how an approved hub gives a spoke
    its route to on-premises; turning it off cuts that route)."""

    _valid_networks = field_validator("allowed_remote_networks")(checks.peering_networks)
    _valid_subscriptions = field_validator("allowed_subscriptions")(checks.peering_subscriptions)

    def allows(self, remote_id: str) -> bool:
        sub = (ids.parse(remote_id).subscription_id or "").lower()
        if sub and sub in self.allowed_subscriptions:
            return True
        # fnmatch on lower-cased text: * (any run, / included) and ? as the playbooks' globs; the
        # validator refuses brackets, fnmatch's only other syntax
        return any(fnmatchcase(ids.key(remote_id), p.lower()) or ids.same(p, remote_id)
                   for p in self.allowed_remote_networks)


def _remote_id(peering: Mapping[str, Any]) -> str:
    ref = _props(peering).get("remoteVirtualNetwork")
    value = ref.get("id") if isinstance(ref, Mapping) else None
    return value.strip() if isinstance(value, str) else ""


def _vnet_of(peering_id: str) -> str:
    return peering_id.rstrip("/").rsplit("/virtualNetworkPeerings/", 1)[0] if \
        "/virtualnetworkpeerings/" in peering_id.lower() else peering_id


def _with_flags(doc: Mapping[str, Any], flags: Mapping[str, bool]) -> dict[str, Any]:
    out = json_copy(dict(doc))
    props = out.setdefault("properties", {})
    props.update(flags)
    return out


@register
class RestrictPeerings(ChildResourceAction[RestrictPeeringsParams]):
    """Delete VNet peerings to networks outside the allowed list; turn off forwarded traffic and gateway
    transit on the allowed ones.

    VNet peerings have no Defender recommendation and no built-in Azure Policy, so the finding is the
    ARM write itself (an Event Grid ``ResourceWriteSuccess`` or an Activity Log alert on
    ``virtualNetworkPeerings/write``); a finding on the virtual network plans all of its peerings.

    ```yaml
    name: vnet-restrict-peerings
    description: Remove peerings to unapproved networks; no forwarded traffic or gateway transit on the rest.
    match:
      operations: [Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write]
      resource_types: [Microsoft.Network/virtualNetworks/virtualNetworkPeerings, Microsoft.Network/virtualNetworks]
    risk: high
    approval: {mode: slack, approvers: [security-oncall, platform-owners], quorum: 2, expires_after: 8h}
    steps:
      - action: network.restrict-peerings
        params:
          allowed_remote_networks:
            -
              /subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub-*
          allowed_subscriptions: [3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41]
    ```
    """

    name = "network.restrict-peerings"
    summary = ("Delete peerings to remote networks outside the allowed list; turn off forwarded "
               "traffic and gateway transit on the others")
    profile = PEERING
    resource_types = (PEERING_TYPE, VNET_TYPE)  # a finding on the network: all of them
    writable = WRITABLE_PEERING
    id_hint = "…/virtualNetworks/{vnet}/virtualNetworkPeerings/{peering}"

    # plan ------------------------------------------------------------------------------------------
    def plan(self, ctx: PlanContext, params: RestrictPeeringsParams) -> list[Change]:
        rid = ctx.finding.resource_id
        kind = ids.type_key(ids.resource_type(rid))
        if kind == ids.type_key(PEERING_TYPE):
            peering = ctx.state.get(rid)
            if peering is None:
                raise ActionError("virtual network peering not found in the resource state (add its virtual "
                                  f"network: `az network vnet show --ids {_vnet_of(rid)}`)",
                                  action=self.name, resource_id=rid)
            peerings: list[Mapping[str, Any]] = [peering]
        elif kind == ids.type_key(VNET_TYPE):
            vnet = ctx.state.get(rid)
            if vnet is None:
                raise ActionError("virtual network not found in the resource state", action=self.name,
                                  resource_id=rid)
            listed = _props(vnet).get("virtualNetworkPeerings")
            if not isinstance(listed, list):
                ctx.missing(rid, "virtual network", "its document lists no virtualNetworkPeerings, so no peering "
                            "was checked", how=f"save it with `az network vnet show --ids {rid}` (which "
                                               "includes its peerings)")
                return []
            peerings = [p for p in listed if isinstance(p, Mapping)]
        else:
            raise ActionError(f"expected a virtual network or a peering, got {ids.resource_type(rid) or 'a scope'}",
                              action=self.name, resource_id=rid)
        changes: list[Change] = []
        for doc in peerings:
            change = self._plan_peering(ctx, params, doc)
            if change is not None:
                changes.append(change)
        return changes

    def _plan_peering(self, ctx: PlanContext, params: RestrictPeeringsParams,
                      peering: Mapping[str, Any]) -> Change | None:
        pid = str(peering.get("id") or "")
        if not pid:
            raise ActionError("a peering document without an id", action=self.name,
                              resource_id=ctx.finding.resource_id)
        local = ids.parse(_vnet_of(pid)).name
        remote = _remote_id(peering)
        before = dict(peering)
        if not remote:
            raise ActionError("the peering names no remote virtual network (properties.remoteVirtualNetwork.id)",
                              action=self.name, resource_id=pid)
        remote_name = ids.parse(remote).name or remote
        if not params.allows(remote):
            state = _props(peering).get("peeringState", "?")
            return Change(action=self.name, resource_id=pid, operation="delete", before=before, after=None,
                          note=f"DELETE peering {local} -> {remote} (not in allowed_remote_networks or "
                               f"allowed_subscriptions; state {state}): this cuts {local} and {remote_name} apart, "
                               f"no traffic flows between them any more and {remote_name}'s own peering back goes "
                               "to Disconnected")
        wanted: dict[str, bool] = {}
        if params.disable_forwarded_traffic:
            wanted["allowForwardedTraffic"] = False
        if params.disable_gateway_transit:
            wanted["allowGatewayTransit"] = False
        if params.disable_remote_gateways:
            wanted["useRemoteGateways"] = False
        props = _props(peering)
        changed = {k: v for k, v in wanted.items() if props.get(k, False) is not v}
        if not changed:
            return None
        parts = [f"{k}: {str(props.get(k)).lower()} -> false" for k in changed]
        if changed.get("allowGatewayTransit") is False:
            parts.append(self._gateway_users(ctx, pid, remote))
        if changed.get("useRemoteGateways") is False:
            parts.append(f"{local} loses the routes it learns through {remote_name}'s gateway (on-premises)")
        return Change(action=self.name, resource_id=pid, operation="update", before=before,
                      after=_with_flags(peering, changed),
                      note=f"peering {local} -> {remote_name}: " + "; ".join(parts))

    @staticmethod
    def _gateway_users(ctx: PlanContext, peering_id: str, remote: str) -> str:
        """What turning off gateway transit breaks, from the remote network's peering back to us."""
        local_vnet = _vnet_of(peering_id)
        unchecked = "whether it uses this network's gateway (its peering back with useRemoteGateways) was not checked"
        try:
            remote_doc = ctx.state.get(remote)
        except StateError as e:  # live state: the peer may sit in a subscription the reader cannot see
            ctx.warn(f"peer network {remote} could not be read ({e}): {unchecked}")
            return "whether the peer uses this gateway was not checked (see warnings)"
        if remote_doc is None:
            ctx.missing(remote, "peer network", unchecked,
                        how=f"add it with `az network vnet show --ids {remote} > peer-vnet.json` to the --resources "
                            "folder")
            return "whether the peer uses this gateway was not checked (see warnings)"
        for back in _props(remote_doc).get("virtualNetworkPeerings") or []:
            if isinstance(back, Mapping) and ids.same(_remote_id(back), local_vnet) and \
                    _props(back).get("useRemoteGateways") is True:
                return (f"can break: {ids.parse(remote).name} uses this network's gateway (its peering "
                        f"{back.get('name')} has useRemoteGateways true) and loses its route through it")
        return "the peer does not use this network's gateway"

    # what the child-resource base writes and compares ------------------------------------------------
    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        wrong = [f"{k} is {_props(have).get(k)!r}, planned {_props(want).get(k)!r}" for k in FLAGS
                 if bool(_props(have).get(k, False)) is not bool(_props(want).get(k, False))]
        if not ids.same(_remote_id(have), _remote_id(want)):
            wrong.append(f"remote network is {_remote_id(have)!r}, planned {_remote_id(want)!r}")
        return wrong

    def written(self, change: Change) -> str:
        return ": " + ", ".join(f"{k} {str(_props(change.after).get(k, False)).lower()}" for k in FLAGS)

    def undo_note(self, change: Change) -> str:
        if change.operation == "delete":
            return (f"to {_remote_id(change.before or {})}; needs virtualNetworks/peer/action on the remote "
                    "network")
        back = [f"{k} {str(_props(change.before).get(k, False)).lower()}" for k in FLAGS
                if bool(_props(change.before).get(k, False)) is not bool(_props(change.after).get(k, False))]
        return ", ".join(back)
