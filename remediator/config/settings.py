"""Settings: environment variables plus an optional YAML file; the environment wins.

Variables are ``REMEDIATOR_<FIELD>`` (``REMEDIATOR_SLACK_CHANNEL``, ``REMEDIATOR_ADMINS`` …), except
Slack's standard names for the three secrets: ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` and
``SLACK_APP_TOKEN``. ``REMEDIATOR_CONFIG`` names the YAML file when ``load_settings`` is not given
one. The file uses the field names as keys::

    slack_channel: C0123456789
    slack_team_id: T0123456789            # approvals are accepted only from this workspace
    admins: [S0614TZR7]                   # who may /remediate pause and resume
    approver_roles:                       # the playbooks' approver roles → Slack users (U…/W…) / groups (S…)
      security-oncall: [S0614TZR7]
      security-leads: [U05K8NQ2R7T, U05M3XH9V4P]
      platform-owners: [S0615PLT8Q]
    approvers: [S0614TZR7]                # optional global narrowing (see below)
    auto_budget_per_hour: 20
    undo_window: 24h
    store_url: sqlite:///remediator.db
    playbooks_dir: playbooks              # relative paths in the file are relative to the file; a folder other
                                          # than the shipped one is an overlay of the shipped playbooks
    # where monitor.enable-diagnostic-logs sends resource logs (and/or diagnostics_storage_account_id)
    diagnostics_workspace_id: /subscriptions/…/resourceGroups/logs/providers/Microsoft.OperationalInsights/workspaces/l
    private_link_subnets:                 # where new private endpoints go, by the resource's region; "*" = any other
      westeurope: /subscriptions/…/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/vnet-hub/subnets/pe
      "*": /subscriptions/…/subnets/snet-pe-default
    private_dns_zones:                    # the landing zone's central private DNS zones, by zone name
      privatelink.openai.azure.com: /subscriptions/…/Microsoft.Network/privateDnsZones/privatelink.openai.azure.com
    # Defender's continuous export that feeds remediator: doctor and the daily reconcile check it per subscription
    export_event_hub_id: /subscriptions/…/providers/Microsoft.EventHub/namespaces/ns/eventhubs/defender-export
    export_sources: [Alerts, Assessments, SubAssessments]   # what must be exported (the default)
    export_resource_group: rg-security   # where defender.restore-export creates a missing export in each subscription
    export_silence: 24h                   # no export for this long while findings are open: one loud message

Decisions:

* **Requirements are additive** (Atlantis #3908): a global setting can only make approval harder.
  ``approvers`` is therefore a *narrowing* allowlist: when set, an approver must be one of the
  playbook's approvers **and** one of these (user ids, or members of these user groups). It can
  never let someone approve whom the playbook does not list. ``min_quorum`` raises every
  playbook's quorum to at least this many distinct approvals; it never lowers one. When a raised
  quorum (this, or two people for a one-way or cost-bearing change) exceeds the individual users a
  playbook's approvers name (and no user group is among them), the ``admins`` are added to that
  request's approvers, so that it can be approved at all (``approval.staffed``).
* **Approvers are roles** in playbooks (``approvers: [security-oncall]``): the shipped ones carry no
  workspace-specific ids. ``approver_roles`` maps each role to Slack ids; in the environment
  (Functions app settings) roles are separated by ``;`` and ids by ``,`` or spaces:
  ``REMEDIATOR_APPROVER_ROLES=security-oncall=S0614TZR7;security-leads=U05K8NQ2R7T,U05M3XH9V4P``.
  A role the playbooks use without a mapping stops
  ``serve``, the Functions app and ``doctor`` (``remediator.config.roles``): nobody could approve.
* ``admins`` may pause and resume; empty means nobody can (fail closed). They are also the
  approvers of an ``approval: auto`` remediation that needs a human because auto-remediation is
  paused or the subscription's hourly budget is spent (such a playbook lists no approvers).
* ``ingest_token`` (``REMEDIATOR_INGEST_TOKEN``) protects ``remediator serve``'s findings ingest
  (``Authorization: Bearer <token>``); serve refuses to start without one unless run with
  ``--no-ingest``. On Functions the ingest route is protected by a function key instead.
* Secrets come from the environment only: a secret key in the file is an error (files get
  committed and copied around; the environment is what Key Vault references and app settings fill).
  Secrets never appear in ``repr``/``str`` (``field(repr=False)``) or in ``describe()``.
* An empty variable counts as unset. An unknown ``REMEDIATOR_*`` variable is logged with a
  "did you mean" hint (other components may use the prefix); an unknown key in the file is an
  error naming ``file:line``.

* ``private_link_subnets`` and ``private_dns_zones`` (``remediator.actions.private_link``): with them the
  network fixes build a private endpoint (and its DNS zone group) before closing public access; without
  them a fix that would cut every client off refuses. Each subnet id and zone id is parsed (a wrong one is
  an error at ``file:line`` of its own key); a zone id must name its zone; a zone name that no supported
  sub-resource uses is a warning (logged, with "did you mean"). In the environment:
  ``REMEDIATOR_PRIVATE_LINK_SUBNETS=westeurope=/subscriptions/…;*=/subscriptions/…`` (the same for zones).

* ``custom_roles`` (``remediator.actions.custom_roles``): the fixes of types no built-in role narrower than
  Contributor writes grant remediator's custom roles, by their deterministic ids; a deployment that created its
  own maps a role's key to that role's id (``REMEDIATOR_CUSTOM_ROLES=synapse-workspace-settings=<guid>``). An
  unknown key or an id that is not a GUID is an error at ``file:line`` of the key.

Errors are ``ConfigError`` with one line naming the variable or ``file:line: key``.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from remediator import ids
from remediator.errors import ConfigError
from remediator.playbooks.model import GUID_PATTERN, ROLE_PATTERN, SLACK_ID_PATTERN, parse_duration
from remediator.playbooks.yamlload import YamlProblem, decode, load

if TYPE_CHECKING:
    from remediator.actions.private_link_table import PrivateLinkSettings
    from remediator.privilege.elevation import ElevationSettings

log = logging.getLogger("remediator.config")

ENV_PREFIX = "REMEDIATOR_"
CONFIG_ENV = "REMEDIATOR_CONFIG"
SECRET_ENV: dict[str, str] = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "ingest_token": "REMEDIATOR_INGEST_TOKEN",
}
Elevation = Literal["standing", "pim-assign", "pim-activate"]
ELEVATIONS: tuple[Elevation, ...] = ("standing", "pim-assign", "pim-activate")

_SLACK_ID = re.compile(SLACK_ID_PATTERN)
_GUID = re.compile(GUID_PATTERN)
_TEAM = re.compile(r"^T[A-Z0-9]{6,20}$")
_ENTERPRISE = re.compile(r"^E[A-Z0-9]{6,20}$")
_LOCAL_HOSTS = ("http://127.0.0.1", "http://localhost", "http://[::1]")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a deployment configures. Build with ``load_settings``; tests may construct it."""

    # Slack
    slack_bot_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_channel: str = ""
    slack_api_url: str = "https://slack.com/api/"  # GovSlack: https://slack-gov.com/api/
    slack_team_id: str | None = None  # the workspace approvals must come from (user.team_id); unset: auth.test's
    slack_enterprise_id: str | None = None  # the Enterprise Grid org approvals must come from
    # `remediator serve`: the bearer token POST /api/findings requires (serve refuses to start without one)
    ingest_token: str = field(default="", repr=False)
    # who decides
    approver_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # role → Slack ids
    approvers: tuple[str, ...] = ()  # global narrowing allowlist (users/groups); empty = no extra requirement
    min_quorum: int = 1  # floor for every playbook's quorum
    admins: tuple[str, ...] = ()  # may pause/resume; approve auto playbooks that need a human
    # where things live
    store_url: str = "sqlite:///remediator.db"
    playbooks_dir: Path = Path("playbooks")
    exemptions_file: Path | None = None
    # Azure and privilege
    arm_endpoint: str = "https://management.azure.com"
    authority_host: str | None = None  # Entra authority for sovereign clouds (login.microsoftonline.us …)
    # names beside ids (remediator.planning.names): Microsoft Graph's endpoint, unset = the ARM endpoint's cloud's
    # (graph.microsoft.com, graph.microsoft.us, microsoftgraph.chinacloudapi.cn), "off" = principals stay ids
    graph_endpoint: str | None = None
    names_ttl: timedelta = timedelta(hours=1)  # how long a looked-up name (or its absence) is kept
    elevation: Elevation = "pim-assign"
    executor_principal_id: str | None = None  # object id of the identity that writes
    broker_client_id: str | None = None  # client id of the managed identity that creates PIM requests
    pim_duration: timedelta = timedelta(minutes=15)  # lifetime of a time-bound assignment (PIM minimum 5m)
    protected_principals: frozenset[str] = frozenset()  # never revoked; the executor is always included
    # emergency-access (break-glass) accounts: rbac.make-eligible never makes them eligible, time-bound or removes them
    break_glass_principals: frozenset[str] = frozenset()
    # behaviour
    auto_budget_per_hour: int = 20  # automatic remediations per subscription per clock hour; 0 = never auto
    undo_window: timedelta = timedelta(hours=24)  # how long after an apply Undo may be requested
    reminder_before: timedelta | None = None  # remind this long before expiry when a playbook sets no remind_after
    storm_threshold: int = 5  # this many new requests of one playbook in one resource group → one digest; 0 = off
    group_wait: timedelta = timedelta(seconds=10)  # how long a new request waits for siblings to share a digest
    # results of remediations with no approval message (auto-applied) of one playbook within this long of
    # the first share one message, updated in place (remediator.lifecycle.results); 0 = a message each
    result_window: timedelta = timedelta(minutes=15)
    # lease lifetime and job visibility: renewed every third of it while a job runs, so a killed
    # worker's lease frees and its job comes back within it (remediator.lifecycle.lease)
    lock_ttl: timedelta = timedelta(seconds=60)
    max_deliveries: int = 5  # a job delivered more often than this is poison: its remediation fails
    # the backlog scan and daily reconcile (Resource Graph): neither set = every subscription the identity reads
    scan_subscriptions: tuple[str, ...] = ()  # subscription ids to scan
    scan_management_group: str | None = None  # or one management group (its name/id)
    # where resource logs go (monitor.enable-diagnostic-logs): a Log Analytics workspace and/or a storage account
    diagnostics_workspace_id: str | None = None  # /subscriptions/…/providers/Microsoft.OperationalInsights/workspaces/…
    diagnostics_storage_account_id: str | None = None  # /subscriptions/…/providers/Microsoft.Storage/storageAccounts/…
    # … and/or an Event Hub: the namespace's authorization rule and the hub's name (both, for the Event Hub playbooks)
    diagnostics_event_hub_authorization_rule_id: str | None = None  # …/namespaces/…/authorizationRules/…
    diagnostics_event_hub_name: str | None = None  # the event hub in that namespace
    # Private Link: where new private endpoints go (region or "*" → subnet id) and the central zones (name → id)
    private_link_subnets: Mapping[str, str] = field(default_factory=dict, hash=False)
    private_dns_zones: Mapping[str, str] = field(default_factory=dict, hash=False)
    # Defender's continuous export that feeds remediator (remediator.actions.continuous_export): watched by doctor
    # and the daily reconcile, restored by defender.restore-export
    export_event_hub_id: str | None = None  # …/providers/Microsoft.EventHub/namespaces/<ns>/eventhubs/<hub>
    export_sources: tuple[str, ...] = ("Alerts", "Assessments", "SubAssessments")  # what must be exported
    export_resource_group: str | None = None  # where a missing export is created (unset: the hub's, in its sub)
    export_silence: timedelta = timedelta(hours=24)  # nothing exported this long with open findings: a loud message
    # remediator's custom roles (remediator.actions.custom_roles): key → the id of the role to grant instead of the
    # shipped one's deterministic id (a role the deployment created itself)
    custom_roles: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        protected = {p.lower() for p in self.protected_principals}
        if self.executor_principal_id:
            protected.add(self.executor_principal_id.lower())
        object.__setattr__(self, "protected_principals", frozenset(protected))
        if self.slack_api_url and not self.slack_api_url.endswith("/"):
            object.__setattr__(self, "slack_api_url", self.slack_api_url + "/")

    def elevation_settings(self) -> ElevationSettings:
        """The privilege strategy's settings (``remediator.privilege.elevation.make_elevator``)."""
        from remediator.privilege.elevation import ElevationSettings  # noqa: PLC0415  (keeps config light to import)

        return ElevationSettings(strategy=self.elevation, executor_principal_id=self.executor_principal_id,
                                 duration=self.pim_duration)

    def for_actions(self) -> dict[str, Any]:
        """The settings the actions' plans may read (``PlanContext.settings``), by field name: every
        setting but the secrets."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in SECRET_ENV}
    def private_link(self) -> PrivateLinkSettings | None:
        """The private-link settings the planner hands the actions (None when neither is set); the zone names
        of the cloud the ARM endpoint belongs to."""
        from remediator.actions.private_link_table import PrivateLinkSettings, cloud_of  # noqa: PLC0415

        if not (self.private_link_subnets or self.private_dns_zones):
            return None
        return PrivateLinkSettings(subnets=dict(self.private_link_subnets), zones=dict(self.private_dns_zones),
                                   cloud=cloud_of(self.arm_endpoint))

    def graph(self) -> str | None:
        """The Microsoft Graph endpoint names are read from (None: off, or a cloud without a known one)."""
        from remediator.azure.directory import graph_endpoint_for  # noqa: PLC0415  (keeps config light to import)

        if self.graph_endpoint == "off":
            return None
        return self.graph_endpoint.rstrip("/") if self.graph_endpoint else graph_endpoint_for(self.arm_endpoint)

    def describe(self) -> dict[str, str]:
        """The settings as text for a startup log line; secrets show only whether they are set."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_ENV:
                out[f.name] = "set" if value else "unset"
            elif isinstance(value, tuple | frozenset):
                out[f.name] = ",".join(sorted(value))
            elif isinstance(value, Mapping):
                out[f.name] = ";".join(f"{k}={v if isinstance(v, str) else ','.join(v)}"
                                       for k, v in sorted(value.items()))
            else:
                out[f.name] = "" if value is None else str(value)
        return out


# --------------------------------------------------------------------------------------------
# Converters: raw value (a string from the environment, or a YAML value) → typed value.
# Each raises ValueError with a message that follows the variable name or file:line: key.

Converter = Callable[[Any, Path | None], Any]


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError("is empty")
    return text


def _string(value: Any, _base: Path | None) -> str:
    text = _text(value)
    if any(c.isspace() for c in text):
        raise ValueError(f"must not contain spaces, got {text!r}")
    return text


_EVENT_HUB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$")


def _event_hub_name(value: Any) -> str:
    """An event hub's name: 1-256 letters, digits, ``.``, ``-`` and ``_``, starting and ending with a letter or
    digit (Microsoft Learn, "Azure Event Hubs quotas and limits" / naming rules for Microsoft.EventHub)."""
    text = _text(value)
    if not _EVENT_HUB_NAME.match(text):
        raise ValueError(f"expected an event hub name (letters, digits, '.', '-', '_'; up to 256), got {text!r}")
    return text


def _items(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, list):
        return [_text(v) for v in value]
    raise ValueError(f"expected a list (or comma-separated text), got {type(value).__name__}")


def _slack_ids(value: Any, _base: Path | None) -> tuple[str, ...]:
    out: list[str] = []
    for item in _items(value):
        if not _SLACK_ID.match(item):
            hint = "; Slack ids are upper-case" if _SLACK_ID.match(item.upper()) else ""
            raise ValueError(f"expected Slack user ids (U…/W…) or user-group ids (S…), got {item!r}{hint}")
        if item not in out:
            out.append(item)
    return tuple(out)


_ROLE = re.compile(ROLE_PATTERN)


def _approver_roles(value: Any, base: Path | None) -> dict[str, tuple[str, ...]]:
    """``{role: [ids]}`` (the file), or ``role=id,id;role=id`` (the environment)."""
    if isinstance(value, str):
        pairs: list[tuple[Any, Any]] = []
        for part in (p.strip() for p in value.split(";")):
            if not part:
                continue
            role, eq, ids_text = part.partition("=")
            if not eq:
                raise ValueError(f"expected role=ids separated by ';' (security-oncall=S0614TZR7;"
                                 f"security-leads=U05K8NQ2R7T,U05M3XH9V4P), got {part!r}")
            pairs.append((role.strip(), ids_text))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise ValueError(f"expected a mapping of role: [Slack ids], got {type(value).__name__}")
    out: dict[str, tuple[str, ...]] = {}
    for role, ids_value in pairs:
        if not isinstance(role, str) or not _ROLE.match(role):
            raise ValueError(f"expected a role name in lower-case kebab (security-oncall), got {role!r}")
        if role in out:
            raise ValueError(f"role {role!r} is given twice")
        try:
            mapped = _slack_ids(ids_value, base)
        except ValueError as e:
            raise ValueError(f"{role}: {e}") from None
        if not mapped:
            raise ValueError(f"{role}: no Slack ids (a role nobody holds means nobody can approve)")
        out[role] = mapped
    return out


def _guid(value: Any, _base: Path | None) -> str:
    text = _text(value)
    if not _GUID.match(text):
        raise ValueError(f"expected an object id (GUID), got {text!r}")
    return text.lower()


def _guids(value: Any, base: Path | None) -> frozenset[str]:
    return frozenset(_guid(v, base) for v in _items(value))


def _pattern(regex: re.Pattern[str], what: str) -> Converter:
    def convert(value: Any, _base: Path | None) -> str:
        text = _text(value)
        if not regex.match(text):
            raise ValueError(f"expected {what}, got {text!r}")
        return text

    return convert


def _url(value: Any, _base: Path | None) -> str:
    text = _text(value)
    if not (text.startswith("https://") or text.startswith(_LOCAL_HOSTS)):
        raise ValueError(f"expected an https:// URL (http only for localhost), got {text!r}")
    return text


def _graph_url(value: Any, base: Path | None) -> str:
    text = _text(value)
    return "off" if text.lower() == "off" else _url(text, base)


def _store_url(value: Any, _base: Path | None) -> str:
    text = _text(value)
    if "://" not in text:
        raise ValueError(f"expected a store URL such as sqlite:///remediator.db, got {text!r}")
    return text


def _int(low: int, high: int) -> Converter:
    def convert(value: Any, _base: Path | None) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        try:
            number = int(value.strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}") from None
        if isinstance(value, float) or not low <= number <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return number

    return convert


def _duration(low: timedelta, high: timedelta) -> Converter:
    def convert(value: Any, _base: Path | None) -> timedelta:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"a duration needs a unit: {value}m, {value}h or {value}d")
        d = parse_duration(_text(value))
        if not low <= d <= high:
            raise ValueError(f"must be between {_fmt(low)} and {_fmt(high)}, got {value!r}")
        return d

    return convert


def _seconds(low: timedelta, high: timedelta) -> Converter:
    """A duration in seconds (``10s``, ``0s``) or in the usual units (``1m``)."""
    minutes = _duration(low, high)

    def convert(value: Any, base: Path | None) -> timedelta:
        text = value if isinstance(value, str) else None
        if text is None or not text.strip().endswith("s"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                raise ValueError(f"a duration needs a unit: {value}s or {value}m")
            d: timedelta = minutes(value, base)
            return d
        number = text.strip()[:-1]
        if not number.isdigit():
            raise ValueError(f"expected a duration like 10s, 30s or 2m, got {value!r}")
        d = timedelta(seconds=int(number))
        if not low <= d <= high:
            raise ValueError(f"must be between {low.total_seconds():g}s and {high.total_seconds():g}s, got {value!r}")
        return d

    return convert


def _fmt(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n) or "0m"


def _path(value: Any, base: Path | None) -> Path:
    p = Path(_text(value)).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _arm_id(rtype: str, what: str) -> Converter:
    """The full ARM id of one ``rtype`` resource in a resource group (as the portal's JSON view or
    ``az resource show --query id`` gives it), normalised (no trailing ``/``, no ``//``)."""
    shape = f"/subscriptions/<subscription id>/resourceGroups/<group>/providers/{rtype}/<name>"

    def convert(value: Any, _base: Path | None) -> str:
        text = _text(value)
        canonical = ids.canonical(text)
        rid = ids.parse(canonical)
        if (not text.startswith("/") or ids.type_key(rid.type) != ids.type_key(rtype) or not rid.subscription_id
                or not _GUID.match(rid.subscription_id) or not rid.resource_group
                or len(rid.names) != len(rtype.split("/")) - 1 or any(c.isspace() for c in canonical)):
            raise ValueError(f"expected the id of {what} ({shape}), got {text!r}")
        return canonical

    return convert


def _elevation(value: Any, _base: Path | None) -> str:
    text = _text(value)
    if text not in ELEVATIONS:
        raise ValueError(f"expected one of {', '.join(ELEVATIONS)}, got {text!r}")
    return text


def _secret(value: Any, _base: Path | None) -> str:
    return _text(value)


class _AtKey(ValueError):
    """A problem with one key of a mapping setting: the file reports the line of that key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _pairs(value: Any, example: str) -> list[tuple[Any, Any]]:
    """``{key: value}`` (the file) or ``key=value;key=value`` (the environment)."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, str):
        pairs: list[tuple[Any, Any]] = []
        for part in (p.strip() for p in value.split(";")):
            if part:
                key, eq, text = part.partition("=")
                if not eq:
                    raise ValueError(f"expected key=value pairs separated by ';' ({example}), got {part!r}")
                pairs.append((key.strip(), text.strip()))
        return pairs
    raise ValueError(f"expected a mapping ({example}), got {type(value).__name__}")


_REGION = re.compile(r"^[a-z][a-z0-9]{2,40}$")


def _private_link_subnets(value: Any, _base: Path | None) -> dict[str, str]:
    """Region (``westeurope``; ``West Europe`` is read as ``westeurope``) or ``*`` → a subnet's full id."""
    from remediator.checks.params import valid_id  # noqa: PLC0415  (keeps config light to import)

    out: dict[str, str] = {}
    for key, raw in _pairs(value, "westeurope: /subscriptions/…/subnets/snet-pe"):
        region = "*" if str(key).strip() == "*" else "".join(str(key).split()).lower()
        if region != "*" and not _REGION.match(region):
            raise _AtKey(str(key), "expected an Azure region name (westeurope, eastus2) or \"*\" (any other region)")
        if region in out:
            raise _AtKey(str(key), f"region {region} is given twice")
        try:
            out[region] = valid_id(_text(raw), "Microsoft.Network/virtualNetworks/subnets", "subnet",
                                   shape="Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>")
        except ValueError as e:
            raise _AtKey(str(key), str(e)) from None
    return out


def _private_dns_zones(value: Any, _base: Path | None) -> dict[str, str]:
    """Zone name → the ``Microsoft.Network/privateDnsZones`` id of that zone."""
    from remediator.actions.private_link_table import known_zone_names, zone_suggestion  # noqa: PLC0415
    from remediator.checks.params import valid_id  # noqa: PLC0415

    out: dict[str, str] = {}
    for key, raw in _pairs(value, "privatelink.openai.azure.com: /subscriptions/…/privateDnsZones/privatelink.openai"
                                  ".azure.com"):
        zone = str(key).strip().lower().rstrip(".")
        if not zone or " " in zone or "." not in zone:
            raise _AtKey(str(key), "expected a private DNS zone name such as privatelink.vaultcore.azure.net")
        try:
            zone_id = valid_id(_text(raw), "Microsoft.Network/privateDnsZones", "private DNS zone")
        except ValueError as e:
            raise _AtKey(str(key), str(e)) from None
        named = zone_id.rstrip("/").rsplit("/", 1)[-1].lower()
        if named != zone:
            raise _AtKey(str(key), f"the id names zone {named}, not {zone}")
        if zone not in known_zone_names():
            _WARNINGS.append(_AtKey(str(key), f"no supported sub-resource uses zone {zone}; it is kept but never "
                                              f"used{zone_suggestion(zone)}"))
        out[zone] = zone_id
    return out


_RESOURCE_GROUP = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")


def _export_sources(value: Any, base: Path | None) -> tuple[str, ...]:
    """Defender continuous export's event sources (the automations API's ``EventSource``), any case, at least one."""
    from remediator.actions.continuous_export import EVENT_SOURCES  # noqa: PLC0415  (keeps config light to import)

    known = {s.lower(): s for s in EVENT_SOURCES}
    out: list[str] = []
    for item in _items(value):
        text = _text(item)
        if text.lower() not in known:
            raise ValueError(f"{text!r} is not an event source of continuous export; valid: {', '.join(EVENT_SOURCES)}"
                             f"{_did_you_mean(text, EVENT_SOURCES)}")
        if known[text.lower()] not in out:
            out.append(known[text.lower()])
    if not out:
        raise ValueError(f"expected at least one event source ({', '.join(EVENT_SOURCES[:5])} …)")
    return tuple(out)


def _custom_roles(value: Any, _base: Path | None) -> dict[str, str]:
    """A custom role's key (``synapse-workspace-settings``) → the role definition GUID to grant for it."""
    from remediator.actions.custom_roles import CUSTOM_ROLES  # noqa: PLC0415  (keeps config light to import)

    out: dict[str, str] = {}
    for key, raw in _pairs(value, "synapse-workspace-settings: <role definition id>"):
        name = str(key).strip()
        if name not in CUSTOM_ROLES:
            raise _AtKey(name, f"not a custom role of remediator; the keys are {', '.join(sorted(CUSTOM_ROLES))}"
                               f"{_did_you_mean(name, tuple(CUSTOM_ROLES))}")
        text = _text(raw).rstrip("/").rsplit("/", 1)[-1]  # a full roleDefinitionId is taken too
        if not _GUID.match(text):
            raise _AtKey(name, f"expected a role definition id (GUID), got {raw!r}")
        out[name] = text.lower()
    return out


_WARNINGS: list[_AtKey] = []  # what the converter of the value being read warned about (read, then cleared)


_CONVERTERS: dict[str, Converter] = {
    "slack_bot_token": _secret,
    "slack_signing_secret": _secret,
    "slack_app_token": _secret,
    "ingest_token": _secret,
    "slack_channel": _string,
    "slack_api_url": _url,
    "slack_team_id": _pattern(_TEAM, "a Slack workspace id (T…)"),
    "slack_enterprise_id": _pattern(_ENTERPRISE, "a Slack Enterprise Grid id (E…)"),
    "approver_roles": _approver_roles,
    "approvers": _slack_ids,
    "min_quorum": _int(1, 10),
    "admins": _slack_ids,
    "store_url": _store_url,
    "playbooks_dir": _path,
    "exemptions_file": _path,
    "arm_endpoint": _url,
    "authority_host": _url,
    "graph_endpoint": _graph_url,
    "names_ttl": _duration(timedelta(0), timedelta(days=7)),
    "elevation": _elevation,
    "executor_principal_id": _guid,
    "broker_client_id": _guid,
    "pim_duration": _duration(timedelta(minutes=5), timedelta(hours=24)),
    "protected_principals": _guids,
    "break_glass_principals": _guids,
    "auto_budget_per_hour": _int(0, 100_000),
    "undo_window": _duration(timedelta(0), timedelta(days=30)),
    "reminder_before": _duration(timedelta(minutes=1), timedelta(days=14)),
    "storm_threshold": _int(0, 100_000),
    "group_wait": _seconds(timedelta(0), timedelta(minutes=10)),
    "result_window": _seconds(timedelta(0), timedelta(hours=24)),
    "lock_ttl": _duration(timedelta(minutes=1), timedelta(days=1)),
    "max_deliveries": _int(1, 100),
    "scan_subscriptions": lambda value, base: tuple(sorted(_guids(value, base))),
    "scan_management_group": _string,
    "diagnostics_workspace_id": _arm_id("Microsoft.OperationalInsights/workspaces", "a Log Analytics workspace"),
    "diagnostics_storage_account_id": _arm_id("Microsoft.Storage/storageAccounts", "a storage account"),
    "diagnostics_event_hub_authorization_rule_id": _arm_id("Microsoft.EventHub/namespaces/authorizationRules",
                                                           "an Event Hubs namespace's authorization rule"),
    "diagnostics_event_hub_name": lambda value, base: _event_hub_name(value),
    "private_link_subnets": _private_link_subnets,
    "private_dns_zones": _private_dns_zones,
    "export_event_hub_id": _arm_id("Microsoft.EventHub/namespaces/eventhubs", "an Event Hub"),
    "export_sources": _export_sources,
    "export_resource_group": _pattern(_RESOURCE_GROUP, "a resource group name (letters, digits, - _ . ( ), up to 90)"),
    "export_silence": _duration(timedelta(hours=1), timedelta(days=30)),
    "custom_roles": _custom_roles,
}
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Settings))


def env_name(name: str) -> str:
    """The environment variable of a setting."""
    return SECRET_ENV.get(name, ENV_PREFIX + name.upper())


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _from_file(path: Path, problems: list[str]) -> dict[str, Any]:
    """The file's settings; each problem is appended to ``problems`` (one line each) and its value skipped."""
    shown = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        problems.append(f"{shown}: cannot read the configuration file: {e.strerror or e}")
        return {}
    try:
        doc = load(decode(data))
    except YamlProblem as e:
        where = f"{shown}:{e.line}" if e.line is not None else shown
        problems.append(f"{where}: {e.message}")
        return {}
    if doc.problems:
        for p in doc.problems:
            key = ".".join(str(k) for k in p.path)
            problems.append(f"{shown}:{p.line}: {key}: {p.message}" if key else f"{shown}:{p.line}: {p.message}")
        return {}
    if doc.value is None:
        return {}
    if not isinstance(doc.value, dict):
        problems.append(f"{shown}:1: expected a mapping of settings (key: value)")
        return {}
    base = path.parent
    out: dict[str, Any] = {}
    for key, raw in doc.value.items():
        line = doc.line((key,))
        where = f"{shown}:{line}" if line is not None else shown
        if key in SECRET_ENV:
            problems.append(f"{where}: {key}: secrets are read from the environment only; "
                            f"set {SECRET_ENV[key]} instead")
        elif key not in _CONVERTERS:
            problems.append(f"{where}: {key}: unknown setting{_did_you_mean(key, FIELDS)}")
        elif raw is not None:
            _WARNINGS.clear()
            try:
                out[key] = _CONVERTERS[key](raw, base)
            except _AtKey as e:  # the line of the key inside the mapping
                inner = doc.line((key, e.key))
                problems.append(f"{shown}:{inner if inner is not None else line}: {key}.{e}")
            except ValueError as e:
                problems.append(f"{where}: {key}: {e}")
            for w in _WARNINGS:
                inner = doc.line((key, w.key))
                log.warning("%s:%s: %s.%s", shown, inner if inner is not None else line, key, w)
            _WARNINGS.clear()
    return out


def _from_env(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FIELDS:
        var = env_name(name)
        raw = env.get(var)
        if raw is None or not raw.strip():
            continue
        _WARNINGS.clear()
        try:
            out[name] = _CONVERTERS[name](raw, None)
        except ValueError as e:
            problems.append(f"{var}: {e}")
        for w in _WARNINGS:
            log.warning("%s: %s", var, w)
        _WARNINGS.clear()
    # REMEDIATOR_STORAGE_CONNECTION is read by the Azure store itself (remediator.store.CONNECTION_ENV)
    known = {env_name(n) for n in FIELDS} | {CONFIG_ENV, "REMEDIATOR_STORAGE_CONNECTION"}
    for var in env:
        if var.startswith(ENV_PREFIX) and var not in known:
            log.warning("unknown setting %s ignored%s", var, _did_you_mean(var, tuple(sorted(known))))
    return out


def load_settings(env: Mapping[str, str] = os.environ, file: str | Path | None = None) -> Settings:
    """Settings from ``file`` (or ``$REMEDIATOR_CONFIG``), overridden by the environment.

    ``ConfigError`` names every problem at once (``problems``: one line each), not one per attempt.
    """
    settings, problems = read_settings(env, file)
    if problems:
        raise ConfigError(problems=problems)
    return settings


def read_settings(env: Mapping[str, str] = os.environ, file: str | Path | None = None) -> tuple[Settings, list[str]]:
    """``load_settings`` that does not stop at a problem: the settings without the values that are
    wrong (their defaults instead), and every problem, one line each (``remediator doctor`` reports
    them and goes on checking the rest)."""
    path = file if file is not None else (env.get(CONFIG_ENV) or None)
    problems: list[str] = []
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_from_file(Path(path), problems))
    values.update(_from_env(env, problems))
    return replace(Settings(), **values), problems
