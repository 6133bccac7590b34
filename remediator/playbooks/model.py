"""A playbook as written: the pydantic ``*Doc`` models (the dataclasses it becomes are in ``playbook``).

The ``*Doc`` models are the structure check of a playbook file: strict types, no unknown keys,
field-level formats with messages meant for a playbook author (the checks themselves are in
``formats``, which ``validate``'s fast path calls too). Their field descriptions feed the published
JSON Schema. Checks that span fields (risk versus approval, quorum versus approvers) live in the
loader, which knows the line of every field.

The formats' names and the dataclasses are re-exported here, where they used to live.
"""

from __future__ import annotations

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

from remediator.playbooks import formats
from remediator.playbooks.controls import CONTROL_PATTERN
from remediator.playbooks.formats import (
    ALERT_PATTERN,
    APPROVER_PATTERN,
    DURATION_PATTERN,
    EXPIRES_DEFAULT,
    EXPIRES_MAX,
    EXPIRES_MIN,
    GUID_PATTERN,
    MAX_QUORUM,
    NAME_PATTERN,
    OPERATION_PATTERN,
    POLICY_PATTERN,
    RESOURCE_GROUP_PATTERN,
    RESOURCE_GROUP_TAGS,
    RESOURCE_TYPE_PATTERN,
    ROLE_PATTERN,
    SEVERITY_NAMES,
    SLACK_ID_PATTERN,
    SUBSCRIPTION,
    WHERE_KEY_PATTERN,
    is_role,
    parse_duration,
)
from remediator.playbooks.playbook import Approval, MatchSpec, Playbook, Step, TagCondition, TagOp, TagScope

__all__ = [
    "ALERT_PATTERN", "APPROVER_PATTERN", "DURATION_PATTERN", "EXPIRES_DEFAULT", "EXPIRES_MAX", "EXPIRES_MIN",
    "GUID_PATTERN", "MAX_QUORUM", "NAME_PATTERN", "OPERATION_PATTERN", "POLICY_PATTERN", "RESOURCE_GROUP_PATTERN",
    "RESOURCE_GROUP_TAGS", "RESOURCE_TYPE_PATTERN", "ROLE_PATTERN", "SEVERITY_NAMES", "SLACK_ID_PATTERN",
    "SUBSCRIPTION", "WHERE_KEY_PATTERN", "Approval", "ApprovalDoc", "ConditionDoc", "MatchDoc", "MatchSpec",
    "Playbook", "PlaybookDoc", "Step", "StepDoc", "TagCondition", "TagOp", "TagScope", "is_role", "parse_duration",
]


# The checks live in ``formats`` (no pydantic: ``validate``'s fast path calls the same functions).
_guid = formats.guid
_assessment_key = formats.assessment_key
_alert_type = formats.alert_type
_policy = formats.policy
_operation = formats.operation
_policy_category = formats.policy_category
_resource_type = formats.resource_type
_resource_group = formats.resource_group
_severity = formats.severity
_approver = formats.approver
_slack_id = formats.slack_id
_unitless = formats.unitless
_duration = formats.duration
_expires_after = formats.expires_after
_control = formats.control
_where_key = formats.where_key
_approval_shorthand = formats.approval_shorthand


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

    _one_operator = model_validator(mode="after")(formats.one_operator)


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
