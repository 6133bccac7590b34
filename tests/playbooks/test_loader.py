"""Loading playbooks: every kind of mistake gives one exact ``file:line: path: message``.

The actions here are test-only and passed explicitly (``actions=``), so these tests do not depend
on the shipped actions and never touch the global registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field

from remediator.actions.base import Action, ApplyResult, BuiltinRole, Params, PlanContext
from remediator.actions.change import Change
from remediator.errors import PlaybookError
from remediator.playbooks import load_playbooks, validate_playbooks

READER = BuiltinRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7")


class _TestAction(Action[Any]):
    permissions: ClassVar[tuple[str, ...]] = ()
    role: ClassVar[BuiltinRole] = READER

    def plan(self, ctx: PlanContext, params: Any) -> list[Change]:
        return []

    def apply(self, clients: Any, change: Change) -> ApplyResult:
        raise NotImplementedError

    def verify(self, state: Any, change: Change) -> str | None:
        return None


class FixBlob(_TestAction):
    """Fix blobs."""

    name = "test.fix-blob"
    Params = Params
    resource_types = ("Microsoft.Storage/storageAccounts",)


class PortsParams(Params):
    ports: list[int] = Field(min_length=1, description="Ports to close.")
    mode: Literal["remove", "deny"] = Field("remove", description="How.")


class ClosePorts(_TestAction):
    """Close ports."""

    name = "test.close-ports"
    Params = PortsParams
    resource_types = ("Microsoft.Compute/virtualMachines", "Microsoft.Network/networkSecurityGroups")


class RevokeRoles(_TestAction):
    """Revoke roles."""

    name = "test.revoke-roles"
    Params = Params
    resource_types = ("subscription",)


ACTIONS: dict[str, Action[Any]] = {a.name: a() for a in (FixBlob, ClosePorts, RevokeRoles)}

# Line numbers are asserted below; keep these templates' lines where they are.
BLOB = """\
name: fix-blobs
description: Fix blobs.
match:
  recommendations: [51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6]
  resource_types: [Microsoft.Storage/storageAccounts]
risk: low
approval: auto
steps:
  - action: test.fix-blob
"""

PORTS = """\
name: close-ports
description: Close ports.
match:
  alerts: [RDP_Incoming_BF_*]
  resource_types: [Microsoft.Compute/virtualMachines]
risk: medium
approval:
  mode: slack
  approvers: [S0614TZR7]
  expires_after: 4h
steps:
  - action: test.close-ports
    params:
      ports: [22, 3389]
"""


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        path = folder / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")


def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str | bytes]) -> list[str]:
    """Validate ``files`` as ``playbooks/<name>`` (relative, as a CLI user passes it)."""
    write(tmp_path / "playbooks", files)
    monkeypatch.chdir(tmp_path)
    return [str(i) for i in validate_playbooks("playbooks", actions=ACTIONS)]


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def run(text: str | bytes, name: str = "a.yaml") -> list[str]:
        return problems(tmp_path, monkeypatch, {name: text})

    return run


def test_templates_are_valid(check: Any) -> None:
    assert check(BLOB) == []
    assert check(PORTS, "b.yaml") == []


def test_loaded_playbook_is_normalised(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": BLOB, "b.yaml": PORTS})
    pbs = load_playbooks(tmp_path, actions=ACTIONS)
    assert len(pbs) == 2
    assert [p.name for p in pbs] == ["fix-blobs", "close-ports"]
    blob, ports = pbs.get("fix-blobs"), pbs.get("close-ports")
    assert blob is not None
    assert ports is not None
    assert pbs.get("nope") is None
    assert blob.file == f"{tmp_path.as_posix()}/a.yaml"
    assert blob.approval.mode == "auto"
    assert blob.approval.approvers == ()
    assert blob.match.resource_types == ("microsoft.storage/storageaccounts",)
    assert ports.approval.quorum == 1
    assert ports.approval.expires_after.total_seconds() == 4 * 3600
    step = ports.steps[0]
    assert isinstance(step.params, PortsParams)
    assert step.params.ports == [22, 3389]
    assert step.raw_params == {"ports": [22, 3389]}
    assert step.line == 12
    assert ports.match.alerts == ("rdp_incoming_bf_*",)


# --- pass 2: structure -------------------------------------------------------------------------


def test_unknown_keys_with_did_you_mean(check: Any) -> None:
    text = BLOB.replace("risk: low", "risk: low\npriorty: 5").replace(
        "  resource_types:", "  resource_type: [x]\n  resource_types:"
    )
    assert check(text) == [
        "playbooks/a.yaml:5: match.resource_type: unknown key; did you mean 'resource_types'?",
        "playbooks/a.yaml:8: priorty: unknown key; did you mean 'priority'?",
    ]


def test_unknown_key_without_close_match_lists_the_valid_ones(check: Any) -> None:
    assert check(BLOB + "colour: red\n") == [
        "playbooks/a.yaml:10: colour: unknown key; valid keys: name, description, priority, enabled, match, risk, "
        "approval, steps, controls"
    ]


def test_missing_required_keys_point_at_the_parent(check: Any) -> None:
    text = BLOB.replace("  resource_types: [Microsoft.Storage/storageAccounts]\n", "").replace("risk: low\n", "")
    assert check(text) == [
        "playbooks/a.yaml:1: missing required key 'risk'",
        "playbooks/a.yaml:3: match: missing required key 'resource_types'",
    ]


def test_wrong_types(check: Any) -> None:
    text = BLOB.replace("description: Fix blobs.", "description: [a]").replace(
        "  recommendations: [51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6]", "  recommendations: 51fd8bb1"
    )
    assert check(text) == [
        "playbooks/a.yaml:2: description: expected a string, got a list",
        "playbooks/a.yaml:4: match.recommendations: expected a list, got a string ('51fd8bb1')",
    ]


def test_bad_enum_and_formats(check: Any) -> None:
    text = (
        BLOB.replace("name: fix-blobs", "name: Fix_Blobs")
        .replace("risk: low", "risk: Low")
        .replace("[51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6]", "[Storage account public access should be disallowed]")
    )
    assert check(text) == [
        "playbooks/a.yaml:1: name: expected a kebab-case name (a-z, 0-9 and '-', like storage-fix-this), "
        "got 'Fix_Blobs'",
        "playbooks/a.yaml:4: match.recommendations[0]: expected an assessment key (a GUID such as "
        "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6), got 'Storage account public access should be disallowed'; "
        "recommendations are matched by key, not by display name",
        "playbooks/a.yaml:6: risk: expected 'low', 'medium' or 'high', got a string ('Low'); did you mean 'low'?",
    ]


def test_match_needs_an_identifier(check: Any) -> None:
    text = BLOB.replace("  recommendations: [51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6]\n", "")
    assert check(text) == [
        "playbooks/a.yaml:3: match: needs at least one of recommendations, alerts, policies, policy_categories, "
        "operations (what this playbook fixes)"
    ]


def test_alert_glob_matching_everything_is_refused(check: Any) -> None:
    assert check(PORTS.replace("[RDP_Incoming_BF_*]", '["*"]')) == [
        "playbooks/a.yaml:4: match.alerts[0]: '*' would match every alert type; "
        "list the alert types this playbook fixes"
    ]


def test_subscription_spelling(check: Any) -> None:
    text = BLOB.replace("[Microsoft.Storage/storageAccounts]", "[Microsoft.Resources/subscriptions]")
    assert check(text) == [
        "playbooks/a.yaml:5: match.resource_types[0]: write 'subscription' for subscription-scoped findings, "
        "not 'Microsoft.Resources/subscriptions'"
    ]


def test_policies_with_severity_would_never_match(check: Any) -> None:
    text = BLOB.replace(
        "  resource_types:",
        "  policies: [4fa4b6c0-31ca-4c0d-b10d-24b96f62a751]\n  severity_at_least: Medium\n  resource_types:",
    )
    assert check(text) == [
        "playbooks/a.yaml:6: match.severity_at_least: policy findings carry no severity, so the listed "
        "policies could never match; drop severity_at_least or move the policies to their own playbook"
    ]


def test_severity_did_you_mean(check: Any) -> None:
    text = BLOB.replace("  resource_types:", "  severity_at_least: Hihg\n  resource_types:")
    assert check(text) == [
        "playbooks/a.yaml:5: match.severity_at_least: expected one of Informational, Low, Medium, High, "
        "Critical, got 'Hihg'; did you mean 'High'?"
    ]


def test_where_conditions(check: Any) -> None:
    text = BLOB.replace(
        "  resource_types:",
        "  where:\n    tags.env: {in: [a], equals: b}\n    environment: {exists: true}\n  resource_types:",
    )
    assert check(text) == [
        "playbooks/a.yaml:6: match.where.tags.env: expected exactly one of in, not_in, equals, exists, got in, equals",
        "playbooks/a.yaml:7: match.where.environment: conditions are on tags: write tags.<name> (the resource's) or "
        "resource_group.tags.<name> (its resource group's), got 'environment'",
    ]


def test_duplicate_list_entries(check: Any) -> None:
    text = PORTS.replace("[RDP_Incoming_BF_*]", "[RDP_Incoming_BF_*, rdp_incoming_bf_*]")
    assert check(text) == ["playbooks/a.yaml:4: match.alerts[1]: 'rdp_incoming_bf_*' is listed twice (first as item 0)"]


# --- approval ------------------------------------------------------------------------------------


def test_auto_approval_needs_low_risk(check: Any) -> None:
    assert check(BLOB.replace("risk: low", "risk: high")) == [
        "playbooks/a.yaml:7: approval: auto approval needs risk: low (this playbook is risk: high); "
        "use mode: slack with approvers"
    ]


def test_approval_shorthand_other_than_auto(check: Any) -> None:
    assert check(BLOB.replace("approval: auto", "approval: slack")) == [
        "playbooks/a.yaml:7: approval: expected 'auto' or a mapping (mode: slack, approvers, quorum, "
        "expires_after), got 'slack'"
    ]


def test_slack_without_approvers_fails_closed(check: Any) -> None:
    assert check(PORTS.replace("  approvers: [S0614TZR7]\n", "")) == [
        "playbooks/a.yaml:7: approval: mode slack needs approvers (roles such as security-oncall, or Slack user "
        "or user-group ids); with none, nobody could approve"
    ]


def test_bad_approver_ids(check: Any) -> None:
    text = PORTS.replace("[S0614TZR7]", "[alice@example.com, C0614TZR7, u0614tzr7]")
    hint = ("expected an approver role (lower-case kebab, such as security-oncall) or a Slack user or user-group "
            "id (U…/W…/S…), got")
    assert check(text) == [
        f"playbooks/a.yaml:9: approval.approvers[0]: {hint} 'alice@example.com'; use the Slack member id "
        "(profile → ⋯ → Copy member ID), not an e-mail address",
        f"playbooks/a.yaml:9: approval.approvers[1]: {hint} 'C0614TZR7'; that is a channel id, approvers are "
        "people (U…/W…) or user groups (S…)",
        "playbooks/a.yaml:9: approval.approvers[2]: 'u0614tzr7' looks like a Slack id typed in lower case: "
        "write 'U0614TZR7' (or name a role, such as security-oncall)",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("4 hours", "expected a duration like 30m, 4h or 2d, got '4 hours'"),
        ("20d", "must be between 5m and 14d, got '20d'"),
        ("1m", "must be between 5m and 14d, got '1m'"),
        ("30", "a duration needs a unit: 30m, 30h or 30d"),
        ("''", "expected a duration like 30m, 4h or 2d, got ''"),
    ],
)
def test_bad_durations(check: Any, value: str, message: str) -> None:
    assert check(PORTS.replace("expires_after: 4h", f"expires_after: {value}")) == [
        f"playbooks/a.yaml:10: approval.expires_after: {message}"
    ]


def test_remind_after_must_be_shorter_than_expiry(check: Any) -> None:
    text = PORTS.replace("expires_after: 4h", "expires_after: 4h\n  remind_after: 1d")
    assert check(text) == [
        "playbooks/a.yaml:11: approval.remind_after: must be at least 5m and shorter than expires_after (4h)"
    ]


def test_high_risk_needs_two_approvals(check: Any) -> None:
    assert check(PORTS.replace("risk: medium", "risk: high")) == [
        "playbooks/a.yaml:7: approval: risk: high needs quorum: 2 or more (two people approve), got 1"
    ]
    text = PORTS.replace("risk: medium", "risk: high").replace("expires_after: 4h", "quorum: 1")
    assert check(text) == [
        "playbooks/a.yaml:10: approval.quorum: risk: high needs quorum: 2 or more (two people approve), got 1"
    ]
    # a user group has many members: quorum 2 with one group is fine
    assert check(PORTS.replace("risk: medium", "risk: high").replace("expires_after: 4h", "quorum: 2")) == []


def test_quorum_larger_than_the_listed_users(check: Any) -> None:
    text = PORTS.replace("[S0614TZR7]", "[U05K8NQ2R7T, U05M3XH9V4P]").replace("expires_after: 4h", "quorum: 3")
    assert check(text) == ["playbooks/a.yaml:10: approval.quorum: quorum 3 is more than the 2 listed approvers"]


def test_auto_with_slack_settings(check: Any) -> None:
    text = BLOB.replace("approval: auto", "approval:\n  mode: auto\n  quorum: 2")
    assert check(text) == ["playbooks/a.yaml:9: approval.quorum: only used with mode: slack"]


# --- pass 3: actions and params ----------------------------------------------------------------------


def test_unknown_action_with_did_you_mean(check: Any) -> None:
    assert check(BLOB.replace("test.fix-blob", "test.fix-blobs")) == [
        "playbooks/a.yaml:9: steps[0].action: unknown action 'test.fix-blobs'; did you mean 'test.fix-blob'?"
    ]
    assert check(BLOB.replace("test.fix-blob", "storage.nothing-like-it")) == [
        "playbooks/a.yaml:9: steps[0].action: unknown action 'storage.nothing-like-it'; valid actions: "
        "test.close-ports, test.fix-blob, test.revoke-roles"
    ]


def test_bad_param_type_and_value(check: Any) -> None:
    text = PORTS.replace("ports: [22, 3389]", "ports: [22, rdp]\n      mode: delete")
    assert check(text) == [
        "playbooks/a.yaml:14: steps[0].params.ports[1]: expected an integer, got a string ('rdp')",
        "playbooks/a.yaml:15: steps[0].params.mode: expected 'remove' or 'deny', got a string ('delete')",
    ]


def test_unknown_param(check: Any) -> None:
    text = PORTS.replace("ports: [22, 3389]", "ports: [22]\n      prots: [1]")
    assert check(text) == ["playbooks/a.yaml:15: steps[0].params.prots: unknown key; did you mean 'ports'?"]


def test_missing_required_param(check: Any) -> None:
    assert check(PORTS.replace("    params:\n      ports: [22, 3389]\n", "")) == [
        "playbooks/a.yaml:12: steps[0].params: missing required key 'ports'"
    ]
    assert check(PORTS.replace("\n      ports: [22, 3389]", " {}")) == [
        "playbooks/a.yaml:13: steps[0].params: missing required key 'ports'"
    ]


def test_params_must_be_a_mapping(check: Any) -> None:
    assert check(PORTS.replace("\n      ports: [22, 3389]", " [22]")) == [
        "playbooks/a.yaml:13: steps[0].params: expected a mapping, got a list"
    ]


def test_action_that_cannot_handle_the_resource_type(check: Any) -> None:
    text = BLOB.replace("[Microsoft.Storage/storageAccounts]", "[Microsoft.Compute/virtualMachines]")
    assert check(text) == [
        "playbooks/a.yaml:5: match.resource_types[0]: test.fix-blob (steps[0]) cannot handle "
        "Microsoft.Compute/virtualMachines; it handles Microsoft.Storage/storageAccounts"
    ]


def test_errors_in_structure_and_steps_are_reported_together(check: Any) -> None:
    text = BLOB.replace("risk: low", "risk: lo").replace("test.fix-blob", "test.fix-blobs")
    assert check(text) == [
        "playbooks/a.yaml:6: risk: expected 'low', 'medium' or 'high', got a string ('lo'); did you mean 'low'?",
        "playbooks/a.yaml:9: steps[0].action: unknown action 'test.fix-blobs'; did you mean 'test.fix-blob'?",
    ]


# --- pass 1: YAML ----------------------------------------------------------------------------------


def test_yaml_syntax_error_has_the_line(check: Any) -> None:
    text = BLOB.replace("  resource_types: [Microsoft.Storage/storageAccounts]", "  resource_types: [Microsoft")
    (msg,) = check(text)
    assert msg.startswith("playbooks/a.yaml:6: yaml: while parsing a flow sequence")


def test_duplicate_key(check: Any) -> None:
    assert check(BLOB.replace("risk: low", "risk: low\nname: again")) == [
        "playbooks/a.yaml:7: name: duplicate key (first defined on line 1)"
    ]
    assert check(PORTS.replace("expires_after: 4h", "mode: auto")) == [
        "playbooks/a.yaml:10: approval.mode: duplicate key (first defined on line 8)"
    ]


def test_alias_bomb_fails_fast(check: Any) -> None:
    import time

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    (msg,) = check("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 1.0
    assert msg.startswith("playbooks/a.yaml:")
    assert "yaml: more than 10,000 values (aliases expand" in msg


def test_recursive_alias(check: Any) -> None:
    (msg,) = check("name: &x [*x]\n")
    assert msg.startswith("playbooks/a.yaml:1: yaml: nesting deeper than 40 levels")


def test_deep_nesting(check: Any) -> None:
    (msg,) = check("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert msg == "playbooks/a.yaml:1: yaml: nesting deeper than 40 levels"
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(60)) + "  " * 60 + "x: 1\n"
    (msg,) = check(block)
    assert msg == "playbooks/a.yaml:40: yaml: nesting deeper than 40 levels"


def test_deep_flow_nesting_is_refused_before_pyyaml_scans_it(check: Any) -> None:
    # PyYAML's scanner looks ahead over flow brackets quadratically: refused before it starts
    (msg,) = check("name: x\nmatch: " + "[ " * 100_000 + "]" * 100_000 + "\n")
    assert msg == "playbooks/a.yaml:2: yaml: nesting deeper than 40 levels"


@pytest.mark.parametrize(("char", "line"), [("\x0e", 2), ("\x99", 3), ("\ufffe", 2)])
def test_unprintable_characters_are_one_issue_with_the_line(check: Any, char: str, line: int) -> None:
    # found by the fuzz suite: PyYAML checks a text for such characters before parsing starts,
    # outside the loader's error handling, and the ReaderError escaped as an internal error
    text = BLOB.replace("description: Fix blobs.", f"description: Fix{char} blobs.") if line == 2 else \
        BLOB.replace("match:", f"#{char}\nmatch:")
    assert check(text) == [f"playbooks/a.yaml:{line}: yaml: character {char!r} is not allowed in YAML"]


@pytest.mark.parametrize(("escape", "message"), [
    ("\\UFFFFFFFF", "a \\U escape beyond U+10FFFF is not a character"),
    ("\\U00110000", "a \\U escape beyond U+10FFFF is not a character"),
    ("\\ud800", "a lone surrogate escape (\\ud800-\\udfff) is not valid Unicode"),
])
def test_escapes_that_are_no_character(check: Any, escape: str, message: str) -> None:
    # found by the fuzz suite: PyYAML's chr() raised OverflowError/ValueError past the loader
    text = BLOB.replace("description: Fix blobs.", f'description: "Fix {escape} blobs."')
    assert check(text) == [f"playbooks/a.yaml:2: yaml: {message}"]


@pytest.mark.parametrize("number", ["0x" + "f" * 5000, "9" * 5000, "0o" + "7" * 2000])
def test_huge_integers_are_an_issue(check: Any, number: str) -> None:
    # found by the fuzz suite: a 5,000-digit hex integer loaded, then describing it raised ValueError
    (msg,) = check(BLOB.replace("name: fix-blobs", f"name: {number}"))
    assert msg.startswith(f"playbooks/a.yaml:1: yaml: {number[:40]!r}")
    assert "is not a usable integer" in msg


def test_a_key_with_a_newline_is_a_one_line_issue(check: Any) -> None:
    (msg,) = check(BLOB + '"bad\\nkey": 1\n')
    assert "\n" not in msg
    assert "bad key: unknown key" in msg


def test_non_utf8(check: Any) -> None:
    assert check(b"name: fix-blobs\ndescription: caf\xe9\n") == [
        "playbooks/a.yaml:2: yaml: not UTF-8: byte 0xe9 at offset 32"
    ]


def test_empty_and_comment_only_files(check: Any) -> None:
    expected = [
        "playbooks/a.yaml:1: the file is empty; expected a playbook (name, description, match, risk, approval, steps)"
    ]
    assert check("") == expected
    assert check("# nothing yet\n\n") == expected


def test_not_a_mapping(check: Any) -> None:
    assert check("- name: x\n") == [
        "playbooks/a.yaml:1: expected a mapping of playbook keys (name, description, match, risk, approval, steps)"
    ]


def test_unsafe_tag(check: Any) -> None:
    assert check(BLOB.replace("description: Fix blobs.", "description: !!python/object/apply:os.system [id]")) == [
        "playbooks/a.yaml:2: yaml: tag !!python/object/apply:os.system is not allowed; use plain YAML values"
    ]


def test_too_large(check: Any) -> None:
    assert check(BLOB + "#" * 1_000_001 + "\n") == ["playbooks/a.yaml: yaml: file is larger than 1,000,000 bytes"]


def test_yaml_1_2_scalars(tmp_path: Path) -> None:
    # "no" and "on" stay strings (YAML 1.1 would make them booleans and fail the name check)
    write(tmp_path, {"a.yaml": BLOB.replace("name: fix-blobs", "name: no").replace("Fix blobs.", "on")})
    pb = next(iter(load_playbooks(tmp_path, actions=ACTIONS)))
    assert (pb.name, pb.description) == ("no", "on")


# --- across files -----------------------------------------------------------------------------------


def test_duplicate_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = PORTS.replace("name: close-ports", "name: fix-blobs")
    assert problems(tmp_path, monkeypatch, {"a.yaml": BLOB, "b.yml": other}) == [
        "playbooks/b.yml:1: name: 'fix-blobs' is already the name of the playbook in playbooks/a.yaml:1"
    ]


def test_overlapping_recommendation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = BLOB.replace("name: fix-blobs", "name: fix-blobs-too")
    assert problems(tmp_path, monkeypatch, {"a.yaml": BLOB, "b.yaml": other}) == [
        "playbooks/b.yaml:4: match.recommendations[0]: '51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6' is also "
        "claimed by fix-blobs (playbooks/a.yaml:4) for overlapping resources; give one of them "
        "a priority (the higher one wins; none ranks below any), or narrow the match"
    ]


def test_overlapping_alert_globs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = PORTS.replace("name: close-ports", "name: close-rdp").replace(
        "[RDP_Incoming_BF_*]", "[SSH_Incoming_BF_OneToOne, RDP_Incoming_BF_OneToOne]"
    )
    assert problems(tmp_path, monkeypatch, {"a.yaml": PORTS, "b.yaml": other}) == [
        "playbooks/b.yaml:4: match.alerts[1]: 'RDP_Incoming_BF_OneToOne' overlaps 'RDP_Incoming_BF_*', which "
        "is also claimed by close-ports (playbooks/a.yaml:4) for overlapping resources; give one of them "
        "a priority (the higher one wins; none ranks below any), or narrow the match"
    ]


def test_equal_priorities_still_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = BLOB.replace("risk: low", "risk: low\npriority: 5")
    b = a.replace("name: fix-blobs", "name: fix-blobs-too")
    (msg,) = problems(tmp_path, monkeypatch, {"a.yaml": a, "b.yaml": b})
    assert msg.endswith("for overlapping resources; both have priority 5: make them different, or narrow the match")


@pytest.mark.parametrize(
    ("a_extra", "b_extra"),
    [
        ("priority: 1", "priority: 2"),  # distinct priorities resolve it
    ],
)
def test_distinct_priorities_allow_overlap(tmp_path: Path, a_extra: str, b_extra: str) -> None:
    a = BLOB.replace("risk: low", f"risk: low\n{a_extra}")
    b = BLOB.replace("name: fix-blobs", "name: fix-blobs-too").replace("risk: low", f"risk: low\n{b_extra}")
    write(tmp_path, {"a.yaml": a, "b.yaml": b})
    assert validate_playbooks(tmp_path, actions=ACTIONS) == []


@pytest.mark.parametrize(
    ("a_scope", "b_scope"),
    [
        (
            "  subscriptions: [3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41]",
            "  subscriptions: [11111111-2222-3333-4444-555555555555]",
        ),
        ("  resource_groups: [rg-prod-*]", "  resource_groups: [rg-dev-*]"),
        ("  where: {tags.env: {in: [prod]}}", "  where: {tags.env: {not_in: [prod, Staging]}}"),
        ("  where: {tags.env: {equals: Prod}}", "  where: {tags.env: {equals: dev}}"),
        ("  where: {tags.env: {exists: false}}", "  where: {tags.env: {in: [x]}}"),
    ],
)
def test_disjoint_scopes_do_not_overlap(tmp_path: Path, a_scope: str, b_scope: str) -> None:
    def scoped(text: str, scope: str) -> str:
        return text.replace("  resource_types:", f"{scope}\n  resource_types:")

    b = BLOB.replace("name: fix-blobs", "name: fix-blobs-too")
    write(tmp_path, {"a.yaml": scoped(BLOB, a_scope), "b.yaml": scoped(b, b_scope)})
    assert validate_playbooks(tmp_path, actions=ACTIONS) == []


def test_scopes_that_may_meet_still_overlap(tmp_path: Path) -> None:
    def scoped(text: str, scope: str) -> str:
        return text.replace("  resource_types:", f"{scope}\n  resource_types:")

    b = BLOB.replace("name: fix-blobs", "name: fix-blobs-too")
    write(
        tmp_path,
        {
            "a.yaml": scoped(BLOB, "  resource_groups: [rg-prod-*]"),
            "b.yaml": scoped(b, "  resource_groups: ['*-web']\n  where: {tags.env: {not_in: [dev]}}"),
        },
    )
    assert len(validate_playbooks(tmp_path, actions=ACTIONS)) == 1


def test_disjoint_resource_types_do_not_overlap(tmp_path: Path) -> None:
    a = PORTS
    b = PORTS.replace("name: close-ports", "name: close-nsg-ports").replace(
        "Microsoft.Compute/virtualMachines", "Microsoft.Network/networkSecurityGroups"
    )
    write(tmp_path, {"a.yaml": a, "b.yaml": b})
    assert validate_playbooks(tmp_path, actions=ACTIONS) == []


def test_load_raises_with_every_issue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "playbooks",
        {"a.yaml": BLOB.replace("risk: low", "risk: high"), "b.yaml": "", "c.txt": "x"},
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlaybookError) as caught:
        load_playbooks("playbooks", actions=ACTIONS)
    assert [i.file for i in caught.value.issues] == ["playbooks/a.yaml", "playbooks/b.yaml"]
    assert str(caught.value).startswith("playbooks/a.yaml:7: approval: auto approval needs risk: low")
    assert str(caught.value).endswith("(and 1 more)")


def test_missing_and_empty_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert [str(i) for i in validate_playbooks("nope", actions=ACTIONS)] == ["nope: no such file or directory"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".#a.yaml").write_text("editor lock file")
    assert [str(i) for i in validate_playbooks("empty", actions=ACTIONS)] == [
        "empty: no playbooks (*.yaml, *.yml) in this directory"
    ]


# --------------------------------------------------------------------------------------------
# Overlays of a base folder, disabled playbooks, roles, resource-group tag conditions.


def test_an_overlay_adds_overrides_and_disables(tmp_path: Path) -> None:
    write(tmp_path / "base", {"a.yaml": BLOB, "b.yaml": PORTS})
    write(tmp_path / "mine", {
        "a.yaml": BLOB.replace("Fix blobs.", "Fix blobs, our way."),  # same name: replaces the base one
        "off.yaml": "name: close-ports\nenabled: false\n",  # turns the base one off
        "new.yaml": BLOB.replace("fix-blobs", "fix-more").replace("51fd8bb1", "61fd8bb1"),
    })
    pbs = load_playbooks(tmp_path / "mine", actions=ACTIONS, base=tmp_path / "base")
    assert sorted(pbs.names) == ["fix-blobs", "fix-more"]
    blobs = pbs.get("fix-blobs")
    assert blobs is not None
    assert blobs.description == "Fix blobs, our way."
    assert [p.name for p in pbs.disabled] == ["close-ports"]
    assert pbs.overlay is not None
    assert (pbs.overlay.added, pbs.overlay.overridden, pbs.overlay.disabled) == (("fix-more",), ("fix-blobs",),
                                                                                 ("close-ports",))
    # the base folder itself is loaded once, not as an overlay of itself
    same = load_playbooks(tmp_path / "base", actions=ACTIONS, base=tmp_path / "base")
    assert same.overlay is None
    assert len(same) == 2


def test_a_disable_entry_outside_an_overlay_is_an_error(check: Any) -> None:
    assert check("name: close-ports\nenabled: false\n") == [
        "playbooks/a.yaml:1: enabled: disables 'close-ports', but this folder is not an overlay of the shipped "
        "playbooks: delete the file instead"
    ]


def test_a_disabled_playbook_claims_nothing_and_does_not_collide(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": BLOB, "b.yaml": BLOB.replace("fix-blobs", "fix-blobs-2") + "enabled: false\n"})
    pbs = load_playbooks(tmp_path, actions=ACTIONS)  # no overlap error: b is off
    assert pbs.names == ("fix-blobs",)
    assert [p.name for p in pbs.disabled] == ["fix-blobs-2"]


def test_roles_and_slack_ids_as_approvers(tmp_path: Path) -> None:
    write(tmp_path, {"b.yaml": PORTS.replace("[S0614TZR7]", "[security-oncall, U0614TZR7]") + "  # quorum\n"})
    ports = load_playbooks(tmp_path, actions=ACTIONS).get("close-ports")
    assert ports is not None
    assert (ports.approval.roles, ports.approval.users, ports.approval.groups) == (("security-oncall",),
                                                                                  ("U0614TZR7",), ())
    assert ports.approval.line == 9


def test_resource_group_tag_conditions(tmp_path: Path) -> None:
    text = BLOB.replace("  resource_types: [Microsoft.Storage/storageAccounts]\n",
                        "  resource_types: [Microsoft.Storage/storageAccounts]\n"
                        "  where:\n    resource_group.tags.Env: {equals: Prod}\n    tags.tier: {exists: true}\n")
    write(tmp_path, {"a.yaml": text})
    blobs = load_playbooks(tmp_path, actions=ACTIONS).get("fix-blobs")
    assert blobs is not None
    assert [(c.scope, c.tag, c.op, sorted(c.values)) for c in blobs.match.where] == [
        ("resource_group", "env", "in", ["prod"]), ("resource", "tier", "exists", [])]
    assert blobs.needs_tags
    assert blobs.needs_group_tags
