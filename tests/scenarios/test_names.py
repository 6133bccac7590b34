"""A reviewer sees whom a fix touches: names beside ids in Slack, end to end on FakeSlack and FakeMsGraph.

The sample's blocked Owner (``9d2c5e7f-…``, sub-assessment 03) is revoked by ``rbac-revoke-excess-
permissions``: the approval message, its in-place updates and the thread reply show the user's display
name and UPN beside the object id; with Microsoft Graph unreachable the same messages show the ids and
the log holds one warning for the whole outage, not one per id or per message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot import blocks
from remediator.app.paths import SAMPLES
from remediator.azure.reader import LiveState
from remediator.planning.names import NameResolver
from remediator.testing import FakeMsGraph
from tests.bot.world import SlackWorld
from tests.support.engine import LEAD1, LEAD2, sample

CASEY = "9d2c5e7f-1a3b-4c6d-8e0f-2b4d6f8a0c1e"
NAMED = f"Casey Morgan (left 2026-10) · casey.morgan@contoso.com ({CASEY})"


@pytest.fixture
def graph() -> Iterator[FakeMsGraph]:
    with FakeMsGraph() as fake:
        fake.load(json.loads((SAMPLES / "directory.json").read_text(encoding="utf-8")))
        yield fake


def _flat(message: dict[str, object]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


def _name_world(world: SlackWorld, graph: FakeMsGraph, **kwargs: object) -> NameResolver:
    names = NameResolver(directory=graph.client(timeout=0.5), definitions=LiveState(world.arm.clients()),
                         **kwargs)  # type: ignore[arg-type]
    world.chat.names = names  # as build_slack_engine wires them: one resolver for the worker and the App
    world.engine.names = names
    return names


def test_the_approval_message_update_and_reply_name_the_principal_beside_its_id(
        world: SlackWorld, graph: FakeMsGraph) -> None:
    _name_world(world, graph)
    [rem] = world.ingest(sample("03-blocked-owner-subassessment"))
    world.engine.work()  # the approval message is posted
    assert rem.playbook == "rbac-revoke-excess-permissions"
    flat = _flat(world.message(rem.id))
    assert NAMED in flat  # the plan's note and diff: "revoke Owner of Casey Morgan … (9d2c5e7f-…)"
    assert graph.calls("getByIds") == 1  # one lookup for the whole message
    [asked] = graph.requests
    assert "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41" not in asked.body["ids"]  # the subscription is not a principal

    # the App's answers (due within 3 seconds) use the names the worker looked up: no request
    world.click(blocks.ACTION_SHOW_PLAN, rem.id, LEAD1)
    [view] = world.slack.calls_to("views.open")
    modal = json.dumps(view.body["view"], ensure_ascii=False)
    assert NAMED in modal
    assert "sp-landing-zone-deploy · app 2b8f4e6a-0c1d-4e3f-9a5b-7c6d8e0f1a2b (6a1d0c2e-" in modal  # createdBy
    status = json.loads(world.command(f"status {rem.id}", LEAD1).body)["text"]
    assert NAMED in status
    assert graph.calls("getByIds") == 1

    for lead in (LEAD1, LEAD2):  # quorum 2: two approvals, each updating the message in place
        world.click(blocks.ACTION_APPROVE, rem.id, lead)
    world.engine.work()
    assert NAMED in _flat(world.message(rem.id))
    replies = json.dumps(world.thread(rem.id), ensure_ascii=False)
    assert "Applied" in replies
    assert graph.calls("getByIds") == 1  # the updates and the reply asked nothing more: the names were cached


def test_graph_unreachable_shows_ids_and_one_warning(world: SlackWorld, graph: FakeMsGraph,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    _name_world(world, graph)
    graph.unreachable()
    with caplog.at_level(logging.WARNING, logger="remediator.planning.names"):
        rems = world.ingest([*sample("03-blocked-owner-subassessment"), *sample("02-management-ports-assessment")])
        for rem in rems:
            world.click(blocks.ACTION_APPROVE, rem.id, LEAD1)
        world.engine.work()
    owner = next(r for r in rems if r.playbook == "rbac-revoke-excess-permissions")
    flat = _flat(world.message(owner.id))
    assert f"revoke Owner of {CASEY}" in flat
    assert "Casey Morgan" not in flat
    warnings = [r.getMessage() for r in caplog.records if r.name == "remediator.planning.names"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("principal names not read (Microsoft Graph at http://127.0.0.1:")
    assert warnings[0].endswith("; ids shown")


def test_a_hostile_display_name_is_escaped_and_capped(world: SlackWorld, graph: FakeMsGraph) -> None:
    graph.add_user("<!channel> <https://evil.example|click> " + "x" * 300, object_id=CASEY)
    _name_world(world, graph)
    [rem] = world.ingest(sample("03-blocked-owner-subassessment"))
    world.engine.work()  # the approval message is posted
    flat = _flat(world.message(rem.id))
    assert "<!channel>" not in flat
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; xxx" in flat
    assert "x" * 200 not in flat  # capped
    assert f"… ({CASEY})" in flat
