"""ARM resource ids: parse, compare case-insensitively, derive types and scopes.

ARM ids arrive in every casing (``/SUBSCRIPTIONS/…/RESOURCEGROUPS/…``); they compare by
``key()`` (lower-cased, no trailing slash) and keep their original text for display and calls.
"""

from __future__ import annotations

from dataclasses import dataclass


def key(resource_id: str) -> str:
    """The comparison key of an ARM id: lower-cased, one leading slash, no trailing slash."""
    rid = resource_id.strip().rstrip("/").lower()
    return rid if rid.startswith("/") else "/" + rid


def canonical(resource_id: str) -> str:
    """The id as ARM writes it, casing kept: one leading slash, no empty or blank segments (``//``,
    ``/ /``), no whitespace around a segment, no trailing slash. Idempotent; ``key(canonical(x))``
    is the comparison key."""
    return "/" + "/".join(p for p in (part.strip() for part in resource_id.split("/")) if p)


def document_type(resource_id: str) -> str:
    """The ``type`` an ARM GET of ``resource_id`` returns: the provider type, or
    ``Microsoft.Resources/resourceGroups`` / ``…/subscriptions`` for the scopes; ``""`` otherwise."""
    rid = parse(resource_id)
    if rid.type:
        return rid.type
    if rid.resource_group:
        return "Microsoft.Resources/resourceGroups"
    return "Microsoft.Resources/subscriptions" if rid.subscription_id else ""


def same(a: str, b: str) -> bool:
    """True when two ARM ids name the same resource (case-insensitive)."""
    return key(a) == key(b)


def is_under(resource_id: str, scope: str) -> bool:
    """True when ``resource_id`` is ``scope`` itself or lies beneath it."""
    rid, sc = key(resource_id), key(scope)
    return rid == sc or rid.startswith(sc + "/")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceId:
    """The parts of an ARM id. ``type`` is ``Namespace/type[/child…]``; empty for scopes."""

    id: str
    subscription_id: str | None
    resource_group: str | None
    namespace: str | None
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def type(self) -> str:
        """``Microsoft.Storage/storageAccounts/blobServices/containers`` style; ``""`` for a scope."""
        if not self.namespace:
            return ""
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else ""

    def parent(self) -> ResourceId | None:
        """The enclosing resource (``…/securityRules/r`` → its NSG); None for top-level resources."""
        if len(self.types) < 2:
            return None
        cut = self.id.rstrip("/").rsplit("/", 2)[0]
        return parse(cut)


def parse(resource_id: str) -> ResourceId:
    """Split an ARM id into its parts. Accepts any casing and scope-only ids; never raises.

    Nested provider segments (``…/providers/Microsoft.Security/assessments/x``) take the last
    provider as the resource type.
    """
    text = resource_id.strip()
    parts = [p for p in text.split("/") if p]
    sub = rg = ns = None
    types: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(parts):
        seg = parts[i].lower()
        if seg == "subscriptions" and i + 1 < len(parts) and ns is None:
            sub = parts[i + 1]
            i += 2
        elif seg == "resourcegroups" and i + 1 < len(parts) and ns is None:
            rg = parts[i + 1]
            i += 2
        elif seg == "providers" and i + 1 < len(parts):
            ns = parts[i + 1]
            types, names = [], []
            i += 2
            while i + 1 < len(parts) and parts[i].lower() != "providers":
                types.append(parts[i])
                names.append(parts[i + 1])
                i += 2
            if i < len(parts) and parts[i].lower() != "providers":
                # a dangling type without a name (a collection URL): keep the type
                types.append(parts[i])
                i += 1
        else:
            i += 1
    return ResourceId(
        id=text, subscription_id=sub, resource_group=rg, namespace=ns, types=tuple(types), names=tuple(names)
    )


def resource_type(resource_id: str) -> str:
    """The ARM type of an id (``Microsoft.Network/networkSecurityGroups``); ``""`` for scopes."""
    return parse(resource_id).type


def type_key(type_name: str) -> str:
    """Comparison key for ARM types (case-insensitive)."""
    return type_name.strip().strip("/").lower()
