"""``remediator doctor``: every check passes against the fakes (FakeArm, FakeSlack, SQLite and
Azurite), and each broken setting gives one line that says what to fix."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from slack_sdk import WebClient

from bot.doctor import BOT_SCOPES, check_slack
from remediator.actions.approles import APP_ROLE_ASSIGNMENT_READWRITE_ALL
from remediator.actions.custom_roles import CUSTOM_ROLES, definition_document, definition_id
from remediator.app import cli, doctor
from remediator.config.settings import load_settings, read_settings
from remediator.playbooks import load_playbooks
from remediator.store import open_store
from remediator.testing import FakeArm, FakeMsGraph, FakeSlack
from remediator.testing.fake_msgraph import Reply
from tests.conftest import ROOT
from tests.support.azurite import azurite_connection_string  # noqa: F401 - registers the session fixture
from tests.support.builders import continuous_export, defender_plans
from tests.support.engine import ADMIN, LEAD1, LEAD2, MEMBERS, ONCALL
from tests.support.live import live_documents

SUB = "00000000-0000-0000-0000-0000000000d0"
EXECUTOR = "5f0c2a4e-8b1d-4e3f-a6c7-0d9e8f7a6b5c"
BROKER = "6a1d3b5f-9c2e-4f40-b7d8-1e0f9a8b7c6d"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
LOGS = f"/subscriptions/{SUB}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/law"
HUB = f"/subscriptions/{SUB}/resourceGroups/rg-rem/providers/Microsoft.EventHub/namespaces/ns/eventhubs/defender-export"
TEAM = "T0TEAM00001"


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.add_subscription(SUB, "prod")
        fake.assign_role(EXECUTOR, READER, f"/subscriptions/{SUB}")
        fake.assign_role(BROKER, RBAC_ADMIN, f"/subscriptions/{SUB}")
        fake.load(defender_plans(SUB))
        fake.add(continuous_export(SUB, HUB))
        fake.load(definition_document(r, [f"/subscriptions/{SUB}"]) for r in CUSTOM_ROLES.values())  # the template's
        yield fake


_GRAPH: list[FakeMsGraph] = []


@pytest.fixture(autouse=True)
def graph() -> Iterator[FakeMsGraph]:
    """Microsoft Graph, where the executor holds AppRoleAssignment.ReadWrite.All (the Graph playbook needs it)."""
    with FakeMsGraph() as fake:
        graph_sp = fake.add_microsoft_graph()
        fake.add_service_principal("remediator-executor", object_id=EXECUTOR)
        fake.assign_app_role(EXECUTOR, graph_sp, APP_ROLE_ASSIGNMENT_READWRITE_ALL)
        _GRAPH[:] = [fake]
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(team_id=TEAM, channels={"C0REMEDIATE": True, "C0NOTJOINED": False}, groups={ONCALL: MEMBERS},
                   users=(LEAD1, LEAD2, ADMIN)) as fake:
        yield fake


def env(tmp_path: Path, slack: FakeSlack, arm: FakeArm, **extra: str) -> dict[str, str]:
    values = {
        "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": slack.signing_secret,
        "REMEDIATOR_SLACK_CHANNEL": "C0REMEDIATE", "REMEDIATOR_SLACK_TEAM_ID": TEAM,
        "REMEDIATOR_SLACK_API_URL": slack.base_url, "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "REMEDIATOR_PLAYBOOKS_DIR": str(ROOT / "playbooks"), "REMEDIATOR_ARM_ENDPOINT": arm.base_url,
        "REMEDIATOR_ELEVATION": "pim-assign", "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": EXECUTOR,
        "REMEDIATOR_BROKER_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "REMEDIATOR_APPROVER_ROLES": f"security-oncall={ONCALL};security-leads={LEAD1},{LEAD2};"
                                     f"platform-owners={ONCALL}",
        "REMEDIATOR_ADMINS": ADMIN, "REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID": LOGS, "REMEDIATOR_EXPORT_EVENT_HUB_ID": HUB,
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v != "-"}


def run(values: dict[str, str], arm: FakeArm, *, executor: str = EXECUTOR, broker: str | None = BROKER,
        slack_client: WebClient | None = None) -> list[doctor.Check]:
    """The doctor as the CLI runs it (``doctor.run_all``), with the fakes' identities (FakeArm principal tokens)."""
    return doctor.run_all(lambda: read_settings(values), open_store=functools.partial(open_store, must_exist=True),
                          load_playbooks=load_playbooks,
                          slack=lambda s: check_slack(s, slack_client),
                          identities=lambda _s: (arm.clients(principal_id=executor, msgraph=_GRAPH[0].client()),
                                                 arm.clients(principal_id=broker) if broker else None))


def failures(checks: list[doctor.Check]) -> list[str]:
    return [c.line() for c in checks if not c.ok]


def test_all_pass_against_the_fakes(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    checks = run(env(tmp_path, slack, arm), arm)
    assert failures(checks) == []
    names = [c.name for c in checks]
    assert names == ["settings", "playbooks", "approver roles", "store", "quarantine", "slack token",
                     "slack approvers", "slack channel", "arm (executor)", "arm (broker)",
                     f"roles (executor, /subscriptions/{SUB})", f"roles (broker, /subscriptions/{SUB})",
                     f"defender plans (/subscriptions/{SUB})", f"continuous export (/subscriptions/{SUB})",
                     f"pim role settings (/subscriptions/{SUB})",
                     f"roles (broker, {LOGS})", "log destination", f"custom roles (/subscriptions/{SUB})",
                     "application permissions (executor)"]
    assert all(c.line().startswith("ok") for c in checks)
    export = next(c for c in checks if c.name.startswith("continuous export"))
    assert export.message == "export ExportToEventHub to defender-export: enabled, sources Alerts, Assessments, " \
                             "SubAssessments"
    pim = next(c for c in checks if c.name.startswith("pim role settings"))  # the shipped rbac-make-ai-access-eligible
    assert "Contributor: no approval, MFA, justification, at most PT8H, eligible up to P365D" in pim.message
    assert [c.method for c in slack.calls] == ["auth.test", "usergroups.list", "users.info", "users.info",
                                               "users.info", "conversations.history"]
    assert all(c.ok for c in slack.calls)  # with the manifest's scopes, Slack refuses none of the calls
    assert arm.writes == []  # a preflight never writes


def test_an_executor_without_the_graph_permission_is_told_which_and_that_pim_cannot_grant_it(
        tmp_path: Path, arm: FakeArm, slack: FakeSlack, graph: FakeMsGraph) -> None:
    graph.route("GET", "/v1.0/servicePrincipals/[^/]+/appRoleAssignments", lambda _g, _c: Reply(200, {"value": []}))
    lines = failures(run(env(tmp_path, slack, arm), arm))
    assert lines == [f"FAIL  application permissions (executor): {EXECUTOR} lacks the Microsoft Graph application "
                     "permission AppRoleAssignment.ReadWrite.All that entra-remove-graph-data-permissions needs: grant "
                     "it with admin consent (docs/deploy.md, \"Application permissions\"); PIM cannot grant it"]


def test_graph_unreachable_fails_the_permission_check_with_graph_s_answer(
        tmp_path: Path, arm: FakeArm, slack: FakeSlack, graph: FakeMsGraph) -> None:
    graph.deny()
    (line,) = failures(run(env(tmp_path, slack, arm), arm))
    assert line.startswith("FAIL  application permissions (executor): cannot read them through Microsoft Graph: "), line
    assert "403" in line


def test_a_defender_plan_left_off_is_a_failure_naming_it(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    """remediator sees nothing of resources whose Defender plan is off: the doctor says which, per subscription."""
    off = next(d for d in defender_plans(SUB, tier="Free") if d["name"] == "AI")
    arm.add(off)
    lines = failures(run(env(tmp_path, slack, arm), arm))
    assert lines == [f"FAIL  defender plans (/subscriptions/{SUB}): off: AI; Defender raises no alert for those "
                     "resources, so remediator sees nothing of them (the defender-enable-* playbooks plan each on, "
                     "with two approvers, when Defender or Azure Policy reports it)"]


@pytest.mark.parametrize(("export", "line"), [
    (None, "no continuous export to an Event Hub: Defender sends remediator nothing from this subscription"),
    ({"enabled": False}, "export ExportToEventHub to defender-export: DISABLED, sources Alerts, Assessments, "
                         "SubAssessments: Defender sends remediator nothing from this subscription"),
    ({"sources": ("Alerts",)}, "export ExportToEventHub to defender-export: enabled, sources Alerts; not exported: "
                               "Assessments, SubAssessments"),
    ({"hub": LOGS.replace("Microsoft.OperationalInsights/workspaces/law", "Microsoft.EventHub/namespaces/siem/"
                                                                            "eventhubs/siem")},
     "no continuous export to defender-export; the export sends to siem/siem instead: remediator receives nothing from "
     "this subscription"),
])
def test_a_continuous_export_missing_disabled_incomplete_or_elsewhere_is_a_failure_per_subscription(
        tmp_path: Path, slack: FakeSlack, export: dict[str, object] | None, line: str) -> None:
    """Next to the Defender plans: whether Defender still sends the subscription's findings to remediator's hub."""
    with FakeArm() as arm:
        arm.add_subscription(SUB, "prod")
        arm.assign_role(EXECUTOR, READER, f"/subscriptions/{SUB}")
        arm.assign_role(BROKER, RBAC_ADMIN, f"/subscriptions/{SUB}")
        arm.load(defender_plans(SUB))
        arm.load(definition_document(r, [f"/subscriptions/{SUB}"]) for r in CUSTOM_ROLES.values())
        if export is not None:
            arm.add(continuous_export(SUB, str(export.pop("hub", HUB)), **export))  # type: ignore[arg-type]
        checks = run(env(tmp_path, slack, arm), arm)
    assert failures(checks) == [f"FAIL  continuous export (/subscriptions/{SUB}): {line} (the daily reconcile raises "
                                "it; the defender-restore-export playbook puts it back)"]
    names = [c.name for c in checks]
    assert names.index(f"continuous export (/subscriptions/{SUB})") == \
        names.index(f"defender plans (/subscriptions/{SUB})") + 1


def test_without_the_hub_the_export_is_said_not_to_be_watched(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    checks = run(env(tmp_path, slack, arm, REMEDIATOR_EXPORT_EVENT_HUB_ID="-"), arm)
    (export,) = [c for c in checks if c.name.startswith("continuous export")]
    assert export.line().startswith("ok    continuous export: not watched: set REMEDIATOR_EXPORT_EVENT_HUB_ID")


def test_the_playbooks_waiting_for_an_unset_destination_are_named(tmp_path: Path, arm: FakeArm,
                                                                   slack: FakeSlack) -> None:
    """A storage archive or an Event Hub stream is the deployment's choice: unset, the doctor passes and says which
    playbooks refuse until it is set."""
    (check,) = [c for c in run(env(tmp_path, slack, arm), arm) if c.name == "log destination"]
    assert check.ok
    assert check.message.startswith("not set, so these playbooks refuse: REMEDIATOR_DIAGNOSTICS_EVENT_HUB_"
                                    "AUTHORIZATION_RULE_ID (diagnostics-all-logs-to-event-hub, "
                                    "diagnostics-audit-logs-to-event-hub); REMEDIATOR_DIAGNOSTICS_EVENT_HUB_NAME (")
    assert "REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID (diagnostics-all-logs-to-storage, " in check.message
    assert "\n" not in check.message


def test_the_log_destination_must_be_set_and_grantable(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    """Unset: every diagnostic-settings plan is refused. Set in a subscription where the broker may not grant:
    no write could use it (ARM checks it as a linked scope; the fix grants the executor there per write)."""
    assert failures(run(env(tmp_path, slack, arm, REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID="-"), arm)) == [
        "FAIL  log destination: set REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID (a Log Analytics workspace id) or "
        "REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID: without either every diagnostic-settings plan is refused"]
    elsewhere = LOGS.replace(SUB, "9d3f1c2e-0b4a-4e8f-a1d2-6c7b8e9f0a13")
    assert failures(run(env(tmp_path, slack, arm, REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID=elsewhere), arm)) == [
        f"FAIL  roles (broker, {elsewhere}): may not Microsoft.Authorization/roleAssignments/write, "
        "Microsoft.Authorization/roleAssignments/delete: extend its Role Based Access Control Administrator "
        "assignment to cover it: every diagnostic-setting write grants the executor Monitoring Contributor there "
        "(a linked scope of the write)"]


def test_a_custom_role_missing_or_not_assignable_is_a_failure_saying_how_to_create_it(
        tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    """The playbooks grant remediator's custom roles for Synapse, Databricks, App Service Environments and Storage
    Sync: each must exist at the subscription, be assignable there and hold the operations."""
    synapse, sync = CUSTOM_ROLES["synapse-workspace-settings"], CUSTOM_ROLES["storage-sync-network"]
    assert arm.remove(definition_id(synapse, SUB))
    arm.add(definition_document(sync, [f"/subscriptions/{SUB}/resourceGroups/rg-files"]))  # one group only
    lines = failures(run(env(tmp_path, slack, arm), arm))
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"FAIL  custom roles (/subscriptions/{SUB}): custom role 'remediator Storage Sync Network "
                           f"Writer' ({sync.id}, custom_roles.storage-sync-network) is not assignable at "
                           f"/subscriptions/{SUB}"), line
    assert (f"custom role 'remediator Synapse Workspace Settings Writer' ({synapse.id}, custom_roles.synapse-"
            f"workspace-settings) is not found at /subscriptions/{SUB}") in line
    assert "deploy infra/custom-roles.bicep" in line
    # the deployment maps Synapse to its own role, which exists: only storage sync is left
    own = synapse.mapped({synapse.key: "0c7a9e51-3f2b-4d6a-8e1c-5b9d2f4a6c8e"})
    arm.add(definition_document(own, [f"/subscriptions/{SUB}"]))
    values = env(tmp_path, slack, arm, REMEDIATOR_CUSTOM_ROLES=f"synapse-workspace-settings={own.id}")
    (line,) = failures(run(values, arm))
    assert "Storage Sync" in line, line
    assert "Synapse" not in line, line
    assert arm.writes == []


def test_the_bot_scopes_are_the_manifests() -> None:
    manifest = yaml.safe_load((ROOT / "slack" / "manifest.yaml").read_text(encoding="utf-8"))
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    assert FakeSlack().scopes == BOT_SCOPES  # the fake grants what a deployment made from the manifest has


@pytest.mark.parametrize(("extra", "expected"), [
    ({"SLACK_BOT_TOKEN": "-"}, "FAIL  settings: set SLACK_BOT_TOKEN (the Bot User OAuth Token, xoxb-…)"),
    ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN: not a bot token"),
    ({"REMEDIATOR_SLACK_CHANNEL": "-"}, "set REMEDIATOR_SLACK_CHANNEL"),
    ({"REMEDIATOR_MIN_QUORUM": "lots"}, "FAIL  settings: REMEDIATOR_MIN_QUORUM"),
    ({"REMEDIATOR_BROKER_CLIENT_ID": "-"}, "set REMEDIATOR_BROKER_CLIENT_ID"),
    ({"SLACK_BOT_TOKEN": "xoxb-wrong"}, "FAIL  slack token: http://127.0.0.1:"),
    ({"REMEDIATOR_SLACK_CHANNEL": "C0NOTJOINED"}, "the bot is not in it: /invite @remediator there"),
    ({"REMEDIATOR_SLACK_CHANNEL": "C0MISSING00"}, "FAIL  slack channel: C0MISSING00: the channel does not exist"),
    ({"REMEDIATOR_SLACK_TEAM_ID": "T0OTHER0001"}, "the token belongs to another workspace"),
    ({"REMEDIATOR_PLAYBOOKS_DIR": "/nonexistent/playbooks"}, "FAIL  playbooks: "),
    ({"REMEDIATOR_STORE_URL": "sqlite:////proc/version/r.db"}, "FAIL  store: sqlite:////proc/version/r.db: "),
    ({"REMEDIATOR_APPROVER_ROLES": f"security-oncall={ONCALL}"},
     "FAIL  approver roles: acr-rotate-credentials: approver role 'security-leads' is not mapped to anyone"),
    ({"REMEDIATOR_APPROVER_ROLES": f"security-oncall=S0NOSUCHGRP;security-leads={LEAD1},U0GONE00001;"
                                   f"platform-owners={ONCALL}"},
     "FAIL  slack approvers: user group S0NOSUCHGRP (approver_roles.security-oncall) is not an active group of "
     "this workspace; user U0GONE00001 (approver_roles.security-leads) is not in this workspace: fix "
     "REMEDIATOR_APPROVER_ROLES"),
])
def test_each_broken_setting_gives_a_useful_line(tmp_path: Path, arm: FakeArm, slack: FakeSlack,
                                                 extra: dict[str, str], expected: str) -> None:
    values = env(tmp_path, slack, arm, **extra)
    client = None
    if "SLACK_BOT_TOKEN" in extra and values.get("SLACK_BOT_TOKEN", "").startswith("xoxb-"):
        client = WebClient(token=values["SLACK_BOT_TOKEN"], base_url=slack.base_url)
    lines = failures(run(values, arm, slack_client=client))
    assert lines, "the broken setting was not noticed"
    assert any(expected in line for line in lines), lines
    if "xoxb-wrong" in extra.values():
        assert any("the token is not valid: copy the Bot User OAuth Token" in line for line in lines)


def test_missing_scope_names_it(tmp_path: Path, arm: FakeArm) -> None:
    with FakeSlack(team_id=TEAM, scopes=("chat:write", "commands", "channels:history", "groups:history"),
                   groups={ONCALL: MEMBERS}, users=(LEAD1, LEAD2, ADMIN)) as slack:
        lines = failures(run(env(tmp_path, slack, arm), arm))
    assert len(lines) == 2
    assert "missing scopes usergroups:read, users:read: add them under OAuth & Permissions" in lines[0]
    assert lines[1].startswith("FAIL  slack approvers: cannot list user groups: ")


def test_the_scopes_of_the_old_manifest_fail_on_the_channel_check(tmp_path: Path, arm: FakeArm) -> None:
    """The manifest used to grant chat:write, commands and usergroups:read, with which Slack refused the
    channel check (then conversations.info, missing_scope): doctor could not pass on a deployment made
    as documented. The check now needs the history scopes the manifest grants for the worker anyway."""
    with FakeSlack(team_id=TEAM, scopes=("chat:write", "commands", "usergroups:read", "users:read")) as slack:
        lines = failures(run(env(tmp_path, slack, arm), arm))
    assert any("FAIL  slack channel: C0REMEDIATE: the token lacks scope channels:history" in ln for ln in lines), lines
    with FakeSlack(team_id=TEAM, groups={ONCALL: MEMBERS}, users=(LEAD1, LEAD2, ADMIN)) as slack:  # the manifest's
        assert failures(run(env(tmp_path, slack, arm), arm)) == []


def test_a_private_approval_channel_needs_groups_history(tmp_path: Path, arm: FakeArm) -> None:
    with FakeSlack(team_id=TEAM, channels={"C0PRIVATE01": True}, private=["C0PRIVATE01"], groups={ONCALL: MEMBERS},
                   users=(LEAD1, LEAD2, ADMIN)) as slack:
        assert failures(run(env(tmp_path, slack, arm, REMEDIATOR_SLACK_CHANNEL="C0PRIVATE01"), arm)) == []
    with FakeSlack(team_id=TEAM, channels={"C0PRIVATE01": True}, private=["C0PRIVATE01"],
                   scopes=("chat:write", "commands", "usergroups:read", "channels:history")) as slack:
        lines = failures(run(env(tmp_path, slack, arm, REMEDIATOR_SLACK_CHANNEL="C0PRIVATE01"), arm))
    assert "FAIL  slack channel: C0PRIVATE01: the token lacks scope groups:history: add it under OAuth & Permissions " \
           "(slack/manifest.yaml has it) and reinstall the app" in lines, lines


def test_without_a_token_slack_is_not_called(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    checks = run(env(tmp_path, slack, arm, SLACK_BOT_TOKEN="-"), arm)
    assert slack.calls == []
    lines = failures(checks)
    assert "FAIL  settings: set SLACK_BOT_TOKEN (the Bot User OAuth Token, xoxb-…)" in lines
    assert "FAIL  slack token: not checked: SLACK_BOT_TOKEN is not set" in lines
    assert "FAIL  slack channel: not checked: SLACK_BOT_TOKEN is not set" in lines


def test_every_problem_at_once_one_line_each(tmp_path: Path, slack: FakeSlack) -> None:
    """A broken deployment: two malformed settings, two missing ones, no Reader for the executor.
    Every one is a line of the same run, and the checks that can still run do."""
    with FakeArm() as arm:
        arm.add_subscription(SUB)
        arm.assign_role(BROKER, RBAC_ADMIN, f"/subscriptions/{SUB}")
        values = env(tmp_path, slack, arm, REMEDIATOR_MIN_QUORUM="lots", REMEDIATOR_PIM_DURATION="forever",
                     REMEDIATOR_SLACK_CHANNEL="-", REMEDIATOR_EXECUTOR_PRINCIPAL_ID="-")
        checks = run(values, arm)
    lines = failures(checks)
    assert [ln.split(":")[0:2] for ln in lines[:4]] == [
        ["FAIL  settings", " REMEDIATOR_MIN_QUORUM"], ["FAIL  settings", " REMEDIATOR_PIM_DURATION"],
        ["FAIL  settings", " set REMEDIATOR_SLACK_CHANNEL (the approval channel's id, C…)"],
        ["FAIL  settings", " set REMEDIATOR_EXECUTOR_PRINCIPAL_ID (the executor identity's object id)"]], lines
    assert "FAIL  slack channel: not checked: REMEDIATOR_SLACK_CHANNEL is not set" in lines
    assert any(ln.startswith(f"FAIL  roles (executor, /subscriptions/{SUB}): may not ") for ln in lines), lines
    assert all("\n" not in c.message for c in checks)
    assert [c.name for c in checks if c.ok] == ["playbooks", "approver roles", "store", "quarantine", "slack token",
                                                "slack approvers", "arm (executor)", "arm (broker)",
                                                f"roles (broker, /subscriptions/{SUB})",
                                                f"pim role settings (/subscriptions/{SUB})", f"roles (broker, {LOGS})",
                                                "log destination"]


def test_a_long_arm_message_is_whole_and_said_once(tmp_path: Path, slack: FakeSlack) -> None:
    scope = f"/subscriptions/{SUB}/resourceGroups/" + "rg-with-a-rather-long-name-" * 30
    message = (f"The client '{EXECUTOR}' with object id '{EXECUTOR}' does not have authorization to perform action "
               f"'Microsoft.Authorization/permissions/read' over scope '{scope}' or the scope is invalid. If access "
               "was recently granted, please refresh your credentials.")
    with FakeArm() as arm:
        arm.add_subscription(SUB)
        arm.fail_next("GET", "/providers/Microsoft.Authorization/permissions", 403,
                      {"error": {"code": "AuthorizationFailed", "message": message}}, times=10)
        lines = failures(run(env(tmp_path, slack, arm), arm))
    line = next(ln for ln in lines if ln.startswith(f"FAIL  roles (executor, /subscriptions/{SUB})"))
    assert len(message) > 1000
    assert line.endswith(f"cannot read its permissions: 403 AuthorizationFailed: {message}")
    assert line.count("does not have authorization") == 1


def test_executor_without_reader_and_broker_without_rbac_admin(tmp_path: Path, slack: FakeSlack) -> None:
    with FakeArm() as arm:
        arm.add_subscription(SUB)
        lines = failures(run(env(tmp_path, slack, arm), arm))
    assert any(f"FAIL  roles (executor, /subscriptions/{SUB}): may not Microsoft." in ln and
               "assign it Reader at the subscription" in ln for ln in lines), lines
    assert any(f"FAIL  roles (broker, /subscriptions/{SUB}): may not Microsoft.Authorization/roleAssignments/write, "
               "Microsoft.Authorization/roleAssignments/delete: assign it Role Based Access Control Administrator"
               in ln for ln in lines), lines


def test_pim_activate_needs_eligibility_for_every_action_role(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    values = env(tmp_path, slack, arm, REMEDIATOR_ELEVATION="pim-activate", REMEDIATOR_BROKER_CLIENT_ID="-")
    lines = failures(run(values, arm, broker=None))
    assert len(lines) == 1
    assert "not eligible for " in lines[0]
    assert "Storage Account Contributor (17d1049b-9a84-46fb-8f53-869881c3d3ab)" in lines[0]
    roles = doctor.needed_roles(load_playbooks(ROOT / "playbooks"))
    for role in roles:
        arm.add_eligibility(EXECUTOR, role, f"/subscriptions/{SUB}")
    assert failures(run(values, arm, broker=None)) == []


def test_standing_needs_the_roles_themselves(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    values = env(tmp_path, slack, arm, REMEDIATOR_ELEVATION="standing", REMEDIATOR_BROKER_CLIENT_ID="-")
    line, destination = failures(run(values, arm, broker=None))
    assert "elevation is standing but it lacks" in line
    assert destination == (f"FAIL  roles (executor, {LOGS}): may not Microsoft.OperationalInsights/workspaces/"
                           "sharedKeys/action: assign it Monitoring Contributor there: ARM checks this on the "
                           "destination of every diagnostic-setting write (a linked scope)")
    for role in doctor.needed_roles(load_playbooks(ROOT / "playbooks")):
        arm.assign_role(EXECUTOR, role, f"/subscriptions/{SUB}")
    assert failures(run(values, arm, broker=None)) == []


def test_azure_store_on_azurite(tmp_path: Path, arm: FakeArm, slack: FakeSlack,
                                azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("REMEDIATOR_STORAGE_CONNECTION", azurite_connection_string)
    fresh = next(c for c in run(env(tmp_path, slack, arm, REMEDIATOR_STORE_URL="azure://doctornew"), arm)
                 if c.name == "store")
    assert fresh.ok, fresh.message
    assert "its tables are not created yet (the app creates them on first start)" in fresh.message
    open_store("azure://doctor", connection_string=azurite_connection_string).close()  # the app's first start
    checks = run(env(tmp_path, slack, arm, REMEDIATOR_STORE_URL="azure://doctor"), arm)
    store = next(c for c in checks if c.name == "store")
    assert store.ok, store.message
    assert "tables and queues doctor-jobs, doctor-jobs-urgent answer" in store.message
    key = azurite_connection_string.split("AccountKey=")[1].split(";", maxsplit=1)[0]
    monkeypatch.setenv("REMEDIATOR_STORAGE_CONNECTION", azurite_connection_string.replace(key, "d3Jvbmcga2V5" * 7))
    broken = next(c for c in run(env(tmp_path, slack, arm, REMEDIATOR_STORE_URL="azure://doctor"), arm)
                  if c.name == "store")
    assert not broken.ok
    assert broken.message.startswith("azure://doctor: ")


def test_a_preflight_creates_no_store(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    store = next(c for c in run(env(tmp_path, slack, arm), arm) if c.name == "store")
    assert store.ok
    assert store.message.endswith(f"not created yet; the app creates it on first start (in {tmp_path}, writable)")
    assert not (tmp_path / "r.db").exists()
    open_store(f"sqlite:///{tmp_path / 'r.db'}").close()
    store = next(c for c in run(env(tmp_path, slack, arm), arm) if c.name == "store")
    assert store.message == f"sqlite:///{tmp_path / 'r.db'}: reads"


def test_an_unreachable_arm_endpoint_names_it(tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    from remediator.azure.clients import ArmClients
    from remediator.testing import FakeCredential

    values = env(tmp_path, slack, arm, REMEDIATOR_ARM_ENDPOINT="http://127.0.0.1:9")
    _, settings = doctor.check_settings(lambda: load_settings(values))
    assert settings is not None
    dead = ArmClients(FakeCredential("t"), base_url="http://127.0.0.1:9", retry_total=0)
    checks, seen = doctor.check_arm(settings, [doctor.Identity(name="executor", clients=dead)])
    assert seen == {}
    [line] = [c.line() for c in checks]
    assert line.startswith("FAIL  arm (executor): http://127.0.0.1:9: ")
    assert "check REMEDIATOR_ARM_ENDPOINT, REMEDIATOR_AUTHORITY_HOST and the executor identity" in line


def test_cli_prints_one_line_per_check_and_exits_1_on_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                slack: FakeSlack) -> None:
    for k in ("SLACK_BOT_TOKEN", "REMEDIATOR_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("REMEDIATOR_SLACK_API_URL", slack.base_url)  # not slack.com: no network, no retry wait
    out = io.StringIO()
    assert cli.main(["doctor"], out=out) == 1
    assert out.getvalue().splitlines()[0].startswith("FAIL  settings: set SLACK_BOT_TOKEN")
    config = tmp_path / "c.yaml"
    config.write_text("min_quorum: nine\n", encoding="utf-8")
    out = io.StringIO()
    assert cli.main(["doctor", "--config", str(config)], out=out) == 1
    assert out.getvalue().startswith("FAIL  settings: ")
    assert "Traceback" not in out.getvalue()


def test_render_summarises() -> None:
    checks = [doctor.Check(name="a", ok=True, message="fine"), doctor.Check(name="b", ok=False, message="fix it")]
    assert doctor.render(checks) == "ok    a: fine\nFAIL  b: fix it\n1 of 2 checks failed\n"
    assert doctor.render(checks[:1]).endswith("all checks passed\n")



def test_private_link_settings_each_subnet_and_zone_exists_and_the_broker_may_grant_on_it(
        tmp_path: Path, arm: FakeArm, slack: FakeSlack) -> None:
    live_sub = "6a2f1c3e-9b4d-4e1a-8c7f-2d5e8b9a0c41"
    arm.load(live_documents())
    arm.load(defender_plans(live_sub))
    arm.add(continuous_export(live_sub, HUB))
    arm.load(definition_document(r, [f"/subscriptions/{SUB}", f"/subscriptions/{live_sub}"])
             for r in CUSTOM_ROLES.values())  # assignable at both subscriptions
    arm.assign_role(EXECUTOR, READER, f"/subscriptions/{live_sub}")
    subnet = (f"/subscriptions/{live_sub}/resourceGroups/rg-hub-network/providers/Microsoft.Network/virtualNetworks/"
              "vnet-hub-weu/subnets/snet-private-endpoints")
    zones = f"/subscriptions/{live_sub}/resourceGroups/rg-private-dns/providers/Microsoft.Network/privateDnsZones"
    gone = f"/subscriptions/{live_sub}/resourceGroups/rg-elsewhere/providers/Microsoft.Network/privateDnsZones/" \
           "privatelink.vaultcore.azure.net"
    values = env(tmp_path, slack, arm, REMEDIATOR_PRIVATE_LINK_SUBNETS=f"westeurope={subnet}",
                 REMEDIATOR_PRIVATE_DNS_ZONES=f"privatelink.openai.azure.com={zones}/privatelink.openai.azure.com;"
                                              f"privatelink.vaultcore.azure.net={gone}")
    lines = failures(run(values, arm))
    # the broker holds its role on the other subscription only: it may not grant on the live one
    assert lines == [
        f"FAIL  roles (broker, /subscriptions/{live_sub}): may not Microsoft.Authorization/roleAssignments/write, "
        "Microsoft.Authorization/roleAssignments/delete: assign it Role Based Access Control Administrator at the "
        "subscription (infra/subscription-roles.bicep, with its ABAC condition)",
        "FAIL  private link (private_link_subnets.westeurope): subnet exists; broker may not "
        "Microsoft.Authorization/roleAssignments/write, Microsoft.Authorization/roleAssignments/delete: the broker "
        "cannot grant on this subnet; extend its Role Based Access Control Administrator assignment to cover it",
        "FAIL  private link (private_dns_zones.privatelink.openai.azure.com): zone exists; broker may not "
        "Microsoft.Authorization/roleAssignments/write, Microsoft.Authorization/roleAssignments/delete: the broker "
        "cannot grant on this zone; extend its Role Based Access Control Administrator assignment to cover it",
        f"FAIL  private link (private_dns_zones.privatelink.vaultcore.azure.net): {gone} not found (or not readable "
        "by the executor): fix the zone id in the settings"]
    arm.assign_role(BROKER, RBAC_ADMIN, f"/subscriptions/{live_sub}")
    assert failures(run(values, arm)) == [lines[-1]]


def test_pim_role_settings_name_activation_and_refuse_a_longer_eligibility(tmp_path: Path, arm: FakeArm,
                                                                           slack: FakeSlack) -> None:
    arm.pim.set_policy(f"/subscriptions/{SUB}", "b24988ac-6180-42a0-ab88-20f7382dd24c", approval=True,
                       approvers=("ml-leads",), max_activation="PT2H", max_eligibility="P180D")
    checks = run(env(tmp_path, slack, arm), arm)
    (pim,) = [c for c in checks if c.name == f"pim role settings (/subscriptions/{SUB})"]
    assert not pim.ok
    assert pim.message == ("rbac-make-ai-access-eligible: duration P365D is longer than Contributor's eligibility "
                           "maximum P180D")


def test_names_check_reads_the_executor_from_microsoft_graph() -> None:
    from dataclasses import replace

    from remediator.config.settings import Settings
    from remediator.testing import FakeMsGraph

    settings = Settings(executor_principal_id=EXECUTOR)
    with FakeMsGraph() as graph:
        graph.add_service_principal("id-remediator-executor", managed_identity=True, object_id=EXECUTOR)
        ok = doctor.check_names(settings, graph.client())
        assert ok.ok, ok.message
        assert ok.message == f"Microsoft Graph at {graph.base_url} names principals (the executor is " \
                             "id-remediator-executor)"
        unknown = doctor.check_names(replace(settings, executor_principal_id=BROKER), graph.client())
        assert not unknown.ok
        assert f"does not name the executor {BROKER}" in unknown.message
        graph.deny()
        denied = doctor.check_names(settings, graph.client())
        assert not denied.ok
        assert "403 Authorization_RequestDenied" in denied.message
        assert "Directory.Read.All" in denied.message
    off = doctor.check_names(replace(settings, graph_endpoint="off"), None)
    assert (off.ok, off.message) == (True, "principals are shown by object id only (graph_endpoint is off)")
