"""The checks behind the actions' parameter validators (see the package docstring); no pydantic here."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from remediator import ids
from remediator.checks.ports import PortSpecError, parse_range
from remediator.findings.roles import PRIVILEGED_ROLES

Check = Callable[..., Any]


def per_class(check: Check, args: Callable[[type], Mapping[str, Any]]) -> classmethod[Any, Any, Any]:
    """A field validator (a classmethod) that returns ``check(value, **args(cls))``: for a check that
    depends on the model class (a service's refused prefixes). ``fastcheck`` bakes ``args(cls)`` of each
    model into its schema, so ``args`` must return JSON values (lists, strings, numbers)."""

    def validate(cls: type, value: Any) -> Any:
        return check(value, **args(cls))

    validate.__fastcheck__ = (check, args)  # type: ignore[attr-defined]
    validate.__name__ = validate.__qualname__ = f"per_class_{check.__name__}"
    return classmethod(validate)


# --- ARM ids ------------------------------------------------------------------------------------


def valid_id(value: str, rtype: str, what: str, *, shape: str = "") -> str:
    """``value`` stripped, when it is the full ARM id of one ``rtype`` resource in a resource group; else
    a one-line ``ValueError`` naming ``what`` and the expected shape (for parameter validators).
    ``shape`` is the id's tail after ``/providers/`` (default ``<rtype>/<name>``)."""
    text = value.strip()
    rid = ids.parse(text)
    if ids.type_key(rid.type) != ids.type_key(rtype) or not rid.subscription_id or not rid.resource_group \
            or len(rid.names) != len(rtype.split("/")) - 1 or not text.startswith("/"):
        raise ValueError(f"{value!r} is not a {what} id; expected /subscriptions/<id>/resourceGroups/<group>/"
                         f"providers/{shape or rtype + '/<name>'}")
    return text


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


# --- firewalls (remediator.actions.firewall) ----------------------------------------------------

SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"

# Ranges whose addresses are never a client's address at a public endpoint, and why (see the
# firewall module's docstring).
NOT_PUBLIC: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple((ipaddress.IPv4Network(net), why) for net, why in (
    ("10.0.0.0/8", "private, RFC 1918"), ("172.16.0.0/12", "private, RFC 1918"),
    ("192.168.0.0/16", "private, RFC 1918"), ("100.64.0.0/10", "shared address space, RFC 6598"),
    ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("0.0.0.0/8", "'this network'"),
    ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved")))


def valid_ip_ranges(values: Sequence[str], refused_prefixes: Collection[int] = frozenset({31})) -> list[str]:
    """Public IPv4 addresses and CIDR ranges for firewall IP rules, normalised (a /32 becomes the
    address); a ``ValueError`` of one line naming the bad item otherwise (see the firewall module)."""
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


# --- NSG inbound rules (remediator.actions.network) ---------------------------------------------

WORLD_SOURCES = frozenset({"*", "internet", "any", "0.0.0.0/0", "::/0"})
_SERVICE_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[.\-][A-Za-z0-9]+)*$")


def nsg_ports(value: list[int | str]) -> list[int | str]:
    """Every item a port, a range ``A-B`` or ``*``."""
    for item in value:
        try:
            parse_range(item)
        except PortSpecError as e:
            raise ValueError(str(e)) from None
    return value


def nsg_sources(value: list[str]) -> list[str]:
    """CIDRs, addresses or service tags narrower than the whole Internet."""
    for item in value:
        text = item.strip()
        if text.lower() in WORLD_SOURCES:
            raise ValueError(f"{item!r} is the whole Internet; allowed_sources must be narrower")
        if _SERVICE_TAG.match(text):
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is neither a CIDR, an IP address nor a service tag") from None
        if net.prefixlen == 0:
            raise ValueError(f"{item!r} is the whole Internet; allowed_sources must be narrower")
    return value


def nsg_sources_match_mode(params: Any) -> Any:
    """``allowed_sources`` given exactly when ``mode`` is narrow."""
    if params.mode == "narrow" and not params.allowed_sources:
        raise ValueError("mode 'narrow' needs allowed_sources (the CIDRs or service tags that may still "
                         "reach the ports)")
    if params.mode != "narrow" and params.allowed_sources:
        raise ValueError(f"allowed_sources applies only to mode 'narrow' (mode is {params.mode!r})")
    return params


# --- role assignments (remediator.actions.rbac) -------------------------------------------------

RBAC_ROLE_NAMES = ("Owner", "Contributor", "User Access Administrator", "Role Based Access Control Administrator",
                   "Reader")
"""The built-in roles a playbook may name (``rbac.KNOWN_ROLES`` maps them to their GUIDs)."""
RBAC_DEFAULT_ROLES = RBAC_ROLE_NAMES[:4]  # Azure's privileged administrator roles
SCOPE_KEYWORDS = ("resource", "resource-group", "subscription")
_ROLE_KEYS = frozenset(n.lower() for n in RBAC_ROLE_NAMES)


def rbac_principal(value: str | None) -> str | None:
    if value is not None and not _GUID.match(value.strip()):
        raise ValueError(f"{value!r} is not an object id (a GUID)")
    return value.strip() if value else value


def rbac_roles(value: list[str]) -> list[str]:
    for role in value:
        if role.strip().lower() not in _ROLE_KEYS and not _GUID.match(role.strip()):
            raise ValueError(f"unknown role {role!r}: use one of {', '.join(RBAC_DEFAULT_ROLES)}, Reader, "
                             "or a role definition GUID")
    return value


def rbac_scope(value: str | None) -> str | None:
    if value is not None and value not in SCOPE_KEYWORDS and not value.startswith("/"):
        raise ValueError(f"{value!r}: expected {', '.join(SCOPE_KEYWORDS)} or an ARM scope id starting "
                         "with /")
    return value


# --- policy exemptions (remediator.actions.exemptions) ------------------------------------------

_POLICY_REF = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|"
                         r"(/[^/]+/[^/]+)*/providers/microsoft\.authorization/policydefinitions/[^/]+)$", re.I)


def policy_refs(value: list[str]) -> list[str]:
    for item in value:
        if not _POLICY_REF.match(item.strip()):
            raise ValueError(f"{item!r}: expected a policy definition GUID or a full id "
                             "(/providers/Microsoft.Authorization/policyDefinitions/<name>)")
    return [v.strip() for v in value]


# --- managed disks (remediator.actions.disks) ---------------------------------------------------


def disk_access_id(value: str | None) -> str | None:
    return None if value is None else valid_id(value, "Microsoft.Compute/diskAccesses", "disk access")


def disk_access_for_private(params: Any) -> Any:
    if params.network_access_policy == "AllowPrivate" and not params.disk_access_id:
        raise ValueError("network_access_policy AllowPrivate needs disk_access_id")
    if params.network_access_policy == "DenyAll" and params.disk_access_id:
        raise ValueError("disk_access_id is only used with network_access_policy AllowPrivate")
    return params


def disk_encryption_set_id(value: str) -> str:
    return valid_id(value, "Microsoft.Compute/diskEncryptionSets", "disk encryption set")


# --- virtual network peerings (remediator.actions.peering) --------------------------------------

VNET_TYPE = "Microsoft.Network/virtualNetworks"


def peering_networks(value: list[str]) -> list[str]:
    """Virtual network ids, or globs that name their subscription before any ``*`` or ``?``."""
    for item in value:
        text = item.strip()
        if "[" in text or "]" in text:  # ARM names never hold brackets; in a glob they would be a class
            raise ValueError(f"{item!r}: brackets are not part of a virtual network id (globs take * and ? only)")
        literal = re.split(r"[*?]", text, maxsplit=1)[0]
        if not re.match(r"^/subscriptions/[^/]+/", literal, re.IGNORECASE):
            raise ValueError(f"{item!r}: expected a virtual network id, or a glob that names its subscription "
                             "before any * or ? (/subscriptions/<id>/resourceGroups/rg-hub/…/virtualNetworks/"
                             "hub-*); use allowed_subscriptions to allow whole subscriptions")
        if "*" not in text and "?" not in text and \
                ids.type_key(ids.resource_type(text)) != ids.type_key(VNET_TYPE):
            raise ValueError(f"{item!r} is not a virtual network id (…/providers/Microsoft.Network/"
                             "virtualNetworks/<name>)")
    return [v.strip().rstrip("/") for v in value]


def peering_subscriptions(value: list[str]) -> list[str]:
    for item in value:
        if not _GUID.match(item.strip()):
            raise ValueError(f"{item!r} is not a subscription id (a GUID)")
    return [v.strip().lower() for v in value]


# --- registry credentials (remediator.actions.acr) ----------------------------------------------

_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")  # a Key Vault secret name


def vault_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query \
            or parts.username or parts.password:
        raise ValueError(f"{value!r} is not a vault URL; expected https://<vault-name>.vault.azure.net")
    return f"https://{parts.netloc.lower()}"


def secret_name(value: str) -> str:
    if not _SECRET_NAME.match(value):
        raise ValueError(f"{value!r} is not a Key Vault secret name (1-127 letters, digits and hyphens)")
    return value


# --- AKS, Cosmos DB, AI services outbound, Defender plans, diagnostic settings ------------------------


def aks_authorized_ranges(value: list[str]) -> list[str]:
    """Public IPv4 ranges for an AKS API server, each written as CIDR (a bare address as ``/32``)."""
    return [v if "/" in v else f"{v}/32" for v in valid_ip_ranges(value, frozenset())]


def any_public_ranges(value: list[str]) -> list[str]:
    """Public IPv4 addresses or ranges, ``/31`` allowed (services that take any prefix length)."""
    return valid_ip_ranges(value, frozenset())


def group_object_ids(value: list[str]) -> list[str]:
    """Microsoft Entra group object ids (GUIDs), lower-case canonical."""
    import uuid  # noqa: PLC0415

    out = []
    for item in value:
        try:
            out.append(str(uuid.UUID(item.strip())))
        except ValueError:
            raise ValueError(f"{item!r} is not a group object id (a GUID)") from None
    return out


_FQDN = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def host_names(value: list[str]) -> list[str]:
    """Host names (an optional leading ``*.``), lower-case, without a trailing dot."""
    out = []
    for item in value:
        name = item.strip().lower().rstrip(".")
        if not _FQDN.match(name):
            raise ValueError(f"{item!r} is not a host name (such as stdata.blob.core.windows.net)")
        out.append(name)
    return out


def known_name(value: str | None, *, known: Sequence[str], what: str) -> str | None:
    """``value`` as spelled in ``known`` (compared without case); else an error with did-you-mean."""
    if value is None:
        return None
    match = next((k for k in known if k.lower() == value.strip().lower()), None)
    if match is None:
        import difflib  # noqa: PLC0415

        close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown {what} {value!r}; {hint}known: {', '.join(known)}")
    return match


def unique_names(value: list[Any]) -> list[Any]:
    """Items (objects or mappings with a ``name``) whose names appear once each, compared without case."""
    names = [str(e.get("name") if isinstance(e, Mapping) else getattr(e, "name", "")).lower() for e in value]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{twice[0]!r} is listed twice")
    return value


def log_category_names(value: list[str]) -> list[str]:
    """Diagnostic log category names: letters, digits, ``-`` and ``_``."""
    for c in value:
        if not c or not all(ch.isalnum() or ch in "-_" for ch in c):
            raise ValueError(f"{c!r} is not a log category name (letters, digits, - and _)")
    return value


def some_log_category(params: Any) -> Any:
    """A diagnostic setting sends at least one category group, category or metric category."""
    if not any(getattr(params, f, None) for f in ("category_groups", "categories", "metrics")):
        raise ValueError("name at least one of category_groups, categories or metrics")
    return params


# --- PIM eligibility (remediator.actions.eligible) ---------------------------------------------------------

ELIGIBLE_ROLE_NAMES = tuple(PRIVILEGED_ROLES.values())
"""The privileged built-in roles a playbook may name for ``rbac.make-eligible`` (or give a role GUID)."""
_ELIGIBLE_ROLE_KEYS = frozenset(n.lower() for n in ELIGIBLE_ROLE_NAMES)
_PIM_DURATION = re.compile(r"^P(?:(?P<d>\d{1,4})D)?(?:T(?:(?P<h>\d{1,4})H)?(?:(?P<m>\d{1,5})M)?)?$")
_RESOURCE_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+(/[A-Za-z][A-Za-z0-9]*)+$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")


def eligible_roles(value: list[str]) -> list[str]:
    """Privileged built-in role names (any case) or role definition GUIDs."""
    for role in value:
        if role.strip().lower() not in _ELIGIBLE_ROLE_KEYS and not _GUID.match(role.strip()):
            raise ValueError(f"unknown role {role!r}: use one of {', '.join(ELIGIBLE_ROLE_NAMES)}, or a role "
                             "definition GUID")
    return value


def pim_duration(value: str) -> str:
    """An ISO 8601 duration PIM takes (``P365D``, ``P30D``, ``PT8H``), at least PIM's 5 minutes, at most 10 years."""
    m = _PIM_DURATION.match(value.strip())
    if m is None or value.strip() in ("P", "PT") or value.strip().endswith("T"):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as P365D, P30D or PT8H")
    minutes = int(m.group("d") or 0) * 1440 + int(m.group("h") or 0) * 60 + int(m.group("m") or 0)
    if not 5 <= minutes <= 3650 * 1440:
        raise ValueError(f"{value!r} must be between PT5M (PIM's minimum) and P3650D")
    return value.strip()


def resource_type_names(value: list[str]) -> list[str]:
    """ARM resource types (``Microsoft.MachineLearningServices/workspaces``)."""
    for t in value:
        if not _RESOURCE_TYPE.match(t.strip()):
            raise ValueError(f"{t!r} is not an ARM resource type (Namespace.Provider/type, e.g. "
                             "Microsoft.Storage/storageAccounts)")
    return [t.strip() for t in value]


def resource_group_names(value: list[str]) -> list[str]:
    """Resource group names (letters, digits, ``-_.()``, up to 90 characters)."""
    for g in value:
        if not _RESOURCE_GROUP.match(g.strip()) or g.strip().endswith("."):
            raise ValueError(f"{g!r} is not a resource group name (letters, digits, -_.(), up to 90 characters)")
    return [g.strip() for g in value]


def some_scope(params: Any) -> Any:
    """``rbac.make-eligible`` acts only in the scopes a playbook names: resource types, resource groups or tags."""
    if not (getattr(params, "resource_types", None) or getattr(params, "resource_groups", None)
            or getattr(params, "tags", None)):
        raise ValueError("name the scopes to act on: at least one of resource_types, resource_groups or tags")
    return params


# --- advice messages ----------------------------------------------------------------------------------

ADVICE_LINE_MAX = 300


def advice_steps(value: list[str]) -> list[str]:
    """Recommended human steps: each one non-empty line of at most ``ADVICE_LINE_MAX`` characters."""
    for i, step in enumerate(value):
        if not step.strip() or "\n" in step or len(step) > ADVICE_LINE_MAX:
            raise ValueError(f"steps[{i}] must be one non-empty line of at most {ADVICE_LINE_MAX} characters")
    return [" ".join(s.split()) for s in value]


def advice_summary(value: str) -> str:
    """One line of at most ``ADVICE_LINE_MAX`` characters."""
    if "\n" in value or len(value) > ADVICE_LINE_MAX:
        raise ValueError(f"summary must be one line of at most {ADVICE_LINE_MAX} characters")
    return " ".join(value.split())
