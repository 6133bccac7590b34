"""Private endpoint connections and who closing public access cuts off (shared by the actions).

Many ARM resources embed their private endpoint connections in their own document, all in the
same shape (Cognitive Services accounts, Key Vault vaults, storage accounts, ML workspaces,
container registries)::

    "properties": {
      "privateEndpointConnections": [
        {"id": ".../privateEndpointConnections/{name}",
         "properties": {
           "privateEndpoint": {"id": "/subscriptions/.../Microsoft.Network/privateEndpoints/pe1"},
           "privateLinkServiceConnectionState": {"status": "Approved", "description": "...",
                                                 "actionsRequired": "None"}}}]}

(Azure/azure-rest-api-specs, e.g. cognitiveservices stable/2024-10-01
``examples/GetPrivateEndpointConnection.json`` and keyvault stable/2023-07-01
``examples/getPrivateEndpointConnection.json``; ``status`` is Pending, Approved, Rejected or, in Key
Vault, Disconnected.) Only an **Approved** connection carries traffic.

The API is three calls:

* :func:`connections` — every embedded connection, parsed (:class:`Connection`);
* :func:`has_approved_private_endpoint` — whether any connection is Approved;
* :func:`cut_off` — who would lose access (:class:`CutOff`) when public network access is
  disabled (``closing="public"``: only approved private endpoints remain) or when the firewall's
  default action becomes Deny (``closing="default"``: private endpoints, IP rules and virtual
  network rules remain, the existing ones plus those being added). ``CutOff.everyone`` is true when
  no client path remains at all; ``CutOff.sentence`` is the line for a plan's note.

Nothing here reads beyond the document it is given: a connection whose private endpoint lives in
another subscription is counted from the embedded state, not looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from remediator.words import plural

__all__ = ["Connection", "CutOff", "connections", "cut_off", "has_approved_private_endpoint"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """One private endpoint connection as embedded in a resource document."""

    id: str
    """The connection's own id (``…/privateEndpointConnections/{name}``), ``""`` when absent."""
    private_endpoint_id: str
    """The ``Microsoft.Network/privateEndpoints`` id, ``""`` when absent."""
    status: str
    """``privateLinkServiceConnectionState.status`` as ARM wrote it (``""`` when absent)."""

    @property
    def approved(self) -> bool:
        return self.status.strip().lower() == "approved"

    @property
    def label(self) -> str:
        """A short name for notes: the private endpoint's name, else the connection's."""
        for text in (self.private_endpoint_id, self.id):
            if text:
                return text.rstrip("/").rsplit("/", 1)[-1]
        return "(unnamed)"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def connections(doc: Mapping[str, Any] | None) -> tuple[Connection, ...]:
    """The private endpoint connections embedded in ``doc`` (``properties.privateEndpointConnections``).

    Entries that are not objects are skipped; a missing or non-list property means none.
    """
    raw = _mapping(_mapping(doc).get("properties")).get("privateEndpointConnections")
    if not isinstance(raw, list):
        return ()
    out: list[Connection] = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        props = _mapping(item.get("properties"))
        out.append(Connection(
            id=_text(item.get("id")),
            private_endpoint_id=_text(_mapping(props.get("privateEndpoint")).get("id")),
            status=_text(_mapping(props.get("privateLinkServiceConnectionState")).get("status"))))
    return tuple(out)


def has_approved_private_endpoint(doc: Mapping[str, Any] | None) -> bool:
    """True when ``doc`` has at least one Approved private endpoint connection."""
    return any(c.approved for c in connections(doc))


@dataclass(frozen=True, slots=True, kw_only=True)
class CutOff:
    """Who keeps access after closing, and whether that is nobody."""

    closing: Literal["public", "default"]
    private_endpoints: tuple[str, ...]
    """Labels of the approved private endpoints (they keep access either way)."""
    not_approved: tuple[str, ...]
    """Labels of connections that exist but carry no traffic (Pending, Rejected, Disconnected)."""
    ip_rules: tuple[str, ...]
    """IP rules that keep access (``closing="default"`` only; public access off ignores them)."""
    subnets: tuple[str, ...]
    """Virtual network rules (subnet ids) that keep access (``closing="default"`` only)."""

    @property
    def everyone(self) -> bool:
        """True when no client keeps a path: no approved private endpoint and no rule."""
        return not (self.private_endpoints or self.ip_rules or self.subnets)

    @property
    def sentence(self) -> str:
        """One line for a plan's note, e.g. ``cuts off every client: no approved private endpoint
        and no IP or virtual network rule``."""
        pending = (f" ({plural(len(self.not_approved), 'connection')} not approved: "
                   f"{_few(self.not_approved)})") if self.not_approved else ""
        if self.everyone:
            why = "no approved private endpoint" if self.closing == "public" else \
                "no approved private endpoint and no IP or virtual network rule"
            return f"cuts off every client: {why}{pending}"
        kept: list[str] = []
        if self.private_endpoints:
            kept.append(f"{plural(len(self.private_endpoints), 'approved private endpoint')} "
                        f"({_few(self.private_endpoints)})")
        if self.ip_rules:
            kept.append(f"{plural(len(self.ip_rules), 'IP rule')} ({_few(self.ip_rules)})")
        if self.subnets:
            names = tuple(s.rstrip("/").rsplit("/", 1)[-1] for s in self.subnets)
            kept.append(f"{plural(len(self.subnets), 'virtual network rule')} ({_few(names)})")
        return f"cuts off every client except {', '.join(kept)}{pending}"

    def refusal(self, refuse_if_everyone_cut_off: bool) -> str | None:
        """The refusal of a change that would cut off every client, when the playbook asks for one."""
        if refuse_if_everyone_cut_off and self.everyone:
            return (f"{self.sentence} (refuse_if_everyone_cut_off is set); to build a private endpoint first, set "
                    "private_link_subnets and private_dns_zones in the settings")
        return None


def _few(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … {len(items) - limit} more" if len(items) > limit else "")


def _rules(acls: Mapping[str, Any], key: str, field: str) -> list[str]:
    raw = acls.get(key)
    if not isinstance(raw, list):
        return []
    return [_text(r.get(field)) for r in raw if isinstance(r, Mapping) and _text(r.get(field))]


def _union(first: Sequence[str], more: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for item in (*first, *more):
        seen.setdefault(item.lower(), item)
    return tuple(seen.values())


def cut_off(doc: Mapping[str, Any] | None, *, closing: Literal["public", "default"],
            acls_path: str = "networkAcls", add_ip_rules: Sequence[str] = (),
            add_subnets: Sequence[str] = ()) -> CutOff:
    """Who loses access to ``doc``'s resource when it is closed.

    ``closing="public"``: public network access Disabled; only approved private endpoints remain
    (IP and virtual network rules apply to the public endpoint and stop counting).
    ``closing="default"``: the firewall's default action Deny; approved private endpoints, the
    existing rules under ``properties.<acls_path>`` (``ipRules[].value``,
    ``virtualNetworkRules[].id``) and ``add_ip_rules``/``add_subnets`` remain.
    """
    conns = connections(doc)
    approved = tuple(c.label for c in conns if c.approved)
    others = tuple(f"{c.label} {c.status or 'no status'}" for c in conns if not c.approved)
    if closing == "public":
        return CutOff(closing=closing, private_endpoints=approved, not_approved=others, ip_rules=(),
                      subnets=())
    acls = _mapping(_mapping(_mapping(doc).get("properties")).get(acls_path))
    return CutOff(closing=closing, private_endpoints=approved, not_approved=others,
                  ip_rules=_union(_rules(acls, "ipRules", "value"), add_ip_rules),
                  subnets=_union(_rules(acls, "virtualNetworkRules", "id"), add_subnets))
