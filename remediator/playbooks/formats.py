"""Playbook field formats, without pydantic: patterns, constants and one humane check per format.

The structure models (``model``) apply these checks as validators, and ``validate``'s fast path
(``fastcheck``) calls the very same functions, so both accept and refuse the same values; this module
must import nothing that imports pydantic (``tests/playbooks/test_fastcheck.py`` checks it). A check
takes the value and returns it (possibly normalised) or raises ``ValueError`` with the message a
playbook author sees.
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import Any

from remediator.findings.operations import WATCHED_OPERATIONS
from remediator.playbooks.controls import control_problem

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


def guid(value: str) -> str:
    if not _GUID.match(value):
        raise ValueError(f"expected a GUID such as 51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6, got {value!r}")
    return value


def assessment_key(value: str) -> str:
    if not _GUID.match(value):
        raise ValueError(
            f"expected an assessment key (a GUID such as 51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6), "
            f"got {value!r}; recommendations are matched by key, not by display name"
        )
    return value


def alert_type(value: str) -> str:
    if not _ALERT.match(value):
        raise ValueError(f"expected an alert type such as Storage.Blob_OpenACL (globs * and ? allowed), got {value!r}")
    if not value.strip("*?"):
        raise ValueError(f"{value!r} would match every alert type; list the alert types this playbook fixes")
    return value


def policy(value: str) -> str:
    if not (_GUID.match(value) or _POLICY_ID.match(value)):
        raise ValueError(
            "expected a policy definition GUID or a full id "
            f"(/providers/Microsoft.Authorization/policyDefinitions/<name>), got {value!r}"
        )
    return value


def policy_category(value: str) -> str:
    from remediator.playbooks.catalog import category_names  # noqa: PLC0415  (read only when a playbook names one)

    known = category_names()
    if value.strip().lower() not in {c.lower() for c in known}:
        import difflib  # noqa: PLC0415

        close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{value!r} is not a category with built-in Modify definitions; {hint}"
                         f"known: {', '.join(known)}")
    return value


def operation(value: str) -> str:
    if not _OPERATION.match(value):
        raise ValueError(f"expected an ARM operation name such as Microsoft.Authorization/policyExemptions/write, "
                         f"got {value!r}")
    if value.lower() not in WATCHED_OPERATIONS:
        raise ValueError(f"{value!r} never becomes a finding; the ARM writes remediator turns into findings are "
                         + ", ".join(sorted(WATCHED_OPERATIONS)))
    return value


def resource_type(value: str) -> str:
    if value.lower() in ("", "microsoft.resources/subscriptions", "subscriptions"):
        raise ValueError(f"write {SUBSCRIPTION!r} for subscription-scoped findings, not {value!r}")
    if not _RESOURCE_TYPE.match(value):
        raise ValueError(
            f"expected an ARM resource type such as Microsoft.Storage/storageAccounts (or {SUBSCRIPTION!r}), "
            f"got {value!r}"
        )
    return value


def resource_group(value: str) -> str:
    if not _RESOURCE_GROUP.match(value):
        raise ValueError(f"expected a resource group name or glob such as rg-prod-*, got {value!r}")
    return value


def severity(value: str) -> str:
    for name in SEVERITY_NAMES:
        if value.lower() == name.lower():
            return name
    close = difflib.get_close_matches(value.lower(), [n.lower() for n in SEVERITY_NAMES], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0].capitalize()!r}?" if close else ""
    raise ValueError(f"expected one of {', '.join(SEVERITY_NAMES)}, got {value!r}{hint}")


def is_role(value: str) -> bool:
    """True for an approver role name (``security-oncall``), False for a Slack id."""
    return _ROLE.match(value) is not None and _SLACK_ID.match(value) is None


def approver(value: str) -> str:
    if _SLACK_ID.match(value):
        return value
    if _ROLE.match(value) and not _LOWER_SLACK_ID.match(value) and len(value) <= 64:
        return value
    if _LOWER_SLACK_ID.match(value):
        raise ValueError(f"{value!r} looks like a Slack id typed in lower case: write {value.upper()!r} "
                         "(or name a role, such as security-oncall)")
    hint = ""
    try:
        slack_id(value)
    except ValueError as e:
        hint = str(e).partition(f"got {value!r}")[2]
    raise ValueError(
        f"expected an approver role (lower-case kebab, such as security-oncall) or a Slack user or user-group id "
        f"(U…/W…/S…), got {value!r}{hint}"
    )


def slack_id(value: str) -> str:
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


def unitless(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a duration needs a unit: {value}m, {value}h or {value}d")
    return value


def duration(value: str) -> str:
    parse_duration(value)
    return value


def expires_after(value: str) -> str:
    d = parse_duration(value)
    if not EXPIRES_MIN <= d <= EXPIRES_MAX:
        raise ValueError(f"must be between 5m and 14d, got {value!r}")
    return value


def control(value: str) -> str:
    problem = control_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def where_key(value: str) -> str:
    for prefix in ("tags.", RESOURCE_GROUP_TAGS):
        if value.startswith(prefix) and len(value) > len(prefix):
            return value
    raise ValueError("conditions are on tags: write tags.<name> (the resource's) or resource_group.tags.<name> "
                     f"(its resource group's), got {value!r}")


def approval_shorthand(value: Any) -> Any:
    if value == "auto":
        return {"mode": "auto"}
    if isinstance(value, str):
        raise ValueError(f"expected 'auto' or a mapping (mode: slack, approvers, quorum, expires_after), got {value!r}")
    return value


def one_operator(cond: Any) -> Any:
    """A tag condition (``ConditionDoc``, or the fast path's object with the same attributes) names
    exactly one operator."""
    given = [k for k in ("in", "not_in", "equals", "exists") if getattr(cond, "in_" if k == "in" else k) is not None]
    if len(given) != 1:
        raise ValueError(
            "expected exactly one of in, not_in, equals, exists" + (f", got {', '.join(given)}" if given else "")
        )
    return cond
