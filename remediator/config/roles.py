"""Approver roles: playbooks name roles, the deployment maps them to Slack users and user groups.

A playbook's ``approval.approvers`` lists roles (``security-oncall``, ``security-leads``,
``platform-owners``: the vocabulary of the shipped playbooks; any lower-case kebab name works) and,
in a deployment's own playbooks, literal Slack ids (``U…``/``W…`` users, ``S…`` user groups).
``Settings.approver_roles`` maps each role to Slack ids. ``resolve`` turns a playbook's list into
the ids a request is approved by (what the remediation stores and Slack shows); a role without a
mapping resolves to nobody (fail closed), and ``role_issues`` reports it, so ``serve``, the
Functions app (``remediator.app.wiring.build_engine``), ``doctor`` and ``validate --config`` stop
with the playbook and the role named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from remediator.errors import Issue, PlaybookError
from remediator.playbooks import Playbook
from remediator.playbooks.model import is_role

ROLES_ENV = "REMEDIATOR_APPROVER_ROLES"
SHIPPED_ROLES: tuple[str, ...] = ("security-oncall", "security-leads", "platform-owners")
"""The roles the shipped playbooks use (docs/deploy.md lists them; a test keeps them in sync)."""


def resolve(approvers: Sequence[str], roles: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """``approvers`` (roles and Slack ids) as Slack ids, in order, each once; unmapped roles add nobody."""
    out: list[str] = []
    for entry in approvers:
        for slack_id in (roles.get(entry, ()) if is_role(entry) else (entry,)):
            if slack_id not in out:
                out.append(slack_id)
    return tuple(out)


def role_issues(playbooks: Iterable[Playbook], roles: Mapping[str, Sequence[str]]) -> list[Issue]:
    """Every role a playbook names without a mapping, and every quorum its mapped people cannot meet."""
    issues: list[Issue] = []
    for pb in playbooks:
        missing = [r for r in pb.approval.roles if not roles.get(r)]
        for role in missing:
            hint = f"; mapped roles: {', '.join(sorted(roles))}" if roles else ""
            issues.append(Issue(pb.file, pb.approval.line or pb.line, "approval.approvers",
                                f"{pb.name}: approver role {role!r} is not mapped to anyone: map it to Slack user or "
                                f"user-group ids in approver_roles (settings file) or {ROLES_ENV}={role}=<ids>{hint}"))
        if missing or not pb.approval.roles:
            continue
        resolved = resolve(pb.approval.approvers, roles)
        users = [i for i in resolved if not i.startswith("S")]
        if len(users) == len(resolved) and pb.approval.quorum > len(users):
            issues.append(Issue(pb.file, pb.approval.line or pb.line, "approval.quorum",
                                f"{pb.name}: quorum {pb.approval.quorum} is more than the {len(users)} people its "
                                f"roles ({', '.join(pb.approval.roles)}) map to"))
    return issues


def check_roles(playbooks: Iterable[Playbook], roles: Mapping[str, Sequence[str]]) -> None:
    """``PlaybookError`` with every ``role_issues`` problem; nothing when every role is mapped."""
    issues = role_issues(playbooks, roles)
    if issues:
        raise PlaybookError(issues)
