"""Block Kit rendering: limits (checked by slack_sdk's own validators), escaping, folding, states."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot import blocks
from remediator.lifecycle.model import STATES
from tests.bot.conftest import NSG, VM, make_remediation, nsg, rule, vote
from tests.bot.world import text_objects

HOSTILE = "<!channel> pwned <http://evil.example|Approve here> & <@U0VICTIM> <!subteam^S0ALL> `code` *bold*"
# tokens Slack would act on in mrkdwn: only these shapes may appear (all built by us)
ALLOWED_TOKEN = re.compile(
    r"<https://portal\.azure\.com/#@/resource/subscriptions/[^|<>\s]+\|[^<>]+>"
    r"|<@[UW][A-Z0-9]+>|<!subteam\^S[A-Z0-9]+>|<!date\^\d+\^[^|<>]+\|[^<>]+>"
)


def validate_message(rendered: blocks.Rendered) -> None:
    """What Slack would check: slack_sdk's validators on every block, and the 50-block cap."""
    assert 0 < len(rendered.blocks) <= 50
    for b in rendered.blocks:
        parsed = Block.parse(b)
        assert parsed is not None
        parsed.to_dict()  # runs the validators of the block and everything in it
    ids_ = [b.get("block_id") for b in rendered.blocks if b.get("block_id")]
    assert len(ids_) == len(set(ids_)), "block ids must be unique within a message"
    json.dumps(rendered.blocks)


def validate_view(view: dict[str, Any]) -> None:
    View(**dict(view.items())).to_dict()
    for b in view["blocks"]:
        parsed = Block.parse(b)
        assert parsed is not None
        parsed.to_dict()


def assert_no_injection(payload: Any) -> None:
    """No mrkdwn object carries a control sequence we did not build, and all are verbatim."""
    for obj in text_objects(payload):
        if obj["type"] != "mrkdwn":
            continue
        assert obj.get("verbatim") is True
        leftover = ALLOWED_TOKEN.sub("", obj["text"])
        assert "<" not in leftover, obj["text"]
        assert ">" not in leftover, obj["text"]


def test_approval_message_layout_and_limits() -> None:
    rem = make_remediation()
    msg = blocks.approval_message(rem, "1 of 1 approval from <!subteam^S0SECONCALL>")
    validate_message(msg)
    kinds = [b["type"] for b in msg.blocks]
    assert kinds == ["header", "section", "section", "section", "context", "actions", "context"]
    header, facts, about, plan, needs, actions, ref = msg.blocks
    assert header["text"] == {"type": "plain_text", "text": rem.finding["title"], "emoji": False}
    fields = "\n".join(f["text"] for f in facts["fields"])
    assert "*Severity*\nMedium" in fields
    assert "*Risk*\nmedium" in fields
    assert "`nsg-close-management-ports`" in fields
    assert f"<https://portal.azure.com/#@/resource{VM}|vm-jump-01>" in fields
    assert about["text"]["type"] == "plain_text"
    assert "- properties.securityRules[name=allow-ssh].name: &quot;" not in plan["text"]["text"]
    assert '- properties.securityRules[name=allow-ssh].properties.destinationPortRange: "22"' in plan["text"]["text"]
    assert "~ update networkSecurityGroups nsg-jump  [network.restrict-inbound]" in plan["text"]["text"]
    assert "# close 22 to the Internet" in plan["text"]["text"]
    needs_text = needs["elements"][0]["text"]
    assert needs_text.startswith(":busts_in_silhouette: Needs 1 of 1 approval from <!subteam^S0SECONCALL>")
    assert "expires <!date^" in needs["elements"][0]["text"]
    approve, reject = actions["elements"]
    assert (approve["action_id"], approve["value"], approve["style"]) == (blocks.ACTION_APPROVE, rem.id, "primary")
    assert approve["confirm"]["confirm"]["text"] == "Approve"
    assert (reject["action_id"], reject["value"], reject["style"]) == (blocks.ACTION_REJECT, rem.id, "danger")
    assert f"`{rem.id}`" in ref["elements"][0]["text"]
    assert msg.text.startswith("Approval needed: Management ports should be closed")
    assert_no_injection(msg.blocks)


def test_untrusted_strings_render_as_text() -> None:
    bad_rule = rule(HOSTILE, "22")
    rem = make_remediation(
        finding={"title": HOSTILE, "severity": "High<!here>", "description": HOSTILE, "resource_id": VM},
        playbook="pb`<!everyone>",
        risk="<!channel>",
        changes=[{"action": "x", "resource_id": NSG, "operation": "update", "note": HOSTILE,
                  "before": nsg(bad_rule, {"name": "t", "tags": {"owner": HOSTILE}}),
                  "after": nsg({"name": "t", "tags": {"owner": "```<!channel>```"}})}],
        error=HOSTILE,
        votes=[vote("<!channel>"), vote("U0ALICE")],
    )
    for state in STATES:
        r = replace(rem, state=state)
        msg = blocks.approval_message(r, "1 of 2 approvals from <@U0ALICE>, " + HOSTILE)
        validate_message(msg)
        assert_no_injection(msg.blocks)
        assert "<" not in msg.text
        assert ">" not in msg.text
        flat = json.dumps(msg.blocks)
        assert "&lt;!channel&gt;" in flat
        # plain_text may hold the raw text (Slack never parses it)
        for obj in text_objects(msg.blocks):
            if obj["type"] == "plain_text":
                assert obj.get("emoji") is not True or "<" not in obj["text"]
    # the requirement keeps real mentions, escapes the rest
    needs = blocks.requirement_text(rem, "1 of 2 approvals from <@U0ALICE>, " + HOSTILE)
    assert "<@U0ALICE>" in needs
    assert "&lt;!channel&gt;" in needs
    assert "&lt;http://evil.example|Approve here&gt;" in needs
    # the vote from a malformed user id is text, not a mention
    assert "&lt;!channel&gt;" in (blocks.status_line(replace(rem, state="approved")) or "")
    # the plan code block cannot be closed early
    plan, _ = blocks.plan_section(rem)
    assert plan["text"]["text"].count("```") == 2


def test_portal_link_only_from_an_arm_id_and_percent_encoded() -> None:
    assert blocks.portal_url(VM) == f"https://portal.azure.com/#@/resource{VM}"
    weird = f"/subscriptions/{'s'}/resourceGroups/rg/providers/Microsoft.X/y/a|b><!channel> c"
    url = blocks.portal_url(weird)
    assert url is not None
    assert all(ch not in url for ch in "|<> ")
    link = blocks.resource_link(weird)
    assert ALLOWED_TOKEN.fullmatch(link), link
    assert blocks.portal_url("http://evil.example/x") is None
    assert blocks.resource_link("https://evil.example/<x>") == "https://evil.example/&lt;x&gt;"


def test_a_long_plan_is_folded_with_a_show_full_plan_button_and_a_modal() -> None:
    rules = [rule(f"rule-{i:03d}-" + "x" * 40, str(1000 + i)) for i in range(300)]
    rem = make_remediation(changes=[{"action": "network.restrict-inbound", "resource_id": NSG, "operation": "update",
                                     "before": nsg(*rules), "after": nsg()}])
    msg = blocks.approval_message(rem, "1 of 1 approval from <!subteam^S0SECONCALL>")
    validate_message(msg)
    plan = next(b for b in msg.blocks if b["block_id"].startswith("plan."))
    assert len(plan["text"]["text"]) <= 3000
    assert plan["text"]["text"].count("\n") <= blocks.PLAN_FOLD_LINES + 4
    assert "more lines: use *Show full plan*" in plan["text"]["text"]
    actions = next(b for b in msg.blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        blocks.ACTION_APPROVE, blocks.ACTION_REJECT, blocks.ACTION_SHOW_PLAN]
    modal = blocks.plan_modal(rem)
    validate_view(modal)
    shown = "\n".join(b["text"]["text"] for b in modal["blocks"][1:] if b["type"] == "section")
    for line in blocks.plan_lines(rem.changes):
        assert blocks.esc(line) in shown
    # a short plan is not folded
    short = blocks.approval_message(make_remediation(), "")
    assert blocks.ACTION_SHOW_PLAN not in json.dumps(short.blocks)


def test_huge_inputs_stay_within_limits() -> None:
    huge = "&<>" * 5000
    rules = [rule("r" * 3000 + str(i), "22") for i in range(60)]
    rem = make_remediation(
        id="r" * 200,
        finding={"title": huge, "severity": huge, "description": huge, "resource_id": VM},
        playbook="p" * 3000, risk=huge, resource_id=VM + "/" + "n" * 3000,
        changes=[{"action": "a" * 500, "resource_id": NSG, "operation": "update",
                  "before": nsg(*rules), "after": nsg()}] * 5,
        error=huge, state="failed",
    )
    msg = blocks.approval_message(rem, huge)
    validate_message(msg)
    header = msg.blocks[0]
    assert len(header["text"]["text"]) <= 150
    assert len(msg.text) <= blocks.FALLBACK_TEXT_MAX
    validate_view(blocks.plan_modal(rem))
    validate_view(blocks.reject_modal(rem, channel="C1", ts="1.2"))


def test_state_variants_replace_the_buttons() -> None:
    base = make_remediation(votes=[vote("U0ALICE")])
    for state in STATES:
        rem = replace(base, state=state, error="boom" if state == "failed" else None)
        msg = blocks.approval_message(rem, "1 of 1 approval from <@U0ALICE>")
        validate_message(msg)
        flat = json.dumps(msg.blocks)
        if state == "pending_approval":
            assert blocks.ACTION_APPROVE in flat
            continue
        assert blocks.ACTION_APPROVE not in flat
        assert blocks.ACTION_REJECT not in flat
        line = blocks.status_line(rem)
        assert line
        assert line in flat
    assert "Applied and verified (approved by <@U0ALICE>)" in (blocks.status_line(replace(base, state="applied")) or "")
    assert "Failed: boom" in (blocks.status_line(replace(base, state="failed", error="boom")) or "")
    rejected = replace(base, state="rejected", votes=[vote("U0BOB", "reject", "not <!here> now")])
    assert blocks.status_line(rejected) == (
        ":no_entry_sign: Rejected by <@U0BOB>; nothing was changed. Reason: not &lt;!here&gt; now")
    assert "Expired" in (blocks.status_line(replace(base, state="expired")) or "")
    assert "Stale" in (blocks.status_line(replace(base, state="stale")) or "")


def test_partial_quorum_keeps_the_buttons_and_shows_the_engine_requirement() -> None:
    rem = make_remediation(quorum=2, votes=[vote("U0ALICE")])
    msg = blocks.approval_message(rem, "1 of 2 approvals from <!subteam^S0SECONCALL>; approved by <@U0ALICE>")
    needs = next(b for b in msg.blocks if b["block_id"].startswith("needs."))
    assert needs["elements"][0]["text"].startswith(
        ":busts_in_silhouette: Needs 1 of 2 approvals from <!subteam^S0SECONCALL>; approved by <@U0ALICE> · expires")
    assert blocks.ACTION_APPROVE in json.dumps(msg.blocks)
    # once decided, the requirement line goes (the state line says who approved)
    done = blocks.approval_message(replace(rem, state="approved"), "Already approved by <@U0ALICE>")
    assert not any(b["block_id"].startswith("needs.") for b in done.blocks)


def test_block_ids_change_with_every_iteration() -> None:
    rem = make_remediation()
    first = blocks.approval_message(rem, "")
    again = blocks.approval_message(rem, "")
    voted = blocks.approval_message(replace(rem, version="2", votes=[vote("U0ALICE")]), "")
    applied = blocks.approval_message(replace(rem, version="3", state="applied"), "")
    ids_of = [{b["block_id"] for b in m.blocks} for m in (first, again, voted, applied)]
    assert ids_of[0] == ids_of[1]
    assert not ids_of[0] & ids_of[2]
    assert not ids_of[2] & ids_of[3]
    assert all(bid.split(".")[1] == "v1" and len(bid) <= 255 for bid in ids_of[0])


@pytest.mark.parametrize("n", [1, 15, 10_000])
def test_digest_message(n: int) -> None:
    rems = [make_remediation(id=f"r-{i:05d}", resource_id=VM.replace("vm-jump-01", f"vm-{i:05d}")) for i in range(n)]
    msg = blocks.digest_message(rems, playbook="nsg-close-management-ports", group="rg-prod-web",
                                requirement="1 of 1 approval from <!subteam^S0SECONCALL>")
    validate_message(msg)
    assert_no_injection(msg.blocks)
    flat = json.dumps(msg.blocks)
    assert f"Approve all {n}" in flat
    actions = next(b for b in msg.blocks if b["type"] == "actions")
    approve_all, open_list = actions["elements"]
    assert approve_all["action_id"] == blocks.ACTION_DIGEST_APPROVE
    assert approve_all["value"] == blocks.digest_key([r.id for r in rems])
    assert len(approve_all["value"]) <= 2000
    assert open_list["action_id"] == blocks.ACTION_DIGEST_LIST
    listing = next(b for b in msg.blocks if b["block_id"].startswith("dlist."))["text"]["text"]
    shown = listing.count("• ")
    assert 1 <= shown <= blocks.DIGEST_LIST_MAX
    more = re.search(r"…and (\d+) more: use \*Open the list\*", listing)
    assert (int(more.group(1)) if more else 0) == n - shown
    validate_view(blocks.digest_list_modal(rems, playbook="nsg-close-management-ports"))
    done = blocks.digest_message(rems, playbook="p", group="g", requirement="", status="Approved by <@U0ALICE>")
    validate_message(done)
    assert blocks.ACTION_DIGEST_APPROVE not in json.dumps(done.blocks)


def test_result_reply_with_undo() -> None:
    rem = make_remediation(state="applied")
    msg = blocks.result_message(rem, kind="applied", text="Applied and verified: <!channel>", undo_available=True)
    validate_message(msg)
    assert_no_injection(msg.blocks)
    assert msg.blocks[0]["text"]["text"] == ":white_check_mark: Applied and verified: &lt;!channel&gt;"
    undo = msg.blocks[1]["elements"][0]
    assert (undo["action_id"], undo["value"]) == (blocks.ACTION_UNDO, rem.id)
    assert "confirm" in undo
    plain = blocks.result_message(rem, kind="failed", text="boom")
    assert len(plain.blocks) == 1


def test_reject_modal() -> None:
    rem = make_remediation()
    view = blocks.reject_modal(rem, channel="C0APPROVALS", ts="1700000000.000001")
    validate_view(view)
    assert view["callback_id"] == blocks.CALLBACK_REJECT
    assert json.loads(view["private_metadata"]) == {"id": rem.id, "channel": "C0APPROVALS", "ts": "1700000000.000001"}
    field = view["blocks"][1]
    assert (field["block_id"], field["element"]["action_id"]) == (blocks.REJECT_BLOCK, blocks.REJECT_INPUT)


def test_button_value_over_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="2000"):
        blocks.button("x", "a", "v" * 2001)


def test_clip_never_cuts_an_entity_or_a_token() -> None:
    assert blocks.clip("abc&amp;def", 6) == "abc…"
    assert blocks.clip("ab <@U123> cd", 8) == "ab …"
    assert blocks.clip("short", 10) == "short"


def test_the_message_summarises_a_deleted_document_and_the_modal_lists_it() -> None:
    gone = rule("allow-rdp", "3389")
    rem = make_remediation(changes=[
        {"action": "network.restrict-inbound", "resource_id": NSG + "/securityRules/allow-rdp", "operation": "delete",
         "before": gone, "after": None, "note": "delete (Allow Tcp 3389 from *)"},
        {"action": "network.restrict-inbound", "resource_id": NSG, "operation": "update",
         "before": nsg(rule("web", "443,22")), "after": nsg(rule("web", "443"))},
    ])
    plan, folded = blocks.plan_section(rem)
    text = plan["text"]["text"]
    assert "- delete securityRules allow-rdp  [network.restrict-inbound]" in text
    assert "# delete (Allow Tcp 3389 from *)" in text
    assert "(7 properties removed: Show full plan lists them)" in text
    assert "sourceAddressPrefix" not in text
    assert '~ properties.securityRules[name=web].properties.destinationPortRange: "443,22" -&gt; "443"' in text
    assert folded
    msg = blocks.approval_message(rem, "")
    assert blocks.ACTION_SHOW_PLAN in json.dumps(msg.blocks)
    modal = json.dumps(blocks.plan_modal(rem))
    assert "sourceAddressPrefix" in modal


SUBNET_WARNING = ("subnet /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/"
                  "snet not in the resource state: the NSG of the network interface's subnet was not checked; add "
                  "its virtual network with `az network vnet show --ids /x > vnet.json` to the --resources folder")


def test_plan_warnings_are_shown_as_not_checked_escaped_and_in_the_confirm_and_modal() -> None:
    rem = make_remediation(warnings=(SUBNET_WARNING,))
    msg = blocks.approval_message(rem, "1 of 1 approval from <!subteam^S0SECONCALL>")
    validate_message(msg)
    assert_no_injection(msg.blocks)
    kinds = [b["type"] for b in msg.blocks]
    assert kinds == ["header", "section", "section", "section", "section", "context", "actions", "context"]
    unchecked = msg.blocks[4]
    assert unchecked["block_id"].startswith("unchecked.")
    text = unchecked["text"]["text"]
    assert text.startswith(":warning: *Not checked* · the plan covers only what it could read (1 thing not checked)")
    assert "• " + blocks.esc(SUBNET_WARNING) in text
    assert "&gt; vnet.json" in text  # escaped, not a Slack token
    confirm = msg.blocks[6]["elements"][0]["confirm"]["text"]["text"]
    assert "1 thing could not be checked" in confirm
    modal = blocks.plan_modal(rem)
    validate_view(modal)
    assert modal["blocks"][1]["text"]["text"] == text
    # without warnings: no block, the layout of before
    plain_msg = blocks.approval_message(replace(rem, warnings=()), "")
    assert "unchecked." not in json.dumps(plain_msg.blocks)
    assert "could not be checked" not in json.dumps(plain_msg.blocks)


def test_hostile_and_huge_warnings_are_escaped_clipped_and_within_limits() -> None:
    huge = HOSTILE + " " + "x&<>" * 2000
    many = tuple(f"{i} {huge}" for i in range(200))
    rem = make_remediation(warnings=many)
    msg = blocks.approval_message(rem, "")
    validate_message(msg)
    assert_no_injection(msg.blocks)
    text = next(b for b in msg.blocks if b["block_id"].startswith("unchecked."))["text"]["text"]
    assert len(text) <= blocks.SECTION_TEXT_MAX
    assert "(200 things not checked)" in text
    assert "&lt;!channel&gt; pwned &lt;http://evil.example|Approve here&gt; &amp; &lt;@U0VICTIM&gt;" in text
    items = [line for line in text.split("\n") if line.startswith("• ")]
    assert 1 <= len(items) <= blocks.WARNINGS_SHOWN
    assert all(len(line) <= len("• ") + 5 * blocks.WARNING_MAX for line in items)  # clipped before escaping
    assert all(line.endswith("…") for line in items)
    more = re.search(r"…and (\d+) more: `remediator audit r-0123456789abcdef` lists them", text)
    assert more is not None
    assert int(more.group(1)) == 200 - len(items)
    modal = blocks.plan_modal(rem)
    validate_view(modal)
    assert_no_injection(modal)
    # a plan folded into a full modal still fits the 100 blocks with the warnings on top
    rules = [rule(f"r{i}", "22") for i in range(3000)]
    big = make_remediation(warnings=many, changes=[{"action": "a", "resource_id": NSG, "operation": "update",
                                                    "before": nsg(*rules), "after": nsg()}])
    validate_view(blocks.plan_modal(big))
    assert len(blocks.plan_modal(big)["blocks"]) <= blocks.MODAL_BLOCKS_MAX
    # a warning made only of whitespace is not shown
    assert blocks.warnings_section(make_remediation(warnings=(" \n ",))) is None


def test_digest_counts_the_plans_that_could_not_check_everything() -> None:
    rems = [make_remediation(id=f"r-{i:05d}", resource_id=VM.replace("vm-jump-01", f"vm-{i:05d}"),
                             warnings=(HOSTILE,) * (i % 2)) for i in range(6)]
    msg = blocks.digest_message(rems, playbook="nsg-close-management-ports", group="rg-prod-web", requirement="")
    validate_message(msg)
    assert_no_injection(msg.blocks)
    note = next(b for b in msg.blocks if b["block_id"].startswith("dunchecked."))
    assert note["elements"][0]["text"].startswith(":warning: *Not checked*: 3 of 6 plans could not check everything")
    listing = blocks.digest_list_modal(rems, playbook="nsg-close-management-ports")
    validate_view(listing)
    assert json.dumps(listing).count(":warning: 1 thing not checked") == 3
    clean = blocks.digest_message([replace(r, warnings=()) for r in rems], playbook="p", group="g", requirement="")
    assert "dunchecked." not in json.dumps(clean.blocks)


# -- results digests ----------------------------------------------------------------------------


def _results(n: int, *, text: str, name: str = "st", undo: bool = True) -> Any:
    from datetime import UTC, datetime

    from remediator.lifecycle.chat import ResultDigest, ResultEntry
    from remediator.lifecycle.results import ENTRIES_MAX, TEXT_MAX

    assert n <= ENTRIES_MAX
    sub = "/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-data/providers/"
    return ResultDigest(id="dg1", playbook="storage-disable-public-blob-access",
                        opened_at=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
                        entries=tuple(ResultEntry(remediation_id=f"rem{i:04d}xxxxxxxxxxxxxxxx",
                                                  resource_id=f"{sub}Microsoft.Storage/storageAccounts/{name}{i:03d}",
                                                  kind="failed" if i % 3 else "applied", text=text[:TEXT_MAX],
                                                  undo_available=undo and not i % 3) for i in range(n)))


def test_a_full_results_digest_stays_within_slacks_limits_with_the_worst_inputs() -> None:
    """25 results (a message's most) whose words are as long as kept and all escapes, on resources with
    the longest names: within 50 blocks, 3,000 characters per section and the ~11,000 of block text
    Slack takes in one message; each result listed (its id), the hostile words escaped."""
    from remediator.lifecycle.results import ENTRIES_MAX

    digest = _results(ENTRIES_MAX, text="<!channel> & <https://evil|click> " * 40, name="s" * 20)
    msg = blocks.results_message(digest)
    validate_message(msg)
    assert_no_injection(msg.blocks)
    text = "\n".join(b["text"]["text"] for b in msg.blocks if b["type"] == "section")
    assert sum(len(json.dumps(b)) for b in msg.blocks) < 14_000
    assert len(text) <= blocks.RESULTS_TEXT_MAX
    assert [e.remediation_id for e in digest.entries] == re.findall(r"`(rem\d{4}x+)`", text)
    (menu,) = next(b for b in msg.blocks if b["type"] == "actions")["elements"]
    assert [o["value"] for o in menu["options"]] == [e.remediation_id for e in digest.entries if e.undo_available]
    assert msg.text == "storage-disable-public-blob-access: 9 applied, 16 failed"


def test_a_results_digest_without_undo_has_no_menu() -> None:
    msg = blocks.results_message(_results(2, text="Applied and verified: 1 change.", undo=False))
    validate_message(msg)
    assert [b["type"] for b in msg.blocks] == ["header", "context", "section"]
    assert msg.blocks[0]["text"]["text"] == "2 results: storage-disable-public-blob-access"
