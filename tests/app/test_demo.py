"""``remediator demo`` as a newcomer runs it (the real CLI entry): the shipped samples, the AI estate
among them, are planned, asked, approved (quorum 2 where the playbook says so), applied under PIM
grants on the simulated ARM and audited, and every step reads on one screen."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from remediator.app.cli import main

AI_ESTATE = {
    "cognitive.restrict-network-access": "contoso-openai",
    "keyvault.enable-purge-protection": "contoso-model-keys",
    "disks.revoke-export-access": "llm-weights-disk",
    "disks.restrict-network-access": "llm-weights-disk",
    "acr.disable-anonymous-pull": "contosomodels",
    "policy.limit-exemption": "exempt-openai-network",
}
SCREEN = 60  # lines: a step of the demo reads without scrolling back
WIDE = 160  # columns: no line of 400 characters wrapping over five


def demo(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(["demo", *argv], out=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def steps(text: str) -> dict[int, list[str]]:
    """The output of each numbered step, by number (its heading line left out)."""
    parts = re.split(r"^=== (\d)\. .*$", text, flags=re.MULTILINE)
    return {int(n): body.strip("\n").splitlines() for n, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "demo.db"


@pytest.fixture(scope="module")
def output(store: Path) -> str:
    code, text = demo("--approve-all", "--store", str(store))
    assert code == 0, text
    return text


@pytest.fixture(scope="module")
def rems(store: Path, output: str) -> dict[str, dict[str, str]]:
    """Each remediation's id and playbook, from the long-form trail of the store the demo kept."""
    out = io.StringIO()
    assert main(["audit", "--store", str(store), "--output", "json"], out=out) == 0
    found: dict[str, dict[str, str]] = {}
    for e in json.loads(out.getvalue())["events"]:
        if e["detail"].get("playbook"):
            found.setdefault(e["remediation_id"], {"playbook": e["detail"]["playbook"]})
    return found


def test_each_step_fits_a_screen_and_no_line_wraps_over_several(output: str) -> None:
    by_step = steps(output)
    assert sorted(by_step) == [1, 2, 3, 4, 5, 6]
    for n, lines in by_step.items():
        assert len(lines) <= SCREEN, f"step {n}: {len(lines)} lines"
    too_wide = [line for line in output.splitlines() if len(line) > WIDE]
    assert too_wide == []
    assert len(output.splitlines()) < 200  # it was 491, 280 of them audit lines of ~400 characters


def test_the_dry_run_is_one_line_per_record_and_says_where_the_full_diff_is(output: str) -> None:
    dry_run = steps(output)[1]
    records = [line for line in dry_run if re.match(r"  [~=·+!-] ", line)]
    assert len(records) == 14  # the 14 sample records
    for name in set(AI_ESTATE.values()):
        assert any(name in line for line in dry_run), name
    # the private-link fix of contoso-openai-chat adds 1 to change (public access closed) and 2 to create (the
    # private endpoint and its DNS zone group)
    assert "Plan: 12 to change, 4 to delete, 2 to create, 1 to invoke." in dry_run
    assert any(line.startswith("Every property of every change: remediator plan ") for line in dry_run)


def test_requests_show_the_change_in_words_not_a_pseudo_value(output: str) -> None:
    asked = "\n".join(steps(output)[2])
    assert "not ActiveSAS" not in output
    assert re.search(r"! llm-weights-disk/endGetAccess: end the active export of disk llm-weights-disk", asked)
    assert "IRREVERSIBLE: purge protection cannot be turned off" in asked  # said before anyone approves
    assert "~ contoso-model-keys: enablePurgeProtection: (not set) -> true" in asked
    assert not re.search(r"\b1 changes\b", output)


def test_every_approval_line_names_its_request(output: str, rems: dict[str, dict[str, str]]) -> None:
    approvals = [line for line in steps(output)[4] if line.strip()]
    # 8 requests with one approver (the jailbreak's content filter and the restored export among them), 5 with two
    # (private-link among them: it costs money)
    assert len(approvals) == 18
    short = {rid[:8]: info["playbook"] for rid, info in rems.items()}
    for line in approvals:
        sid, playbook = line.split()[:2]
        assert short.get(sid) == playbook, line


def test_a_vote_short_of_the_quorum_waits_for_others_not_for_the_voter(output: str) -> None:
    waiting = [line for line in steps(output)[4] if "waiting for 1 more" in line]
    assert len(waiting) == 5  # purge protection, disk export, exemption, the blocked owner's roles, private link
    for line in waiting:
        voter = line.split(" · ")[1].split(":")[0]
        assert f"@{voter}" not in line.split("waiting for", 1)[1], line


def test_one_update_per_request_state(output: str) -> None:
    updates = [line for line in steps(output)[5] if line.startswith("[Update] ")]
    # applied, for each of the 13 asked (that it was approved, the approval's own line in step 4 said)
    assert len(updates) == len(set(updates)) == 13
    assert all(line.endswith(": applied") for line in updates)


def test_the_brief_trail_shows_each_write_inside_its_grant(output: str) -> None:
    trail = steps(output)[6]
    for action, name in AI_ESTATE.items():
        kind = {"disks.revoke-export-access": "invoke"}.get(action, "update")
        target = f"{name}/endGetAccess" if kind == "invoke" else name
        assert any(re.search(rf"granted .+ → {kind} {re.escape(target)} → released → verified$", line)
                   for line in trail), action
    assert any("granted Key Vault Contributor → update contoso-model-keys → released → verified" in line
               for line in trail)
    quorum = re.compile(r"asked → (\S+) approved → (\S+) approved → applying → applied$")
    two = [m for line in trail if (m := quorum.search(line))]
    assert len(two) == 5  # the quorum-2 requests: two different people, in the order they clicked
    assert all(m.group(1) != m.group(2) for m in two)
    assert trail[-1].startswith("Every field of every event: remediator audit --store ")


def test_the_long_form_stays_in_remediator_audit(store: Path, output: str) -> None:
    out = io.StringIO()
    assert main(["audit", "--store", str(store)], out=out) == 0
    kinds = [line.split()[2] for line in out.getvalue().splitlines()]
    # one grant per write, but the private endpoint's three (subnet, resource group, account) and its zone
    # group's two (endpoint, zone), and the jailbreak's content filter and deployment, the restored export: 22 writes,
    # 25 grants, each released
    assert kinds.count("change_applied") == 22
    assert kinds.count("elevated") == kinds.count("released") == 25


def test_audit_brief_prints_the_demos_short_trail(store: Path, output: str) -> None:
    out = io.StringIO()
    assert main(["audit", "--store", str(store), "--brief"], out=out) == 0
    assert out.getvalue().splitlines() == steps(output)[6][:-1]  # the demo's step 6, less its pointer line


def test_two_fixes_of_one_account_both_apply_without_a_stale_reask(output: str) -> None:
    """The OpenAI account's firewall and its key access are fixed by two playbooks approved together:
    the first write moves the document, but not what the second one writes or overwrites, so the
    second approval still holds (the fingerprint binds to the write, not to the whole document)."""
    applied = [line for line in steps(output)[5] if line.startswith("  ↳ [applied]") and " contoso-openai:" in line
               and "ai-alert" not in line]
    assert len(applied) == 2
    assert "stale" not in output


# -- the prompt ---------------------------------------------------------------------------------------


def test_a_typo_or_a_bare_enter_asks_again_and_never_skips_silently() -> None:
    code, out = demo(stdin="\nyes\nx\na\nR\nskip\n")
    assert code == 0, out
    asked = steps(out)[4]
    prompts = [line for line in asked if "[a]pprove, [r]eject or [s]kip?" in line]
    first = prompts[0].split(":")[0]
    assert [p.split(":")[0] for p in prompts[:4]] == [first] * 4  # asked again after "", "yes" and "x"
    assert "  (nothing): please answer a (approve), r (reject) or s (skip)" in asked
    assert "  yes: please answer a (approve), r (reject) or s (skip)" in asked
    assert any(line.startswith(f"  {first}") and "Approved by" in line for line in asked)
    assert any("Rejected" in line for line in asked)  # "R": answers are not case-sensitive
    assert any(line.endswith(": skipped, still pending") for line in asked)
    assert "  (end of input: 10 requests left pending)" in asked
    # the skipped one and the 10 never answered are pending
    assert "remediations: 2 applied, 1 exempt, 11 pending approval, 1 rejected" in "\n".join(steps(out)[5])


def test_end_of_input_at_the_first_prompt_leaves_everything_pending() -> None:
    code, out = demo(stdin="")
    assert code == 0, out
    assert "  (end of input: 13 requests left pending)" in steps(out)[4]
    assert "remediations: 1 applied, 1 exempt, 13 pending approval" in "\n".join(steps(out)[5])


# -- the AI estate's Private Link: contoso-openai-chat moved behind a private endpoint ----------------------

PRIVATE = "contoso-openai-chat"


def test_the_plan_builds_the_private_path_and_says_what_breaks(output: str) -> None:
    """The request asks once for the whole path, in order: the endpoint in the hub's subnet (group id
    ``account``), its DNS zone group in the central zone, then public access closed; under the closing, who
    loses access, that it waits for the endpoint, and that the zone must be linked to the clients' VNets."""
    dry = [line for line in steps(output)[1] if f" {PRIVATE} " in line]
    assert len(dry) == 1
    assert "private-link" in dry[0]
    assert "3 changes (create, update)" in dry[0]
    asked = steps(output)[2]
    start = next(i for i, line in enumerate(asked) if line.startswith("[Approval needed]") and PRIVATE in line)
    end = next(i for i in range(start, len(asked)) if asked[i].startswith("  needs: "))
    request = asked[start:end + 1]
    assert request[2:] == [
        "  + pe-contoso-openai-chat-account: private endpoint, group account, in subnet "
        "vnet-hub-swc/snet-private-endpoints (swedencentral), connection auto-approved",
        "    COSTS MONEY: billed per hour and per GB processed while it exists "
        "(https://azure.microsoft.com/pricing/details/private-link/)",
        "  + pe-contoso-openai-chat-account/default: DNS zone group of the endpoint: A records for contoso-openai-chat "
        "in privatelink.openai.azure.com",
        '  ~ contoso-openai-chat: publicNetworkAccess: "Enabled" -> "Disabled"',
        "    can break: clients not resolving the private zones to the endpoint (the Internet, IP rules, service "
        "endpoints, VNets without a zone link) lose access",
        "    only after the private endpoint verifies (connection Approved, provisioning Succeeded)",
        "    the zones (privatelink.openai.azure.com) must be linked to the clients' virtual networks "
        "(virtualNetworkLinks), or their DNS must forward to them",
        "  needs: 0 of 2 approvals from @S0DEMOSECOP",
    ]


def test_two_approvals_as_the_playbook_says_then_grants_at_each_scope(output: str) -> None:
    from remediator.app.paths import SHIPPED_PLAYBOOKS
    from remediator.playbooks import load_playbooks

    (playbook,) = [p for p in load_playbooks(SHIPPED_PLAYBOOKS) if p.name == "private-link"]
    votes = [line for line in steps(output)[4] if f"private-link {PRIVATE} · " in line]
    assert len(votes) == playbook.approval.quorum == 2  # a private endpoint costs money: two people decide
    assert votes[-1].endswith(": Approved by @U0DEMOALIC1, @U0DEMOBOB01: applying now")
    assert any(line.endswith(f"private-link {PRIVATE}: Applied and verified: 3 changes.  (Undo available)")
               for line in steps(output)[5])
    trail = steps(output)[6]
    start = next(i for i, line in enumerate(trail) if f"private-link {PRIVATE}: " in line)
    assert trail[start].endswith(": asked → U0DEMOALIC1 approved → U0DEMOBOB01 approved → applying → applied")
    assert trail[start + 1:start + 6] == [
        "      granted Network Contributor on snet-private-endpoints and resource group rg-ai-prod, "
        "Cognitive Services Contributor on contoso-openai-chat",
        "        → create pe-contoso-openai-chat-account → 3 released → verified",
        "      granted Network Contributor on pe-contoso-openai-chat-account, Private DNS Zone Contributor on "
        "privatelink.openai.azure.com",
        "        → create pe-contoso-openai-chat-account/default → 2 released → verified",
        "      granted Cognitive Services Contributor → update contoso-openai-chat → released → verified",
    ]


def test_the_dry_runs_pointer_plans_the_same_path_offline(output: str) -> None:
    """The command step 1 names (with the demo's settings file) prints every property of the same plan."""
    from remediator.app.demo import DEMO_SETTINGS
    from remediator.app.paths import SAMPLES

    out = io.StringIO()
    code = main(["plan", str(SAMPLES / "findings" / "14-openai-private-link-assessment.json"),
                 "--resources", str(SAMPLES / "state"), "--config", str(DEMO_SETTINGS)], out=out)
    assert code == 2, out.getvalue()  # Terraform's exit code: changes are planned
    text = out.getvalue()
    assert "+ create /subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-ai-prod/providers/" \
           "Microsoft.Network/privateEndpoints/pe-contoso-openai-chat-account " in text
    assert 'properties.privateLinkServiceConnections[name=contoso-openai-chat-account].properties.groupIds: ' \
           '["account"]' in text
    assert "privateDnsZones/privatelink.openai.azure.com" in text
    assert "Plan: 1 to change, 0 to delete, 2 to create, 0 to invoke." in text
    pointer = steps(output)[1][-2:]
    assert pointer[0].endswith(" \\")  # a shell line, continued
    assert pointer[1].startswith("    --config ")
    assert pointer[1].split()[-1].endswith("settings.yaml")


# -- later: a jailbreak attempt, and the deleted export ------------------------------------------------------


def test_the_jailbreak_attempt_is_answered_and_its_prompt_never_shown(output: str, store: Path) -> None:
    later = steps(output)[3]
    assert later[0] == ("  Defender's export brings: AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt on "
                        "contoso-openai (its prompt text is withheld: never copied)")
    start = next(i for i, line in enumerate(later) if "ai-alert-block-prompt-attacks contoso-openai" in line)
    assert later[start + 2].startswith("  + contoso-openai/remediator-gpt-4o-reco: new content filter")
    assert later[start + 3].startswith("  ~ contoso-openai/gpt-4o-reco: raiPolicyName: ")
    assert any(line.endswith("ai-alert-block-prompt-attacks contoso-openai: Applied and verified: 2 changes.  "
                             "(Undo available)") for line in steps(output)[5])
    audit = io.StringIO()
    assert main(["audit", "--store", str(store), "--output", "json"], out=audit) == 0
    for text in (output, audit.getvalue()):
        assert "PROMPT-CANARY" not in text
        assert "COMPLETION-CANARY" not in text


def test_the_deleted_export_is_found_by_the_reconcile_and_restored(output: str) -> None:
    later = steps(output)[3]
    assert later[1:3] == [
        "  someone deletes continuous export ExportToEventHub: Defender stops sending remediator anything",
        "  daily reconcile: the continuous export of subscription 3f5e6c1a… is missing: a finding"]
    start = next(i for i, line in enumerate(later) if "defender-restore-export" in line)
    assert later[start + 1] == ("  finding: Defender continuous export to remediator's Event Hub is missing "
                                "(severity High)")
    assert later[start + 2].startswith("  + remediator-export: create continuous export remediator-export in "
                                       "rg-security: Alerts, Assessments, SubAssessments to defender-export as a "
                                       "trusted service")
    assert any(line.endswith("defender-restore-export subscription 3f5e6c1a…: Applied and verified: 1 change.  "
                             "(Undo available)") for line in steps(output)[5])
    assert any(line.endswith("granted Security Admin on resource group rg-security → create remediator-export → "
                             "released → verified") for line in steps(output)[6])
def test_names_stand_beside_ids_in_every_step(output: str) -> None:
    """The estate's principals (the simulated Graph, seeded from samples/directory.json) and the built-in
    policies (the catalog) read ``name (id)``: the revoked owner, the exemption's writer, each policy."""
    by_step = steps(output)
    asked = "\n".join(by_step[2])
    assert "revoke Owner of Casey Morgan (left 2026-10) · casey.morgan@contoso.com (9d2c5e7f-" in asked
    assert "policyexemptions/write on exempt-openai-network by Sam Patel · sam.patel@contoso.com" in asked
    assert "Azure Policy non-compliance: Key vaults should have deletion protection enabled (0b60c0b2-" in asked
    assert "warning" not in output


@pytest.mark.slow(reason="runs the whole demo a second time, with the simulated Microsoft Graph down")
def test_with_graph_unreachable_the_same_run_shows_ids_and_one_warning() -> None:
    code, text = demo("--approve-all", "--graph-unreachable")
    assert code == 0, text
    assert "revoke Owner of 9d2c5e7f-1a3b-4c6d-8e0f-2b4d6f8a0c1e at /subscriptions/" in text
    assert "Casey Morgan" not in text
    assert "Sam Patel" not in text
    warned = [line for line in text.splitlines() if "warning" in line.lower()]
    assert len(warned) == 1, warned
    assert warned[0].startswith("warning: principal names not read (Microsoft Graph at http://127.0.0.1:")
    assert warned[0].endswith("; ids shown")
    assert "Key vaults should have deletion protection enabled (0b60c0b2-" in text  # the catalog needs no Graph
