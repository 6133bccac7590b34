"""The firewall family: close a resource's public endpoint, one base for every service that has one.

Storage accounts, AI services accounts, Key Vault vaults and container registries (and the types
to come) all guard their public endpoint the same way: a rule set (``networkAcls`` or
``networkRuleSet``) with a default action, IP rules and, on most, virtual network (subnet) rules;
a trusted-service bypass; and ``publicNetworkAccess``, which closes the endpoint altogether so that
only approved private endpoints remain. :class:`FirewallAction` is that fix, written once:

* ``mode`` ``firewall``: the rule set's ``defaultAction`` becomes ``Deny``; its rules stay and the
  playbook's ``allowed_ip_ranges`` / ``allowed_subnet_ids`` are added (an address or subnet already
  there is not added twice); ``bypass`` is the playbook's, else the resource's, else ARM's default
  ``AzureServices``. The rule set is written whole (its lists are replaced by any merge).
  ``private-endpoint``: ``publicNetworkAccess: Disabled``, refused unless the resource has an
  approved private endpoint connection. ``auto``: private-endpoint when there is one, else firewall.
* A resource whose ``publicNetworkAccess`` is already ``Disabled`` is closed: nothing is planned.
* Every plan says who is cut off (``remediator.actions.private_endpoints.cut_off``);
  ``refuse_if_everyone_cut_off`` refuses a change that leaves no client a path (no approved private
  endpoint and no rule), unless the firewall was already at Deny (nobody is newly cut off).
* **With the private-link settings** (``PlanContext.private_link``: ``private_link_subnets``,
  ``private_dns_zones``), a change that would cut off every client (``mode`` auto or private-endpoint,
  no approved private endpoint, no rule that keeps anyone) becomes the private path of
  ``remediator.actions.private_link``: a private endpoint in the region's subnet, its DNS zone group,
  then public access closed once the endpoint verifies; one plan. A resource whose rules keep
  someone keeps the firewall behaviour (its clients are not moved behind an endpoint unasked).

**One validator** (:func:`valid_ip_ranges`, :func:`valid_subnet_ids`) checks what the playbook adds,
with the same answer on every service. The rules, and where they come from:

* IPv4 only: "Only IPv4 addresses are supported" (Storage: MicrosoftDocs/azure-docs
  ``articles/storage/common/storage-network-security-limitations.md``; AI services:
  ``articles/ai-services/cognitive-services-virtual-networks.md``; Key Vault:
  ``articles/key-vault/general/network-security.md``; container registries: the SDK's ``IPRule``,
  "Only IPV4 address is allowed").
* Public addresses only: RFC 1918 private ranges "aren't allowed in IP rules" (the same three pages;
  the registry page asks for "public IP addresses"). Loopback, link-local, ``0.0.0.0/8``, multicast
  and reserved ranges can never be a client's address either. **Shared address space
  100.64.0.0/10** (RFC 6598, carrier-grade NAT) is refused everywhere: such addresses are translated
  before they reach the Internet, so a rule for them admits nobody; no service documents accepting
  them, and this is the strictest behaviour the copies had.
* **A /32 is one address**: ``203.0.113.7/32`` is accepted everywhere as the address ``203.0.113.7``
  (Storage and AI services: "/31 or /32 prefix sizes are not supported. Configure these ranges by
  using individual IP address rules", which is what it becomes), and written in the service's own
  notation (:attr:`Firewall.single_address`: Key Vault stores ``124.56.78.91/32`` for the
  ``124.56.78.91`` it is given, keyvault 2024-11-01 ``examples/createVaultWithNetworkAcls.json``).
* **/31 is refused** (:attr:`Firewall.refused_prefixes`): documented by Storage and AI services;
  Key Vault's and the registry's pages say nothing, so the strictest common rule applies there too.
* Subnet ids are full ARM ids: ``/subscriptions/<id>/resourceGroups/<group>/providers/
  Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>``.

What really differs per service is data on its declaration (:class:`Firewall`, each value's source
cited there): where the rule set and the bypass live, the members a new rule carries, how a single
address is written, whether there are subnet rules at all (a registry's ``NetworkRuleSet`` has IP
rules only), read-only members the API does not take back, and the SKU the firewall needs.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions import private_endpoints, private_link
from remediator.actions.base import Params, PlanContext, no_items, valid_id
from remediator.actions.change import Change
from remediator.actions.properties import PropertyAction, Setting, get_path, with_paths
from remediator.azure.state import StateReader

PUBLIC = "properties.publicNetworkAccess"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
Mode = Literal["firewall", "private-endpoint", "auto"]

# Ranges whose addresses are never a client's address at a public endpoint, and why (see the module docstring).
NOT_PUBLIC: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple((ipaddress.IPv4Network(net), why) for net, why in (
    ("10.0.0.0/8", "private, RFC 1918"), ("172.16.0.0/12", "private, RFC 1918"),
    ("192.168.0.0/16", "private, RFC 1918"), ("100.64.0.0/10", "shared address space, RFC 6598"),
    ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("0.0.0.0/8", "'this network'"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved")))


@dataclass(frozen=True, kw_only=True, slots=True)
class Firewall:
    """How one service keeps its firewall (data; each declaration cites its sources)."""

    rules: str = "properties.networkAcls"
    """The rule set object (``defaultAction``, ``ipRules``, ``virtualNetworkRules``)."""
    open: Mapping[str, Any] = field(default_factory=dict)
    """What ARM means by an absent rule set (written out, with the change, when there is none)."""
    bypass: str | None = None
    """Where the trusted-service bypass lives (inside the rule set or beside it); None: not managed."""
    rule_action: str | None = None
    """``"Allow"``: a new IP or subnet rule carries ``action: Allow``; None: only its value or id."""
    subnet_rules: bool = True
    """Whether the rule set has virtual network rules at all."""
    single_address: Literal["address", "/32"] = "address"
    """How the service writes one address: ``203.0.113.7`` or ``203.0.113.7/32``."""
    refused_prefixes: frozenset[int] = frozenset({31})
    """Prefix lengths the service refuses in an IP rule (a /32 is written as the address)."""
    read_only: tuple[str, ...] = ()
    """Members of a rule the service reports but does not take in a write (left out of it)."""
    sku: str = ""
    """The SKU network rules need ("Premium"); "" any."""

    def notation(self, address_or_range: str) -> str:
        """A validated address or range as the service writes it in an IP rule."""
        if self.single_address == "/32" and "/" not in address_or_range:
            return f"{address_or_range}/32"
        return address_or_range

    def rule(self, key: str, value: str) -> dict[str, str]:
        return {key: value, **({"action": self.rule_action} if self.rule_action else {})}


def valid_ip_ranges(values: Sequence[str], refused_prefixes: frozenset[int] = frozenset({31})) -> list[str]:
    """Public IPv4 addresses and CIDR ranges for firewall IP rules, normalised (a /32 becomes the
    address); a ``ValueError`` of one line naming the bad item otherwise (see the module docstring)."""
    out: list[str] = []
    for item in values:
        try:
            net = ipaddress.ip_network(item.strip(), strict=True)
        except ValueError as e:
            raise ValueError(f"{item!r} is not an IPv4 address or CIDR range ({e})") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"{item!r}: firewall IP rules take IPv4 addresses and ranges only")
        if net.prefixlen == 0:
            raise ValueError(f"{item!r} is the whole Internet")
        if net.prefixlen in refused_prefixes:
            raise ValueError(f"{item!r}: /{net.prefixlen} ranges are not supported; give each of its addresses "
                             "on its own")
        for other, why in NOT_PUBLIC:
            if net.overlaps(other):
                raise ValueError(f"{item!r} is not a public range ({other} is {why}); firewall IP rules take "
                                 "public Internet addresses only")
        out.append(str(net.network_address) if net.prefixlen == 32 else str(net))
    return out


def valid_subnet_ids(values: Sequence[str]) -> list[str]:
    """Subnet ARM ids, stripped; a ``ValueError`` of one line naming the bad item otherwise."""
    return [valid_id(v, SUBNET_TYPE, "subnet", shape="Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>")
            for v in values]


def ip_key(value: object) -> str:
    """An IP rule's value compared across notations (``a.b.c.d`` = ``a.b.c.d/32``; quotes ignored)."""
    return _ip_key(str(value or "").strip().strip("'"))


@functools.lru_cache(maxsize=4096)  # a plan compares the same few rules again and again (a storm: 60,000 times)
def _ip_key(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text.lower()


# --- parameters ------------------------------------------------------------------------------------


class FirewallParams(Params):
    """The family's parameters; a service's class sets ``firewall`` and may add ``bypass``."""

    firewall: ClassVar[Firewall]
    mode: Mode = "firewall"
    """firewall: the firewall's default action Deny (rules kept, the allowed ones added). private-endpoint:
    publicNetworkAccess Disabled, refused unless the resource has an approved private endpoint connection.
    auto: private-endpoint when there is one, else firewall."""
    allowed_ip_ranges: list[str] = Field(default_factory=no_items)
    """Public IPv4 addresses or CIDR ranges to add as IP rules, e.g. ['203.0.113.0/24', '198.51.100.7'].
    Private and shared (100.64.0.0/10) ranges and /31 prefixes are refused; a /32 is its address."""
    refuse_if_everyone_cut_off: bool = False
    """Refuse the change (write nothing) when no client would keep access: no approved private endpoint and
    no IP or virtual network rule (existing or added)."""

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _valid_ranges(cls, value: list[str]) -> list[str]:
        return valid_ip_ranges(value, cls.firewall.refused_prefixes)

    def bypass_value(self) -> str | None:
        """The bypass to write as the service spells it; None: keep the resource's."""
        return None


class SubnetRulesParams(FirewallParams):
    """For services whose rule set has virtual network rules."""

    allowed_subnet_ids: list[str] = Field(default_factory=no_items)
    """ARM ids of subnets to add as virtual network rules (/subscriptions/…/virtualNetworks/<vnet>/subnets/
    <subnet>); each needs the service's endpoint (Microsoft.Storage, Microsoft.KeyVault, …) and the executor
    Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action."""

    @field_validator("allowed_subnet_ids")
    @classmethod
    def _valid_subnets(cls, value: list[str]) -> list[str]:
        return valid_subnet_ids(value)


class TrustedServicesParams(FirewallParams):
    """For services whose bypass is AzureServices or None."""

    bypass: Literal["AzureServices", "None"] | None = None
    """Trusted Azure services past the firewall (AzureServices) or not (None). Default: keep the resource's
    (AzureServices when unset)."""

    def bypass_value(self) -> str | None:
        return self.bypass


class PublicAccessParams(Params):
    refuse_if_everyone_cut_off: bool = False
    """Refuse the change (write nothing) when the resource has no approved private endpoint connection, i.e.
    when disabling public network access would cut off every client."""


FP = TypeVar("FP", bound=FirewallParams)
PP = TypeVar("PP", bound=PublicAccessParams)


def private_path(ctx: PlanContext, target: str, doc: Mapping[str, Any], cut: private_endpoints.CutOff,
                 ) -> list[Change] | None:
    """The private-link plan for a closing that would cut off every client (``cut``), or that would close
    behind an endpoint of the fix still without its DNS zone group, when the settings exist and the type
    supports private endpoints; None: plan as before (see the module docstring)."""
    settings = ctx.private_link
    if settings is None or not settings.configured or _public_disabled(doc):
        return None
    if ids.type_key(ids.resource_type(target)) not in private_link.TARGETS:
        return None
    if cut.everyone or private_link.ACTION.missing_zone_groups(ctx, target, doc):
        return private_link.ACTION.plan_for(ctx, target, doc)
    return None


def _public_disabled(doc: Mapping[str, Any]) -> bool:
    return str(get_path(doc, PUBLIC, "Enabled")).lower() == "disabled"


def _bypass_set(value: object) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(p.strip().lower() for p in value.split(",") if p.strip() and p.strip().lower() != "none")


# --- the bases ----------------------------------------------------------------------------------------


class FirewallAction(PropertyAction[FP]):
    """Base of the ``*.restrict-network-access`` declarations; see the module docstring."""

    Params: ClassVar[type[FirewallParams]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fw = getattr(cls.Params, "firewall", None)
        if fw is not None:
            separate = fw.bypass is not None and not fw.bypass.startswith(fw.rules + ".")
            cls.settings = (Setting(fw.rules, None, absent=fw.open), Setting(PUBLIC, "Disabled", absent="Enabled"),
                            *((Setting(fw.bypass, "AzureServices", absent="AzureServices"),) if separate else ()))
            cls.whole = (fw.rules,)

    @property
    def firewall(self) -> Firewall:
        return self.Params.firewall

    def _private(self, params: FP, doc: Mapping[str, Any]) -> bool:
        return params.mode == "private-endpoint" or (
            params.mode == "auto" and private_endpoints.has_approved_private_endpoint(doc))

    def _cut_off(self, params: FP, doc: Mapping[str, Any]) -> private_endpoints.CutOff:
        if self._private(params, doc):
            return private_endpoints.cut_off(doc, closing="public")
        fw = self.firewall
        return private_endpoints.cut_off(
            doc, closing="default", acls_path=fw.rules.removeprefix("properties."),
            add_ip_rules=[fw.notation(v) for v in params.allowed_ip_ranges],
            add_subnets=list(getattr(params, "allowed_subnet_ids", ())))

    def plan_for(self, ctx: PlanContext, params: FP, target: str) -> list[Change]:
        if ctx.private_link is not None and params.mode != "firewall":
            resource_id, doc = self.document(ctx, target)
            closed_already = not self._private(params, doc) and self._summary(doc)["defaultAction"] == "Deny"
            if not closed_already:
                cut = private_endpoints.cut_off(doc, closing="public") if params.mode == "private-endpoint" \
                    else self._cut_off(params, doc)
                path = private_path(ctx, resource_id, doc, cut)
                if path is not None:
                    return path
        return super().plan_for(ctx, params, target)

    def values(self, ctx: PlanContext, params: FP, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        if _public_disabled(doc):
            return {}  # private endpoints only already: the firewall no longer matters
        if self._private(params, doc):
            return {PUBLIC: "Disabled"}
        fw = self.firewall
        current = get_path(doc, fw.rules)
        rules: dict[str, Any] = json_copy(dict(current if isinstance(current, Mapping) else fw.open))
        rules["defaultAction"] = "Deny"
        rules["ipRules"] = _added(rules.get("ipRules"), "value",
                                  [fw.rule("value", fw.notation(v)) for v in params.allowed_ip_ranges])
        if fw.subnet_rules:
            rules["virtualNetworkRules"] = _added(rules.get("virtualNetworkRules"), "id",
                                                  [fw.rule("id", s) for s in getattr(params, "allowed_subnet_ids", ())])
        out: dict[str, Any] = {fw.rules: rules}
        if fw.bypass is not None:
            bypass = params.bypass_value() or str(get_path(doc, fw.bypass) or "AzureServices")
            if fw.bypass.startswith(fw.rules + "."):
                rules[fw.bypass.removeprefix(fw.rules + ".")] = bypass
            else:
                out[fw.bypass] = bypass
        return out

    def _summary(self, doc: Mapping[str, Any]) -> dict[str, object]:
        """What the family manages, normalised for comparison, in the order messages list it."""
        fw = self.firewall
        rules = get_path(doc, fw.rules)
        rules = rules if isinstance(rules, Mapping) else fw.open
        out: dict[str, object] = {"defaultAction": str(rules.get("defaultAction", "Allow"))}
        if fw.bypass is not None:
            out["bypass"] = _bypass_set(get_path(doc, fw.bypass, self._absent(fw.bypass)))
        out["ipRules"] = frozenset(ip_key(r.get("value")) for r in rules.get("ipRules") or [] if isinstance(r, Mapping))
        if fw.subnet_rules:
            out["virtualNetworkRules"] = frozenset(str(r.get("id", "")).lower()
                                                   for r in rules.get("virtualNetworkRules") or []
                                                   if isinstance(r, Mapping))
        out["publicNetworkAccess"] = str(get_path(doc, PUBLIC, "Enabled"))
        return out

    def same(self, path: str, have: Any, want: Any) -> bool:
        if path != self.firewall.rules:
            return super().same(path, have, want)
        probe: dict[str, Any] = {"properties": {}}  # compare the two rule sets as the family sees them
        return self._summary(_with(probe, path, have)) == self._summary(_with(probe, path, want))

    def describe(self, doc: Mapping[str, Any], changed: Mapping[str, Any]) -> list[str]:
        """``networkAcls.defaultAction: Allow -> Deny``, the bypass, and the number of rules."""
        fw = self.firewall
        parts = super().describe(doc, {p: v for p, v in changed.items() if p != fw.rules})
        if fw.rules in changed:
            after = _with(doc, fw.rules, changed[fw.rules])
            have, want = self._summary(doc), self._summary(after)
            for key in ("defaultAction", "bypass", "ipRules", "virtualNetworkRules"):
                if key not in want or have[key] == want[key]:
                    continue
                if key == "bypass" and fw.bypass:
                    old, new = (get_path(d, fw.bypass, self._absent(fw.bypass)) for d in (doc, after))
                else:
                    old, new = (len(v) if isinstance(v, frozenset) else v for v in (have[key], want[key]))
                parts.append(f"{fw.rules.removeprefix('properties.')}.{key}: {old} -> {new}")
        return parts

    def refusal(self, ctx: PlanContext, params: FP, doc: Mapping[str, Any]) -> str | None:
        fw = self.firewall
        if fw.sku:
            sku = doc.get("sku")
            found = str(((sku.get("name") or sku.get("tier")) if isinstance(sku, Mapping) else None) or "no SKU")
            if found.lower() != fw.sku.lower():
                return (f"network rules and disabling public network access need the {fw.sku} SKU; this {self.noun} "
                        f"is {found} (upgrade it, or leave it to a person)")
        if params.mode == "private-endpoint" and not private_endpoints.has_approved_private_endpoint(doc):
            return (f"the {self.noun} has no approved private endpoint connection: disabling public network access "
                    "would cut off every client (use mode firewall or auto)")
        if not self._private(params, doc) and self._summary(doc)["defaultAction"] == "Deny":
            return None  # the firewall is closed already: nobody is newly cut off
        return self._cut_off(params, doc).refusal(params.refuse_if_everyone_cut_off)

    def notes(self, ctx: PlanContext, params: FP, doc: Mapping[str, Any]) -> Sequence[str]:
        return (self._cut_off(params, doc).sentence,)

    def patch_body(self, change: Change) -> Any:
        """The whole rule set, without the rules' read-only members (``Firewall.read_only``)."""
        body = super().patch_body(change)
        rules, read_only = get_path(body, self.firewall.rules), self.firewall.read_only
        if not isinstance(rules, dict) or not read_only:
            return body
        for key in ("ipRules", "virtualNetworkRules"):
            if isinstance(rules.get(key), list):
                rules[key] = [{k: v for k, v in r.items() if k not in read_only} if isinstance(r, Mapping) else r
                              for r in rules[key]]
        return body

    def verify(self, state: StateReader, change: Change) -> str | None:
        current = state.get(change.resource_id)
        if current is None:
            return f"{ids.parse(change.resource_id).name} no longer exists"
        before, want, have = (self._summary(d) for d in (change.before or {}, change.after or {}, current))
        wrong = [k for k in want if want[k] != before[k] and have[k] != want[k]]
        parts = []
        in_rules = [k for k in wrong if k != "publicNetworkAccess"]
        if in_rules:
            name = self.firewall.rules.removeprefix("properties.")
            verb = "differ" if name.endswith("s") else "differs"
            parts.append(f"{name} {verb} from the plan in {', '.join(in_rules)}")
        if "publicNetworkAccess" in wrong:
            parts.append(f"publicNetworkAccess is {have['publicNetworkAccess']}, "
                         f"expected {want['publicNetworkAccess']}")
        return "; ".join(parts) or None


class PrivateEndpointsOnly(PropertyAction[PP]):
    """Base of the "private endpoints only" declarations: ``publicNetworkAccess: Disabled``; the
    note says who is cut off, ``refuse_if_everyone_cut_off`` refuses when nobody would remain."""

    settings = (Setting(PUBLIC, "Disabled", absent="Enabled"),)

    def plan_for(self, ctx: PlanContext, params: PP, target: str) -> list[Change]:
        if ctx.private_link is not None:
            resource_id, doc = self.document(ctx, target)
            path = private_path(ctx, resource_id, doc, private_endpoints.cut_off(doc, closing="public"))
            if path is not None:
                return path
        return super().plan_for(ctx, params, target)

    def refusal(self, ctx: PlanContext, params: PP, doc: Mapping[str, Any]) -> str | None:
        return private_endpoints.cut_off(doc, closing="public").refusal(params.refuse_if_everyone_cut_off)

    def notes(self, ctx: PlanContext, params: PP, doc: Mapping[str, Any]) -> Sequence[str]:
        return [private_endpoints.cut_off(doc, closing="public").sentence]


def _added(existing: object, key: str, new: Sequence[dict[str, str]]) -> list[Any]:
    """``existing`` rules plus the ``new`` ones not already there (compared by ``key``, IPs across notations)."""
    rules = list(existing) if isinstance(existing, list) else []
    same = ip_key if key == "value" else (lambda v: str(v or "").lower())
    have = {same(r.get(key)) for r in rules if isinstance(r, Mapping)}
    for rule in new:
        if same(rule[key]) not in have:
            rules.append(rule)
            have.add(same(rule[key]))
    return rules


def _with(doc: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    return with_paths(doc, {path: value})
