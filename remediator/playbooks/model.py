"""A playbook, twice: as written (pydantic ``*Doc`` models) and as used (frozen dataclasses).

The ``*Doc`` models are the structure check of a playbook file: strict types, no unknown keys,
field-level formats with messages meant for a playbook author. Their field descriptions feed the
published JSON Schema. Checks that span fields (risk versus approval, quorum versus approvers)
live in the loader, which knows the line of every field.

The dataclasses are what the planner gets: identifiers normalised for case-insensitive
comparison, durations as ``timedelta``, each step's parameters as its action's validated model.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from remediator.findings.model import Severity
from remediator.playbooks.controls import CONTROL_PATTERN, control_problem

# --------------------------------------------------------------------------------------------
# Formats: one pattern (for the JSON Schema) and one humane check (for the loader) each.

NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
ALERT_PATTERN = r"^[A-Za-z0-9_.*?-]+$"
_GUID_BODY = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID_PATTERN = f"^{_GUID_BODY}$"
_POLICY_ID_BODY = r"(/[^/]+/[^/]+)*/providers/[Mm]icrosoft\.[Aa]uthorization/[Pp]olicy[Dd]efinitions/[^/]+"
POLICY_PATTERN = f"^({_GUID_BODY}|{_POLICY_ID_BODY})$"
OPERATION_PATTERN = r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)+(/[A-Za-z0-9]+)+/(write|delete|action)$"
RESOURCE_TYPE_PATTERN = r"^(subscription|[A-Za-z0-9]+(\.[A-Za-z0-9]+)+(/[A-Za-z0-9]+)+)$"
RESOURCE_GROUP_PATTERN = r"^[-\w.()*?]+$"
SLACK_ID_PATTERN = r"^[UWS][A-Z0-9]{8,20}$"
DURATION_PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?$"
WHERE_KEY_PATTERN = r"^(resource_group\.)?tags\..+$"
ROLE_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
APPROVER_PATTERN = f"({SLACK_ID_PATTERN})|({ROLE_PATTERN})"
RESOURCE_GROUP_TAGS = "resource_group.tags."  # a where key on the resource group's tags

SUBSCRIPTION = "subscription"  # the resource type spelling for subscription-scoped findings
SEVERITY_NAMES = ("Informational", "Low", "Medium", "High", "Critical")
EXPIRES_MIN, EXPIRES_MAX, EXPIRES_DEFAULT = timedelta(minutes=5), timedelta(days=14), timedelta(hours=4)
MAX_QUORUM = 10

_GUID = re.compile(GUID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_ALERT = re.compile(ALERT_PATTERN)
_POLICY_ID = re.compile(r"^(/[^/]+/[^/]+)*/providers/microsoft\.authorization/policydefinitions/[^/]+$", re.I)
_RESOURCE_TYPE = re.compile(RESOURCE_TYPE_PATTERN)
_OPERATION = re.compile(OPERATION_PATTERN, re.IGNORECASE)
_RESOURCE_GROUP = re.compile(RESOURCE_GROUP_PATTERN)
_SLACK_ID = re.compile(SLACK_ID_PATTERN)
_ROLE = re.compile(ROLE_PATTERN)
_LOWER_SLACK_ID = re.compile(r"^[uws](?=[a-z]*[0-9])[a-z0-9]{8,20}$")  # s0614tzr7: a Slack id typed lower-case
_DURATION = re.compile(r"^(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?$")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``4h``, ``2d``, ``1h30m`` → ``timedelta``; ValueError with a humane message."""
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise ValueError(f"expected a duration like 30m, 4h or 2d, got {text!r}")
    days, hours, minutes = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def _guid(value: str) -> str:
    if not _GUID.match(value):
        raise ValueError(f"expected a GUID such as 51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6, got {value!r}")
    return value


def _assessment_key(value: str) -> str:
    if not _GUID.match(value):
        raise ValueError(
            f"expected an assessment key (a GUID such as 51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6), "
            f"got {value!r}; recommendations are matched by key, not by display name"
        )
    return value


def _alert_type(value: str) -> str:
    if not _ALERT.match(value):
        raise ValueError(f"expected an alert type such as Storage.Blob_OpenACL (globs * and ? allowed), got {value!r}")
    if not value.strip("*?"):
        raise ValueError(f"{value!r} would match every alert type; list the alert types this playbook fixes")
    return value


def _policy(value: str) -> str:
    if not (_GUID.match(value) or _POLICY_ID.match(value)):
        raise ValueError(
            "expected a policy definition GUID or a full id "
            f"(/providers/Microsoft.Authorization/policyDefinitions/<name>), got {value!r}"
        )
    return value


def _policy_category(value: str) -> str:
    from remediator.playbooks.catalog import category_names  # noqa: PLC0415  (read only when a playbook names one)

    known = category_names()
    if value.strip().lower() not in {c.lower() for c in known}:
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{value!r} is not a category with built-in Modify definitions; {hint}"
                         f"known: {', '.join(known)}")
    return value


def _operation(value: str) -> str:
    from remediator.findings.parse import WATCHED_OPERATIONS  # noqa: PLC0415  (findings imports this package's model)

    if not _OPERATION.match(value):
        raise ValueError(f"expected an ARM operation name such as Microsoft.Authorization/policyExemptions/write, "
                         f"got {value!r}")
    if value.lower() not in WATCHED_OPERATIONS:
        raise ValueError(f"{value!r} never becomes a finding; the ARM writes remediator turns into findings are "
                         + ", ".join(sorted(WATCHED_OPERATIONS)))
    return value


def _resource_type(value: str) -> str:
    if value.lower() in ("", "microsoft.resources/subscriptions", "subscriptions"):
        raise ValueError(f"write {SUBSCRIPTION!r} for subscription-scoped findings, not {value!r}")
    if not _RESOURCE_TYPE.match(value):
        raise ValueError(
            f"expected an ARM resource type such as Microsoft.Storage/storageAccounts (or {SUBSCRIPTION!r}), "
            f"got {value!r}"
        )
    return value


def _resource_group(value: str) -> str:
    if not _RESOURCE_GROUP.match(value):
        raise ValueError(f"expected a resource group name or glob such as rg-prod-*, got {value!r}")
    return value


def _severity(value: str) -> str:
    for name in SEVERITY_NAMES:
        if value.lower() == name.lower():
            return name
    close = difflib.get_close_matches(value.lower(), [n.lower() for n in SEVERITY_NAMES], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0].capitalize()!r}?" if close else ""
    raise ValueError(f"expected one of {', '.join(SEVERITY_NAMES)}, got {value!r}{hint}")


def is_role(value: str) -> bool:
    """True for an approver role name (``security-oncall``), False for a Slack id."""
    return _ROLE.match(value) is not None and _SLACK_ID.match(value) is None


def _approver(value: str) -> str:
    if _SLACK_ID.match(value):
        return value
    if _ROLE.match(value) and not _LOWER_SLACK_ID.match(value) and len(value) <= 64:
        return value
    if _LOWER_SLACK_ID.match(value):
        raise ValueError(f"{value!r} looks like a Slack id typed in lower case: write {value.upper()!r} "
                         "(or name a role, such as security-oncall)")
    hint = ""
    try:
        _slack_id(value)
    except ValueError as e:
        hint = str(e).partition(f"got {value!r}")[2]
    raise ValueError(
        f"expected an approver role (lower-case kebab, such as security-oncall) or a Slack user or user-group id "
        f"(U…/W…/S…), got {value!r}{hint}"
    )


def _slack_id(value: str) -> str:
    if _SLACK_ID.match(value):
        return value
    hint = ""
    if "@" in value:
        hint = "; use the Slack member id (profile → ⋯ → Copy member ID), not an e-mail address"
    elif value[:1] in ("C", "G", "D") and _SLACK_ID.match("U" + value[1:]):
        hint = "; that is a channel id, approvers are people (U…/W…) or user groups (S…)"
    elif _SLACK_ID.match(value.upper()):
        hint = f"; Slack ids are upper-case: {value.upper()!r}"
    raise ValueError(
        f"expected a Slack user id (U…/W…) or user-group id (S…) such as U0614TZR7 or S0614TZR7, got {value!r}{hint}"
    )


def _unitless(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a duration needs a unit: {value}m, {value}h or {value}d")
    return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _expires_after(value: str) -> str:
    d = parse_duration(value)
    if not EXPIRES_MIN <= d <= EXPIRES_MAX:
        raise ValueError(f"must be between 5m and 14d, got {value!r}")
    return value


def _control(value: str) -> str:
    problem = control_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _where_key(value: str) -> str:
    for prefix in ("tags.", RESOURCE_GROUP_TAGS):
        if value.startswith(prefix) and len(value) > len(prefix):
            return value
    raise ValueError("conditions are on tags: write tags.<name> (the resource's) or resource_group.tags.<name> "
                     f"(its resource group's), got {value!r}")


def _approval_shorthand(value: Any) -> Any:
    if value == "auto":
        return {"mode": "auto"}
    if isinstance(value, str):
        raise ValueError(f"expected 'auto' or a mapping (mode: slack, approvers, quorum, expires_after), got {value!r}")
    return value


def _str_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "minLength": 1})


AssessmentKey = Annotated[str, AfterValidator(_assessment_key), _str_schema(GUID_PATTERN)]
Guid = Annotated[str, AfterValidator(_guid), _str_schema(GUID_PATTERN)]
AlertType = Annotated[str, AfterValidator(_alert_type), _str_schema(ALERT_PATTERN)]
PolicyRef = Annotated[str, AfterValidator(_policy), _str_schema(POLICY_PATTERN)]
OperationName = Annotated[str, AfterValidator(_operation), _str_schema(OPERATION_PATTERN)]
PolicyCategory = Annotated[str, AfterValidator(_policy_category), WithJsonSchema({"type": "string", "minLength": 1})]
ResourceType = Annotated[str, AfterValidator(_resource_type), _str_schema(RESOURCE_TYPE_PATTERN)]
ResourceGroup = Annotated[str, AfterValidator(_resource_group), _str_schema(RESOURCE_GROUP_PATTERN)]
SlackId = Annotated[str, AfterValidator(_slack_id), _str_schema(SLACK_ID_PATTERN)]
ApproverRef = Annotated[str, AfterValidator(_approver), _str_schema(APPROVER_PATTERN)]
Duration = Annotated[str, BeforeValidator(_unitless), AfterValidator(_duration), _str_schema(DURATION_PATTERN)]
ExpiresAfter = Annotated[str, BeforeValidator(_unitless), AfterValidator(_expires_after), _str_schema(DURATION_PATTERN)]
WhereKey = Annotated[str, AfterValidator(_where_key), _str_schema(WHERE_KEY_PATTERN)]
Control = Annotated[str, AfterValidator(_control), _str_schema(CONTROL_PATTERN)]
SeverityName = Annotated[
    str,
    AfterValidator(_severity),
    WithJsonSchema({"enum": [*SEVERITY_NAMES, *(s.lower() for s in SEVERITY_NAMES)]}),
]
PlaybookName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]


# --------------------------------------------------------------------------------------------
# The file as written.


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConditionDoc(_Doc):
    """One condition on a tag (of the resource, or of its resource group); exactly one operator."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    in_: list[str] | None = Field(None, alias="in", min_length=1, description="The tag's value is one of these.")
    not_in: list[str] | None = Field(
        None, min_length=1, description="The tag is missing, or its value is none of these."
    )
    equals: str | None = Field(None, description="The tag's value is exactly this (case-insensitive).")
    exists: bool | None = Field(None, description="true: the tag is set (any value); false: it is not set.")

    @model_validator(mode="after")
    def _one_operator(self) -> ConditionDoc:
        given = [
            k for k in ("in", "not_in", "equals", "exists") if getattr(self, "in_" if k == "in" else k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "expected exactly one of in, not_in, equals, exists" + (f", got {', '.join(given)}" if given else "")
            )
        return self


class MatchDoc(_Doc):
    """Which findings the playbook claims."""

    recommendations: list[AssessmentKey] | None = Field(
        None, min_length=1, description="Defender assessment keys (GUIDs) of failing recommendations."
    )
    alerts: list[AlertType] | None = Field(
        None, min_length=1, description="Defender alert types; globs * and ? allowed (RDP_Incoming_BF_*)."
    )
    policies: list[PolicyRef] | None = Field(
        None,
        min_length=1,
        description="Azure Policy definition GUIDs or full definition ids (non-compliance events).",
    )
    policy_categories: list[PolicyCategory] | None = Field(
        None,
        min_length=1,
        description="Azure Policy categories (Storage, Key Vault, …): every built-in definition of the category "
        "whose effect can be Modify, from the catalog shipped with remediator "
        "(remediator/playbooks/policy-catalog.tsv); custom definitions are listed by full id under policies. "
        "For the policy.apply-modify action.",
    )
    operations: list[OperationName] | None = Field(
        None,
        min_length=1,
        description="ARM write operations whose success is the finding (Event Grid ResourceWriteSuccess or an "
        "Activity Log event), e.g. Microsoft.Authorization/policyExemptions/write.",
    )
    resource_types: list[ResourceType] = Field(
        min_length=1,
        description="ARM types of the finding's resource (case-insensitive); 'subscription' for subscription-"
        "scoped findings. Every step's action must handle each of them.",
    )
    severity_at_least: SeverityName | None = Field(
        None,
        description="Minimum Defender severity; findings without one (policy events) never satisfy it.",
    )
    subscriptions: list[Guid] | None = Field(None, min_length=1, description="Only findings in these subscriptions.")
    resource_groups: list[ResourceGroup] | None = Field(
        None, min_length=1, description="Only findings in these resource groups (globs, case-insensitive)."
    )
    where: dict[WhereKey, ConditionDoc] | None = Field(
        None,
        min_length=1,
        description="Tag conditions, all must hold: tags.<name> (the resource's tags) or "
        "resource_group.tags.<name> (its resource group's), each {in|not_in|equals|exists}.",
    )


class ApprovalDoc(_Doc):
    """How a plan gets approved: 'auto' (low risk only) or Slack."""

    mode: Literal["auto", "slack"] = Field("slack", description="auto: apply without asking; slack: ask approvers.")
    approvers: list[ApproverRef] | None = Field(
        None,
        min_length=1,
        description="Who may approve: roles (security-oncall, security-leads, platform-owners; the deployment "
        "maps each to Slack ids in approver_roles) or, in a deployment's own playbooks, Slack user ids (U…, W…) "
        "and user-group ids (S…).",
    )
    quorum: int | None = Field(
        None,
        ge=1,
        le=MAX_QUORUM,
        description="Distinct approvals needed (default 1; high risk needs 2 or more).",
    )
    expires_after: ExpiresAfter | None = Field(
        None, description="How long the request stays open: 30m, 4h, 2d (5m to 14d, default 4h)."
    )
    remind_after: Duration | None = Field(
        None, description="Remind the approvers once after this long (shorter than expires_after)."
    )


class StepDoc(_Doc):
    """One action to run, with its parameters."""

    action: str = Field(min_length=1, description="A registered action, <service>.<verb-noun>.")
    params: dict[str, Any] | None = Field(None, description="The action's parameters.")


class PlaybookDoc(_Doc):
    """A remediation playbook: which findings it claims, how risky it is, who approves, what it runs."""

    name: PlaybookName = Field(description="Unique, kebab-case name (storage-disable-public-blob-access).")
    description: str = Field(min_length=1, max_length=500, description="One or two sentences shown to approvers.")
    priority: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Only when two playbooks claim the same finding: the higher one wins.",
    )
    enabled: bool = Field(
        True,
        description="false: the playbook claims nothing (listed as disabled). In a deployment's overlay folder, "
        "'name: <shipped playbook>' with 'enabled: false' alone turns a shipped playbook off.",
    )
    match: MatchDoc
    risk: Literal["low", "medium", "high"] = Field(description="low allows approval: auto; high needs quorum >= 2.")
    approval: Annotated[ApprovalDoc, BeforeValidator(_approval_shorthand)] = Field(
        description="'auto' (risk: low only) or mode, approvers, quorum, expires_after, remind_after."
    )
    steps: list[StepDoc] = Field(min_length=1, max_length=10, description="The actions to run, in order.")
    controls: list[Control] | None = Field(
        None,
        min_length=1,
        description="The controls this playbook serves, as '<FRAMEWORK> <ID>': MCSB NS-2, NIST-AI-RMF MANAGE-2.4, "
        "ISO27001 A.8.20, NIST-800-53 AC-6, GDPR Art.32 (the evidence report groups by them).",
    )


# --------------------------------------------------------------------------------------------
# The playbook as used.

TagOp = Literal["in", "not_in", "exists", "absent"]
TagScope = Literal["resource", "resource_group"]


@dataclass(frozen=True, slots=True)
class TagCondition:
    """``tag`` (lower-cased name) with ``op``: ``in``/``not_in`` ``values`` (case-folded; ``equals``
    is ``in`` with one value), ``exists`` or ``absent``; ``scope``: whose tags (the resource's, or
    its resource group's)."""

    tag: str
    op: TagOp
    values: frozenset[str] = frozenset()
    scope: TagScope = "resource"


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchSpec:
    """Normalised match criteria: ids and types lower-cased; empty tuple = criterion not given."""

    recommendations: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()  # lower-cased globs
    policies: tuple[str, ...] = ()  # lower-cased GUIDs / definition names, or full ids (ids.key form)
    operations: tuple[str, ...] = ()  # lower-cased ARM operation names
    resource_types: tuple[str, ...] = ()  # ids.type_key form; "subscription" for subscription scope
    severity_at_least: Severity | None = None
    subscriptions: tuple[str, ...] = ()
    resource_groups: tuple[str, ...] = ()  # lower-cased globs
    where: tuple[TagCondition, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """``mode`` auto (no approvers, quorum 0) or slack."""

    mode: Literal["auto", "slack"]
    approvers: tuple[str, ...] = ()
    quorum: int = 0
    expires_after: timedelta = EXPIRES_DEFAULT
    remind_after: timedelta | None = None
    line: int = 0  # where ``approvers`` is written (messages about the deployment's roles point at it)

    @property
    def users(self) -> tuple[str, ...]:
        """Slack user ids written in the playbook (roles are resolved by the deployment's settings)."""
        return tuple(a for a in self.approvers if not is_role(a) and a[0] in "UW")

    @property
    def groups(self) -> tuple[str, ...]:
        """Slack user-group ids written in the playbook."""
        return tuple(a for a in self.approvers if not is_role(a) and a[0] == "S")

    @property
    def roles(self) -> tuple[str, ...]:
        """Approver roles, which the deployment maps to Slack ids (``Settings.approver_roles``)."""
        return tuple(a for a in self.approvers if is_role(a))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Step:
    """One action with validated ``params`` (its ``Params`` model) and the ``raw_params`` as written."""

    action: str
    params: BaseModel
    raw_params: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Playbook:
    """A validated playbook. ``file`` is the path as shown in messages (``playbooks/x.yaml``)."""

    name: str
    description: str
    file: str
    priority: int | None
    match: MatchSpec
    risk: Literal["low", "medium", "high"]
    approval: Approval
    steps: tuple[Step, ...]
    line: int = 1  # where ``name`` is written
    controls: tuple[str, ...] = ()  # "MCSB NS-2", … as written (validated)
    enabled: bool = True  # False: claims nothing (``PlaybookSet`` keeps it apart, for ``validate``)

    @property
    def needs_tags(self) -> bool:
        """True when matching looks at the resource's tags (read them before calling ``match``)."""
        return any(c.scope == "resource" for c in self.match.where)

    @property
    def needs_group_tags(self) -> bool:
        """True when matching looks at the resource group's tags."""
        return any(c.scope == "resource_group" for c in self.match.where)
