"""Network actions: close NSG inbound rules that expose ports to the whole Internet.

``network.restrict-inbound`` resolves the finding's resource to network security groups
(an NSG itself; a NIC → its NSG and its subnets' NSGs; a VM → its NICs → the same) and changes
every custom inbound *Allow* rule whose source is the whole world (``*``, ``Internet``, ``Any``,
``0.0.0.0/0``, ``::/0``, alone or inside ``sourceAddressPrefixes``) and whose destination ports
intersect the target ports. Default rules, Deny rules, outbound rules, rules from specific sources,
and portless protocols (ICMP, ESP, AH) are never touched.

Per mode, for a rule whose ports are T (target ports) plus O (other ports, which stay as they are):

``remove`` (default)
    O empty: the rule is deleted, or, when it also lists specific sources next to the world
    prefix, only the world prefixes are dropped (those sources keep their access). O not empty:
    T is cut out of the rule's ports (``*`` minus 22 → ``0-21``, ``23-65535``); the rule stays for O
    (for every source it lists: a specific source listed next to ``*`` loses T through this rule too;
    use ``narrow`` to keep T open to named sources).
``deny``
    O empty: the rule flips to ``Deny`` in place (everything else unchanged). O not empty: T is cut
    out as in ``remove``; no new Deny rule is added (the NSG's ``DenyAllInBound`` default already
    denies what no rule allows, and a new rule would need a free priority). Beware: a Deny from
    ``*`` also shadows narrower Allow rules with a larger priority number on the same ports (an
    office CIDR allowed at priority 300 behind the flipped rule at 100 loses access); ``remove``
    does not, which is why it is the default.
``narrow``
    O empty: the source becomes the rule's specific sources plus ``allowed_sources``. O not empty:
    one rule cannot say "T from these, O from everyone", so the rule is split: a new rule
    ``<name>-restricted`` allows T from ``allowed_sources`` at a priority adjacent to the original
    (p-1, else p+1, so no other rule sits between them and the evaluation order is unchanged), and
    T is cut out of the original rule. The create comes first, so nobody who should keep access
    ever loses it. If both adjacent priorities are taken the plan fails loudly. ``allowed_sources``
    are used as given: they should lie inside what the rule allowed (for ``Internet``, public
    addresses).

No mode ever widens access: every change removes ports or sources from an Allow rule, turns an
Allow into a Deny, or adds an Allow whose sources and ports are a subset of the rule it splits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, field_validator, model_validator

from remediator import ids, words
from remediator._json import json_copy
from remediator.actions.base import Params, PlanContext, no_items, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction
from remediator.actions.profiles import SECURITY_RULE
from remediator.checks import params as checks
from remediator.checks.ports import (
    PortRange,
    PortSpecError,
    intersect_specs,
    intersects,
    parse_range,
    parse_ranges,
    subtract_specs,
)
from remediator.errors import ActionError

NSG_TYPE = "microsoft.network/networksecuritygroups"
NIC_TYPE = "microsoft.network/networkinterfaces"
VM_TYPE = "microsoft.compute/virtualmachines"
RULE_TYPE = SECURITY_RULE.type

DEFAULT_PORTS: tuple[int, ...] = (22, 3389, 5985, 5986)  # SSH, RDP, WinRM http/https
WORLD_SOURCES = checks.WORLD_SOURCES
PORTLESS_PROTOCOLS = frozenset({"icmp", "esp", "ah"})
READONLY_RULE_FIELDS = frozenset({"provisioningState"})
MIN_PRIORITY, MAX_PRIORITY = 100, 4096
MAX_RULE_NAME = 80
MAX_DESCRIPTION = 140
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[.\-][A-Za-z0-9]+)*$")

# An integer (strict: pydantic's lax int would take true as port 1 and 22.0 as 22) or a range text.
PortSpec = Annotated[int, Strict(), Field(ge=0, le=65535)] | Annotated[
    str, Field(pattern=r"^\s*(\*|\d{1,5}(\s*-\s*\d{1,5})?)\s*$")]


class RestrictInboundParams(Params):
    ports: list[PortSpec] = Field(default=list(DEFAULT_PORTS), min_length=1)
    """Destination ports to close to the Internet: integers or 'A-B' ranges ('*' = every port). Default: the management
    ports 22 (SSH), 3389 (RDP), 5985 and 5986 (WinRM)."""
    mode: Literal["remove", "deny", "narrow"] = "remove"
    """remove: delete the rule, or cut the ports out of it when it opens other ports too (default: closes the exposure
    without adding rules or shadowing narrower allow rules). deny: flip a rule that opens only these ports to Deny
    (mixed rules are cut as in remove). narrow: keep the ports open, but only from allowed_sources."""
    allowed_sources: list[str] = Field(default_factory=no_items)
    """mode narrow only (and required there): CIDRs, IP addresses or service tags that may still reach the ports, e.g.
    ['203.0.113.0/24', '198.51.100.7', 'AzureCloud.WestEurope']. Never '*', 'Internet', '0.0.0.0/0' or '::/0'."""
    include_subnet_nsgs: bool = True
    """For a VM or NIC finding, also fix the NSGs of the NICs' subnets (traffic must pass both)."""

    _valid_ports = field_validator("ports")(checks.nsg_ports)
    _valid_sources = field_validator("allowed_sources")(checks.nsg_sources)
    _sources_match_mode = model_validator(mode="after")(checks.nsg_sources_match_mode)

    def target_ranges(self) -> list[PortRange]:
        return parse_ranges(self.ports)


# --- rule documents --------------------------------------------------------------------------------

def _get_list(props: Mapping[str, Any], singular: str, plural: str) -> list[str]:
    """The values of a singular/plural NSG field pair (ARM uses one or the other)."""
    many = props.get(plural)
    if isinstance(many, list):
        values = [str(v).strip() for v in many if str(v).strip()]
        if values:
            return values
    one = props.get(singular)
    if isinstance(one, str | int) and str(one).strip():
        return [str(one).strip()]
    return []


def _set_list(props: dict[str, Any], singular: str, plural: str, values: Sequence[str]) -> None:
    """Write a singular/plural pair the way ARM returns it: one value in the singular field (the plural
    an empty list when present); several in the plural field with the singular field absent."""
    if len(values) == 1:
        props[singular] = values[0]
        if plural in props:
            props[plural] = []
    else:
        if props.get(singular) != "":  # ARM omits the singular field; keep a saved "" as it was
            props.pop(singular, None)
        props[plural] = list(values)


def _dedupe(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for v in values:
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


def _ref_id(ref: object) -> str | None:
    """``{"id": "..."}`` → the id (None when absent)."""
    if isinstance(ref, Mapping):
        value = ref.get("id")
        if isinstance(value, str) and value.strip():
            return value
    return None


def _describe(props: Mapping[str, Any]) -> str:
    ports = ",".join(_get_list(props, "destinationPortRange", "destinationPortRanges")) or "?"
    sources = ",".join(_get_list(props, "sourceAddressPrefix", "sourceAddressPrefixes")) or "?"
    return f"{props.get('access', '?')} {props.get('protocol', '*')} {ports} from {sources}"


@dataclass(kw_only=True, slots=True)
class _NsgScope:
    """What planning one NSG shares across its rules (priorities and names taken, incl. planned ones)."""

    nsg_id: str
    params: RestrictInboundParams
    targets: list[PortRange]
    taken: set[int]
    names: set[str]
    suffix: str


def _inbound_priority(rule: Mapping[str, Any]) -> int | None:
    props = rule.get("properties") or {}
    value = props.get("priority")
    if str(props.get("direction", "")).lower() != "inbound" or not str(value).strip().isdigit():
        return None
    return int(str(value).strip())


# --- the action ------------------------------------------------------------------------------------

@register
class RestrictInbound(ChildResourceAction[RestrictInboundParams]):
    """Close NSG inbound rules that open management (or other given) ports to the whole Internet.

    A VM finding is resolved VM → NICs → each NIC's NSG and each NIC subnet's NSG; a NIC finding
    → its NSG and subnets' NSGs; an NSG finding → that NSG. Each touched rule is one Change on
    ``…/networkSecurityGroups/{nsg}/securityRules/{rule}`` (delete, update, or, in mode ``narrow``
    for a rule that also opens other ports, a create of ``<rule>-restricted``). The rule semantics
    per mode are in the module docstring. Writes, verify and undo (from the rule documents saved in
    the plan) are the child-resource base's (``remediator.actions.children``).

    ```yaml
    name: nsg-close-management-ports
    description: Close SSH/RDP/WinRM to the Internet on VMs Defender flags.
    match:
      recommendations: [bc303248-3d14-44c2-96a0-55f5c326b5fe]  # Management ports should be closed on your VMs
      alerts: [SSH_Incoming_BF_OneToOne, RDP_Incoming_BF_OneToOne]
      resource_types: [Microsoft.Compute/virtualMachines, Microsoft.Network/networkSecurityGroups]
      severity_at_least: Medium
    risk: medium
    approval:
      mode: slack
      approvers: [security-oncall]
      expires_after: 2h
    steps:
      - action: network.restrict-inbound
        params:
          ports: [22, 3389, 5985, 5986]
          mode: remove
    ```
    """

    name = "network.restrict-inbound"
    summary = "Close NSG inbound rules that open ports to the whole Internet"
    profile = SECURITY_RULE
    # the finding's resource: the NSG, or a VM or NIC it guards
    resource_types = (
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Network/networkInterfaces",
    )
    id_hint = "…/networkSecurityGroups/{nsg}/securityRules/{rule}"

    # plan ------------------------------------------------------------------------------------------
    def plan(self, ctx: PlanContext, params: RestrictInboundParams) -> list[Change]:
        targets = params.target_ranges()
        hint = ctx.finding.additional_data.get("nsg open ports")
        changes: list[Change] = []
        nsgs = self._linked(ctx, self._nsg_ids(ctx, params), "network security group", "its inbound rules were "
                            "not checked")
        for nsg in nsgs:
            changes.extend(self._plan_nsg(nsg, params, targets, hint))
        if not nsgs:
            raise ActionError("none of the network security groups guarding it is in the resource state (see "
                              "the warnings for which to add)", action=self.name, resource_id=ctx.finding.resource_id)
        return changes

    def _nsg_ids(self, ctx: PlanContext, params: RestrictInboundParams) -> list[str]:
        """The NSGs guarding the finding's resource, in a stable order, without duplicates."""
        rid = ctx.finding.resource_id
        kind = ids.type_key(ids.resource_type(rid))
        if kind == NSG_TYPE:
            return [rid]
        if kind == NIC_TYPE:
            nic_ids = [rid]
        elif kind == VM_TYPE:
            nic_ids = self._vm_nics(ctx, rid)
        else:
            what = ids.resource_type(rid) or "scope"
            raise ActionError(f"cannot resolve network security groups for a {what} (expected a network "
                              "security group, network interface or virtual machine)",
                              action=self.name, resource_id=rid)
        found: dict[str, str] = {}
        nics = self._linked(ctx, nic_ids, "network interface", "its NSG and its subnets' NSGs were not checked")
        unchecked = len(nic_ids) - len(nics)
        for nic in nics:
            props = nic.get("properties") or {}
            nsg_id = _ref_id(props.get("networkSecurityGroup"))
            if nsg_id:
                found.setdefault(ids.key(nsg_id), nsg_id)
            if not params.include_subnet_nsgs:
                continue
            configs = props.get("ipConfigurations")
            if configs is not None and not isinstance(configs, list):
                ctx.warn(f"network interface {nic.get('id', '?')}: ipConfigurations is not a list; its subnets' NSGs "
                         "were not checked")
            for ipc in configs if isinstance(configs, list) else []:
                if not isinstance(ipc, Mapping):
                    ctx.warn(f"network interface {nic.get('id', '?')}: an ipConfigurations entry is not an object; "
                             "its subnet's NSG was not checked")
                    continue
                ipc_props = ipc.get("properties")
                subnet_id = _ref_id(ipc_props.get("subnet") if isinstance(ipc_props, Mapping) else None)
                if not subnet_id:
                    continue
                subnet = ctx.state.get(subnet_id)
                if subnet is None:
                    vnet = subnet_id.rsplit("/subnets/", 1)[0]
                    ctx.missing(subnet_id, "subnet", "the NSG of the network interface's subnet was not checked",
                                how=f"add its virtual network with `az network vnet show --ids {vnet} > "
                                    f"vnet.json` to the --resources folder, or set include_subnet_nsgs: false")
                    unchecked += 1
                    continue
                nsg_id = _ref_id((subnet.get("properties") or {}).get("networkSecurityGroup"))
                if nsg_id:
                    found.setdefault(ids.key(nsg_id), nsg_id)
        if not found:
            if unchecked:
                raise ActionError("no network security group found on what the resource state holds, and "
                                  f"{words.plural(unchecked, 'linked resource')} {words.noun(unchecked, 'is')} "
                                  "missing from it: "
                                  + " | ".join(ctx.warnings), action=self.name, resource_id=rid)
            raise ActionError("no network security group on the network interfaces or their subnets: nothing "
                              "to restrict (associate an NSG first)", action=self.name, resource_id=rid)
        return list(found.values())

    def _linked(self, ctx: PlanContext, resource_ids: Sequence[str], what: str,
                unchecked: str) -> list[Mapping[str, Any]]:
        """The documents of ``resource_ids`` in the state. A missing one is a warning naming what was not
        checked, or, when it is the only one, the plan's error."""
        docs: list[Mapping[str, Any]] = []
        for rid in resource_ids:
            doc = ctx.state.get(rid)
            if doc is None and len(resource_ids) == 1:
                raise ActionError(f"{what} not found in the resource state", action=self.name, resource_id=rid)
            if doc is None:
                ctx.missing(rid, what, unchecked)
            else:
                docs.append(doc)
        return docs

    def _vm_nics(self, ctx: PlanContext, vm_id: str) -> list[str]:
        vm = ctx.state.get(vm_id)
        nic_ids: list[str] = []
        if vm is not None:
            profile = (vm.get("properties") or {}).get("networkProfile") or {}
            nic_ids = [n for ref in profile.get("networkInterfaces") or [] if (n := _ref_id(ref))]
        if not nic_ids:
            # no VM document (or one without NIC references): find the NICs that point back at the VM
            rid = ids.parse(vm_id)
            scope = f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}"
            for nic in ctx.state.list("Microsoft.Network/networkInterfaces", scope):
                owner = _ref_id((nic.get("properties") or {}).get("virtualMachine"))
                if owner and ids.same(owner, vm_id):
                    nic_ids.append(str(nic["id"]))
        if not nic_ids:
            what = "virtual machine has no network interface" if vm is not None else \
                "virtual machine not found, and no network interface in its resource group refers to it"
            raise ActionError(what, action=self.name, resource_id=vm_id)
        return nic_ids

    def _plan_nsg(self, nsg: Mapping[str, Any], params: RestrictInboundParams, targets: list[PortRange],
                  hint: object) -> list[Change]:
        listed = (nsg.get("properties") or {}).get("securityRules") or []
        rules = [r for r in listed if isinstance(r, Mapping)]
        scope = _NsgScope(
            nsg_id=str(nsg["id"]), params=params, targets=targets,
            taken={p for r in rules if (p := _inbound_priority(r)) is not None},
            names={str(r.get("name", "")).lower() for r in rules},
            suffix=f" (Defender reported open ports: {hint})" if hint else "",
        )
        changes: list[Change] = []
        for rule in rules:
            changes.extend(self._plan_rule(scope, rule))
        return changes

    def _plan_rule(self, nsg: _NsgScope, rule: Mapping[str, Any]) -> list[Change]:
        props = rule.get("properties") or {}
        name = str(rule.get("name") or "")
        if (str(props.get("direction", "")).lower() != "inbound"
                or str(props.get("access", "")).lower() != "allow"
                or str(props.get("protocol", "*")).lower() in PORTLESS_PROTOCOLS):
            return []
        sources = _get_list(props, "sourceAddressPrefix", "sourceAddressPrefixes")
        if not any(s.lower() in WORLD_SOURCES for s in sources):
            return []
        rule_id = str(rule.get("id") or f"{nsg.nsg_id}/securityRules/{name}")
        specs = _get_list(props, "destinationPortRange", "destinationPortRanges")
        if not specs:
            raise ActionError("rule has no destination port", action=self.name, resource_id=rule_id)
        try:
            if not intersects([parse_range(s) for s in specs], nsg.targets):
                return []
        except PortSpecError as e:
            raise ActionError(f"rule destination port: {e}", action=self.name, resource_id=rule_id) from None

        kept_ports = subtract_specs(specs, nsg.targets)
        specific = [s for s in sources if s.lower() not in WORLD_SOURCES]
        where = f"{ids.parse(nsg.nsg_id).name}/{name}"
        was = _describe(props)
        before = dict(rule)

        def updated(*, ports: Sequence[str] = (), sources: Sequence[str] = (), access: str = "") -> Change:
            after = json_copy(before)
            new = after.setdefault("properties", {})
            if ports:
                _set_list(new, "destinationPortRange", "destinationPortRanges", ports)
            if sources:
                _set_list(new, "sourceAddressPrefix", "sourceAddressPrefixes", sources)
            if access:
                new["access"] = access
            return Change(action=self.name, resource_id=rule_id, operation="update", before=before,
                          after=after, note=f"{where}: {was} → {_describe(new)}{nsg.suffix}")

        if nsg.params.mode == "narrow":
            narrowed = _dedupe([*specific, *(s.strip() for s in nsg.params.allowed_sources)])
            if not kept_ports:
                return [updated(sources=narrowed)]
            hit_ports = intersect_specs(specs, nsg.targets)
            return [self._split_rule(nsg, rule, hit_ports, narrowed, rule_id), updated(ports=kept_ports)]
        if kept_ports:  # remove and deny: the other ports stay open, the target ports are cut out
            return [updated(ports=kept_ports)]
        if nsg.params.mode == "deny":
            return [updated(access="Deny")]
        if specific:  # remove, but some listed sources are specific: only the world loses access
            return [updated(sources=specific)]
        return [Change(action=self.name, resource_id=rule_id, operation="delete", before=before, after=None,
                       note=f"{where}: delete ({was}){nsg.suffix}")]

    def _split_rule(self, nsg: _NsgScope, rule: Mapping[str, Any], ports: list[str], sources: list[str],
                    rule_id: str) -> Change:
        """The new rule that keeps ``ports`` open to ``sources`` only, next to the rule it splits."""
        props = rule.get("properties") or {}
        try:
            priority = int(props.get("priority"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ActionError("rule has no priority", action=self.name, resource_id=rule_id) from None
        free = [p for p in (priority - 1, priority + 1)
                if MIN_PRIORITY <= p <= MAX_PRIORITY and p not in nsg.taken]
        if not free:
            raise ActionError(f"mode narrow must add a rule next to priority {priority} for ports "
                              f"{','.join(ports)}, but {priority - 1} and {priority + 1} are taken; free one "
                              "or use mode remove", action=self.name, resource_id=rule_id)
        nsg.taken.add(free[0])
        base = str(rule.get("name") or "rule")
        stem = base[: MAX_RULE_NAME - len("-restricted-99")] + "-restricted"
        new_name, n = stem, 1
        while new_name.lower() in nsg.names:
            n += 1
            new_name = f"{stem}-{n}"
        nsg.names.add(new_name.lower())
        new_props = {k: json_copy(v) for k, v in props.items() if k not in READONLY_RULE_FIELDS}
        new_props["priority"] = free[0]
        new_props["description"] = (f"Ports {','.join(ports)} of rule {base}, restricted by remediator to "
                                    f"{','.join(sources)}")[:MAX_DESCRIPTION]
        _set_list(new_props, "destinationPortRange", "destinationPortRanges", ports)
        _set_list(new_props, "sourceAddressPrefix", "sourceAddressPrefixes", sources)
        new_id = f"{nsg.nsg_id}/securityRules/{new_name}"
        after = {"name": new_name, "id": new_id, "type": RULE_TYPE, "properties": new_props}
        return Change(action=self.name, resource_id=new_id, operation="create", before=None, after=after,
                      note=f"{ids.parse(nsg.nsg_id).name}/{new_name}: create ({_describe(new_props)}, "
                           f"priority {free[0]}) split from {base}")

    # what the child-resource base writes and compares ------------------------------------------------
    def body(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """A rule's PUT body: its properties minus read-only, null and empty-string fields."""
        props = {k: v for k, v in (doc.get("properties") or {}).items()
                 if k not in READONLY_RULE_FIELDS and v is not None and v != ""}
        return {"properties": props}

    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        return _rule_differences(want, have)

    def written(self, change: Change) -> str:
        return f": {_describe((change.after or {}).get('properties') or {})}"


def _rule_differences(want_doc: Mapping[str, Any], have_doc: Mapping[str, Any]) -> list[str]:
    """The security-relevant fields where ``have`` differs from ``want`` (spelling-insensitive)."""
    want = want_doc.get("properties") or {}
    have = have_doc.get("properties") or {}
    out: list[str] = []
    for field in ("access", "direction", "protocol"):
        if str(want.get(field, "")).lower() != str(have.get(field, "")).lower():
            out.append(f"{field} is {have.get(field)!r}, planned {want.get(field)!r}")
    if str(want.get("priority")) != str(have.get("priority")):
        out.append(f"priority is {have.get('priority')!r}, planned {want.get('priority')!r}")
    for singular, plural, is_port in (("destinationPortRange", "destinationPortRanges", True),
                                      ("sourcePortRange", "sourcePortRanges", True),
                                      ("sourceAddressPrefix", "sourceAddressPrefixes", False),
                                      ("destinationAddressPrefix", "destinationAddressPrefixes", False)):
        w, h = _get_list(want, singular, plural), _get_list(have, singular, plural)
        try:
            same = parse_ranges(w) == parse_ranges(h) if is_port else \
                sorted(x.lower() for x in w) == sorted(x.lower() for x in h)
        except PortSpecError:
            same = w == h
        if not same:
            out.append(f"{plural} is {h}, planned {w}")
    return out
