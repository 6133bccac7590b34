"""The playbook as used: frozen dataclasses, without pydantic (``model`` holds the file as written).

Identifiers are normalised for case-insensitive comparison, durations are ``timedelta``, each
step's parameters are its action's validated model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from remediator.findings.model import Severity
from remediator.playbooks.formats import EXPIRES_DEFAULT, is_role

if TYPE_CHECKING:
    from pydantic import BaseModel

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
