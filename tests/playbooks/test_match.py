"""Which playbook claims a finding: ids per kind, globs, severity, scope, tags, priorities."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediator import ids
from remediator.errors import PlaybookError
from remediator.findings.model import Finding, FindingKind, Severity
from remediator.playbooks import PlaybookSet, load_playbooks
from remediator.playbooks.match import finding_type, glob_match, globs_overlap
from tests.playbooks.test_loader import ACTIONS, write

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-prod-web/providers/Microsoft.Storage/storageAccounts/contosoweb"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-prod-app/providers/Microsoft.Compute/virtualMachines/vm1"
PUBLIC_ACCESS = "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6"
POLICY = "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751"


def finding(
    kind: FindingKind = "recommendation",
    type_: str = PUBLIC_ACCESS,
    resource_id: str = ACCOUNT,
    *,
    severity: Severity = Severity.MEDIUM,
    policy_definition_id: str | None = None,
) -> Finding:
    parsed = ids.parse(resource_id)
    return Finding(
        id="f1",
        kind=kind,
        type=type_,
        title="t",
        severity=severity,
        status="Unhealthy",
        resource_id=resource_id,
        subscription_id=parsed.subscription_id,
        resource_group=parsed.resource_group,
        resource_type=parsed.type,
        source="test",
        policy_definition_id=policy_definition_id,
    )


def playbook(name: str, match: str, *, extra: str = "", action: str = "test.fix-blob") -> str:
    body = "\n".join("  " + line for line in match.strip().splitlines())
    return (
        f"name: {name}\ndescription: d\n{extra}match:\n{body}\nrisk: low\napproval: auto\nsteps:\n"
        f"  - action: {action}\n"
    )


def one(tmp_path: Path, match: str, **kw: str) -> PlaybookSet:
    write(tmp_path, {"p.yaml": playbook("p", match, **kw)})
    return load_playbooks(tmp_path, actions=ACTIONS)


STORAGE = "resource_types: [Microsoft.Storage/storageAccounts]"


def test_kind_specific_identifiers(tmp_path: Path) -> None:
    pbs = one(
        tmp_path,
        f"recommendations: [{PUBLIC_ACCESS.upper()}]\nalerts: [Storage.Blob_OpenACL]\npolicies: [{POLICY}]\n{STORAGE}",
    )
    assert pbs.match(finding()) is not None
    assert pbs.match(finding("alert", "storage.blob_openacl")) is not None  # alert types compare case-insensitively
    assert pbs.match(finding("policy", POLICY)) is not None
    # the right id under the wrong kind does not match
    assert pbs.match(finding("alert", PUBLIC_ACCESS)) is None
    assert pbs.match(finding("recommendation", "Storage.Blob_OpenACL")) is None
    assert pbs.match(finding("recommendation", POLICY)) is None


def test_policy_full_definition_ids(tmp_path: Path) -> None:
    full = f"/providers/Microsoft.Authorization/policyDefinitions/{POLICY}"
    pbs = one(tmp_path, f"policies: [{full}]\n{STORAGE}")
    assert pbs.match(finding("policy", POLICY, policy_definition_id=full.upper())) is not None
    assert pbs.match(finding("policy", POLICY)) is not None  # no full id on the finding: compare names
    custom = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/{POLICY}"
    assert pbs.match(finding("policy", POLICY, policy_definition_id=custom)) is None


def test_alert_globs(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "p.yaml": "name: p\ndescription: d\nmatch:\n"
            "  alerts: [RDP_Incoming_BF_*, 'SSH_?ncoming_BF_OneToOne']\n"
            "  resource_types: [Microsoft.Compute/virtualMachines]\nrisk: medium\n"
            "approval:\n  approvers: [S0614TZR7]\n"
            "steps:\n  - action: test.close-ports\n    params: {ports: [22]}\n"
        },
    )
    pbs = load_playbooks(tmp_path, actions=ACTIONS)
    assert pbs.match(finding("alert", "RDP_Incoming_BF_OneToOne", VM)) is not None
    assert pbs.match(finding("alert", "rdp_incoming_bf_manytoone", VM)) is not None
    assert pbs.match(finding("alert", "SSH_Incoming_BF_OneToOne", VM)) is not None
    assert pbs.match(finding("alert", "SSH_Incoming_BF_ManyToOne", VM)) is None
    assert pbs.match(finding("alert", "XRDP_Incoming_BF_OneToOne", VM)) is None  # anchored at both ends
    assert pbs.match(finding("alert", "RDP_Incoming_BF_OneToOne", ACCOUNT)) is None  # wrong resource type


def test_resource_types_are_case_insensitive(tmp_path: Path) -> None:
    pbs = one(tmp_path, f"recommendations: [{PUBLIC_ACCESS}]\nresource_types: [microsoft.storage/STORAGEACCOUNTS]")
    assert pbs.match(finding()) is not None
    assert pbs.match(finding(resource_id=ACCOUNT.upper())) is not None


def test_subscription_scoped_findings(tmp_path: Path) -> None:
    pbs = one(
        tmp_path,
        "recommendations: [050ac097-3dda-4d24-ab6d-82568e7a50cf]\nresource_types: [subscription]",
        action="test.revoke-roles",
    )
    f = finding(type_="050ac097-3dda-4d24-ab6d-82568e7a50cf", resource_id=f"/subscriptions/{SUB}")
    assert finding_type(f) == "subscription"
    assert pbs.match(f) is not None
    assert pbs.match(finding(type_="050ac097-3dda-4d24-ab6d-82568e7a50cf")) is None  # a storage account


@pytest.mark.parametrize(
    ("severity", "claimed"),
    [
        (Severity.UNKNOWN, False),  # policy events carry none: never satisfies severity_at_least
        (Severity.INFORMATIONAL, False),
        (Severity.LOW, False),
        (Severity.MEDIUM, True),
        (Severity.HIGH, True),
        (Severity.CRITICAL, True),
    ],
)
def test_severity_at_least(tmp_path: Path, severity: Severity, claimed: bool) -> None:
    pbs = one(tmp_path, f"recommendations: [{PUBLIC_ACCESS}]\nseverity_at_least: medium\n{STORAGE}")
    assert (pbs.match(finding(severity=severity)) is not None) is claimed


def test_scope_filters(tmp_path: Path) -> None:
    pbs = one(
        tmp_path,
        f"recommendations: [{PUBLIC_ACCESS}]\n{STORAGE}\nsubscriptions: [{SUB.upper()}]\nresource_groups: [RG-PROD-*]",
    )
    assert pbs.match(finding()) is not None
    other_sub = ACCOUNT.replace(SUB, "11111111-2222-3333-4444-555555555555")
    assert pbs.match(finding(resource_id=other_sub)) is None
    assert pbs.match(finding(resource_id=ACCOUNT.replace("rg-prod-web", "rg-dev-web"))) is None


@pytest.mark.parametrize(
    ("condition", "tags", "claimed"),
    [
        ("{not_in: [sandbox]}", {"Environment": "prod"}, True),
        ("{not_in: [sandbox]}", {"environment": "SANDBOX"}, False),  # values compare case-insensitively
        ("{not_in: [sandbox]}", {}, True),  # a missing tag is not in the list
        ("{not_in: [sandbox]}", None, True),  # None means no tags
        ("{in: [prod, staging]}", {"ENVIRONMENT": "Staging"}, True),  # tag names are case-insensitive
        ("{in: [prod, staging]}", {}, False),  # a missing tag is in no list
        ("{equals: prod}", {"environment": "prod"}, True),
        ("{equals: prod}", {"environment": "production"}, False),
        ("{exists: true}", {"environment": ""}, True),
        ("{exists: true}", {"owner": "x"}, False),
        ("{exists: false}", {"owner": "x"}, True),
        ("{exists: false}", {"environment": "x"}, False),
    ],
)
def test_where_tag_conditions(tmp_path: Path, condition: str, tags: dict[str, str] | None, claimed: bool) -> None:
    pbs = one(tmp_path, f"recommendations: [{PUBLIC_ACCESS}]\n{STORAGE}\nwhere:\n  tags.environment: {condition}")
    pb = next(iter(pbs))
    assert pb.needs_tags
    assert (pbs.match(finding(), tags) is not None) is claimed


def test_explain_says_why_not(tmp_path: Path) -> None:
    pbs = one(tmp_path, f"recommendations: [{PUBLIC_ACCESS}]\nseverity_at_least: High\n{STORAGE}")
    ((pb, why),) = pbs.explain(finding())
    assert pb.name == "p"
    assert why == "severity Medium is below High"
    ((_, why),) = pbs.explain(finding(type_="00000000-0000-0000-0000-000000000000"))
    assert why == "recommendation 00000000-0000-0000-0000-000000000000 is not listed"


def _pair(tmp_path: Path, a: str, b: str) -> PlaybookSet:
    m = f"recommendations: [{PUBLIC_ACCESS}]\n{STORAGE}"
    write(tmp_path, {"a.yaml": playbook("a", m, extra=a), "b.yaml": playbook("b", m, extra=b)})
    return load_playbooks(tmp_path, actions=ACTIONS)


def test_highest_priority_wins(tmp_path: Path) -> None:
    pbs = _pair(tmp_path, "priority: 10\n", "priority: 20\n")
    pb = pbs.match(finding())
    assert pb is not None
    assert pb.name == "b"


def test_runtime_tie_is_an_error_naming_both_files(tmp_path: Path) -> None:
    # the loader refuses this statically; build the set by hand to exercise the fail-closed backstop
    pbs = _pair(tmp_path, "priority: 10\n", "priority: 20\n")
    a, b = pbs.get("a"), pbs.get("b")
    assert a is not None
    assert b is not None
    from dataclasses import replace

    tied = PlaybookSet([a, replace(b, priority=10)])
    with pytest.raises(PlaybookError) as caught:
        tied.match(finding())
    msg = str(caught.value)
    assert f"{tmp_path.as_posix()}/a.yaml" in msg
    assert f"{tmp_path.as_posix()}/b.yaml" in msg
    assert "without distinct priorities" in msg
    both_unset = PlaybookSet([replace(a, priority=None), replace(b, priority=None)])
    with pytest.raises(PlaybookError):
        both_unset.match(finding())
    one_set = PlaybookSet([a, replace(b, priority=None)])  # a playbook without a priority ranks below any
    assert one_set.match(finding()) is a


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("RDP_*", "RDP_Incoming_BF_OneToOne", True),
        ("rdp_*", "RDP_Incoming_BF_OneToOne", True),
        ("*_BF_*", "RDP_*", True),
        ("RDP_*", "SSH_*", False),
        ("RDP_?", "RDP_AB", False),
        ("RDP_??", "RDP_*B", True),
        ("a*b*c", "*x*", True),
        ("abc", "abd", False),
        ("*", "anything", True),
    ],
)
def test_globs_overlap(a: str, b: str, overlap: bool) -> None:
    assert globs_overlap(a, b) is overlap
    assert globs_overlap(b, a) is overlap


def test_glob_match_is_literal_apart_from_star_and_question_mark() -> None:
    assert glob_match("Storage.Blob_[OpenACL]", "storage.blob_[openacl]")
    assert not glob_match("Storage.Blob_[OpenACL]", "Storage.Blob_O")
    assert glob_match("/subscriptions/*/resourceGroups/rg-legacy/*", "/SUBSCRIPTIONS/s/resourcegroups/RG-LEGACY/x/y")


def test_could_claim_ignores_tag_conditions_and_says_why_not(tmp_path: Path) -> None:
    pbs = one(tmp_path, f"recommendations: [{PUBLIC_ACCESS}]\n{STORAGE}\nwhere:\n  tags.environment: {{equals: prod}}")
    assert pbs.match(finding(), {}) is None  # the tag condition does not hold without tags
    assert pbs.could_claim(finding()) is None  # but some tags would make it claim the finding
    other = finding(type_="00000000-0000-0000-0000-000000000000")
    assert pbs.could_claim(other) == ("no playbook claims recommendation 00000000-0000-0000-0000-000000000000 on "
                                      "Microsoft.Storage/storageAccounts")
    assert PlaybookSet().could_claim(finding()) is not None
