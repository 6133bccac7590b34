"""A backlog's approval requests: one message per playbook and subscription, once the delivery is planned.

Every approval message takes one of the channel's one-per-second posting slots, shared by every
worker (``bot.chat.SharedPacer``), so a backlog of ten accounts in ten resource groups asked as ten
messages keeps four workers waiting on Slack for nine seconds (issue 17's throughput). Requests of
one playbook in one resource group were a digest from ``storm_threshold`` on; now the smaller groups
of one playbook in one subscription that reach it together are one digest across their resource
groups, and an announce waits while other plan jobs still plan the rest of its delivery (a
delivery is split into several plan jobs so that several workers plan it), so the delivery is
grouped whole. Real parts: the worker, ``SlackChat`` and the real slack-sdk to FakeSlack, FakeArm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot import blocks
from remediator.lifecycle.worker import ANNOUNCE_SETTLE_MAX, ANNOUNCE_SETTLE_STEP, announce_groups
from tests.bot.world import CHANNEL, SlackWorld, make_slack_world
from tests.support.engine import MEMBERS, SUB, TEAM, network_assessment, public_blob_assessment, storage_account

ALICE = MEMBERS[0]
OTHER_SUB = "00000000-0000-4000-8000-0000000000b2"
PLAYBOOK = "storage-restrict-network-access"


def accounts(prefix: str, n: int, *, sub: str = SUB, **props: Any) -> list[dict[str, Any]]:
    """``n`` storage accounts, each in a resource group of its own."""
    docs = [storage_account(f"{prefix}{i:02d}", rg=f"rg-{prefix}-{i}", **props) for i in range(n)]
    for doc in docs:
        doc["id"] = doc["id"].replace(f"/subscriptions/{SUB}/", f"/subscriptions/{sub}/")
    return docs


def posts(world: SlackWorld) -> list[dict[str, Any]]:
    return list(world.slack.messages(CHANNEL))


def queued(world: SlackWorld) -> list[str]:
    return [str(k) for (k,) in world.store._connection().execute("SELECT kind FROM jobs ORDER BY seq").fetchall()]


def test_a_backlog_across_resource_groups_is_one_digest_and_approve_all_applies_each(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, storm_threshold=5):
        docs = accounts("bk", 8)
        world.arm.load(docs)
        opened = world.ingest([network_assessment(d["id"]) for d in docs])
        world.engine.work()
        (digest,) = posts(world)
        assert digest["metadata"]["event_type"] == "remediator_digest"
        text = json.dumps(digest["blocks"])
        assert "Resource groups" in text
        assert f"8 in `{SUB}`" in text
        assert f"8 resource groups of subscription {SUB}" in text  # the Approve all confirmation says where
        assert {world.rem(r.id).message["ts"] for r in opened} == {digest["ts"]}
        resp = world.click(blocks.ACTION_DIGEST_APPROVE, "x", ALICE, rid=opened[0].id)
        assert resp.status == 200
        world.engine.work()
        assert [world.rem(r.id).state for r in opened] == ["applied"] * 8
        # the results: one results digest, not a thread reply per member (each would take a posting second)
        world.clock.advance(seconds=5)
        world.engine.work()
        assert world.slack.replies(CHANNEL, digest["ts"]) == []
        (results,) = [m for m in posts(world) if m["metadata"]["event_type"] == "remediator_results"]
        assert all(r.id in json.dumps(results["blocks"]) for r in opened)


def test_fewer_than_the_threshold_across_resource_groups_are_asked_one_by_one(tmp_path: Path) -> None:
    for world in make_slack_world(tmp_path, storm_threshold=5):
        docs = accounts("few", 3) + accounts("far", 3, sub=OTHER_SUB)  # 3 + 3: no subscription reaches 5
        world.arm.add_subscription(OTHER_SUB)
        world.arm.load(docs)
        opened = world.ingest([network_assessment(d["id"]) for d in docs])
        world.engine.work()
        assert len(posts(world)) == 6
        assert all((m.get("metadata") or {}).get("event_type") != "remediator_digest" for m in posts(world))
        assert all(world.rem(r.id).announced for r in opened)


def test_grouping_rules() -> None:
    def key(playbook: str, sub: str, rg: str, name: str) -> str:
        return f"{playbook}|/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"

    found = [(f"big{i}", key("p", "s1", "rg-big", f"b{i}")) for i in range(5)]  # a resource group's own storm
    found += [(f"spread{i}", key("p", "s1", f"rg-{i}", f"s{i}")) for i in range(5)]  # five groups of one
    found += [(f"other{i}", key("q", "s1", f"rg-{i}", f"o{i}")) for i in range(2)]  # another playbook: two
    found += [(f"far{i}", key("p", "s2", f"rg-{i}", f"f{i}")) for i in range(4)]  # another subscription: four
    found += [("undo1", "undo|x1"), ("undo2", "undo|x2")]
    answer = announce_groups(found, 5)
    digests = {(playbook, group): members for (playbook, group), members in answer if len(members) > 1}
    assert digests == {("p", "rg-big"): [f"big{i}" for i in range(5)],
                       ("p", "5 resource groups of subscription s1"): [f"spread{i}" for i in range(5)]}
    singles = sorted(members[0] for _, members in answer if len(members) == 1)
    assert singles == sorted([*(f"other{i}" for i in range(2)), *(f"far{i}" for i in range(4)), "undo1", "undo2"])
    assert all(len(members) == 1 for _, members in announce_groups(found, 0))  # digests off


def test_a_delivery_split_into_plan_jobs_is_announced_whole(tmp_path: Path) -> None:
    """40 requests from one scan are two plan jobs; the announce the first queues runs while the second is
    still being planned (another worker holds it): it waits, and the 40 are one digest, not two."""
    for world in make_slack_world(tmp_path, storm_threshold=5):
        docs = accounts("sp", 40)
        world.arm.load(docs)
        world.engine.ingest([network_assessment(d["id"]) for d in docs], source="scan")
        first = world.store.dequeue(visibility_seconds=60)
        second = world.store.dequeue(visibility_seconds=60)  # another worker's: held while it plans
        assert first is not None
        assert second is not None
        assert (first.kind, second.kind) == ("plan", "plan")
        world.engine.handle(first)
        world.store.complete(first)
        world.engine.work()  # the first job's announce: the second job's findings still wait, so it waits too
        assert posts(world) == []
        assert sorted(queued(world)) == ["announce", "plan"]  # the announce again, and the held plan job
        world.engine.handle(second)
        world.store.complete(second)
        world.clock.advance(seconds=ANNOUNCE_SETTLE_STEP)
        world.engine.work()
        (digest,) = posts(world)
        assert "40 in" in json.dumps(digest["blocks"])
        assert len(world.store.list(states=("pending_approval",), limit=100)) == 40
        world.clock.advance(seconds=ANNOUNCE_SETTLE_STEP)
        world.engine.work()  # the second job's own announce: nothing left to ask
        assert len(posts(world)) == 1


def test_an_announce_waits_for_its_delivery_at_most_two_minutes(tmp_path: Path) -> None:
    """The worker planning the rest died holding its job: the announce posts what is planned after
    ``ANNOUNCE_SETTLE_MAX``, and the rest when their job comes back."""
    for world in make_slack_world(tmp_path, storm_threshold=5):
        docs = accounts("hd", 40)
        world.arm.load(docs)
        world.engine.ingest([network_assessment(d["id"]) for d in docs], source="scan")
        first = world.store.dequeue(visibility_seconds=60)
        held = world.store.dequeue(visibility_seconds=3600)  # the crashed worker's job, hidden for an hour
        assert first is not None
        assert held is not None
        world.engine.handle(first)
        world.store.complete(first)
        waited = 0.0
        longest = ANNOUNCE_SETTLE_MAX.total_seconds()
        while not posts(world) and waited < longest + 10:
            world.clock.advance(seconds=1)
            waited += 1
            world.engine.work()
        assert longest <= waited <= longest + 2
        (digest,) = posts(world)
        assert "20 in" in json.dumps(digest["blocks"])
        world.clock.advance(hours=1)
        world.engine.handle(held)
        world.store.complete(held)
        world.engine.work()
        world.clock.advance(seconds=2)
        world.engine.work()
        assert len(posts(world)) == 2
        assert all(world.rem(r.id).announced for r in world.store.list(states=("pending_approval",), limit=100))


def test_approve_all_clicked_before_the_worker_stored_every_ref_approves_every_member(tmp_path: Path) -> None:
    """The worker stores the digest's ref on its members one by one after the post (a Table Storage write
    each); a click in between approved only those already stored, and re-rendered the digest with them
    alone, leaving the others pending with no button to approve them."""
    for world in make_slack_world(tmp_path, storm_threshold=5):
        docs = accounts("race", 6)
        world.arm.load(docs)
        opened = world.ingest([network_assessment(d["id"]) for d in docs])
        rems = [world.rem(r.id) for r in opened]
        ref = world.chat.post_digest(rems, playbook=PLAYBOOK, group="")  # posted and indexed …
        for rem in rems[:2]:  # … and the worker stored two refs when the click came
            world.store.update(rem, message={"channel": ref.channel, "ts": ref.ts, "digest": "1"}, announced=True)
        resp = world.send(world.slack.block_actions(action_id=blocks.ACTION_DIGEST_APPROVE, value="x", user_id=ALICE,
                                                    team_id=TEAM, channel=ref.channel, message_ts=ref.ts))
        assert resp.status == 200
        assert [world.rem(r.id).state for r in opened] == ["approved"] * 6
        (update,) = world.slack.calls_to("chat.update")
        assert "Approved 6 of 6 requests" in json.dumps(update.body["blocks"])


def test_an_approved_change_is_applied_before_a_backlog_of_automatic_ones(tmp_path: Path) -> None:
    """Approved changes take the urgent lane: the worker's next job is the approved apply, not the sixth
    of the automatic applies queued before the click."""
    for world in make_slack_world(tmp_path, storm_threshold=5, auto_budget_per_hour=1000):
        (asked_doc,) = accounts("asked", 1)
        auto = accounts("auto", 6, allowBlobPublicAccess=True)
        world.arm.load([asked_doc, *auto])
        (rem,) = world.ingest([network_assessment(asked_doc["id"])])
        world.engine.work()  # its message
        autos = world.ingest([public_blob_assessment(d["id"]) for d in auto])  # six automatic applies queued
        assert [r.state for r in autos] == ["approved"] * 6
        assert world.click(blocks.ACTION_APPROVE, rem.id, ALICE).status == 200
        assert world.rem(rem.id).state == "approved"
        assert queued(world) == ["apply"] * 6 + ["update", "apply"]  # the message's update, then the apply
        world.engine.work(max_jobs=2)
        assert world.rem(rem.id).state == "applied"
        assert all(world.rem(r.id).state == "approved" for r in autos)  # still waiting their turn
        world.engine.work()
        assert all(world.rem(r.id).state == "applied" for r in autos)


def test_one_announce_per_delivery_waits_for_it_the_others_end(tmp_path: Path) -> None:
    """Each plan job queues an announce; while the delivery is still being planned only one of them keeps
    looking (each look is a query and a job: ten looping announces took the workers from the applies)."""
    for world in make_slack_world(tmp_path, storm_threshold=5):
        docs = accounts("one", 60)
        world.arm.load(docs)
        world.engine.ingest([network_assessment(d["id"]) for d in docs], source="scan")
        jobs = [world.store.dequeue(visibility_seconds=600) for _ in range(3)]
        assert [j.kind for j in jobs if j is not None] == ["plan"] * 3
        for job in jobs[:2]:
            assert job is not None
            world.engine.handle(job)
            world.store.complete(job)
        world.engine.work()  # two announces: one waits for the third job, the other ends
        assert sorted(queued(world)) == ["announce", "plan"]
        assert posts(world) == []
        held = jobs[2]
        assert held is not None
        world.engine.handle(held)
        world.store.complete(held)
        world.clock.advance(seconds=ANNOUNCE_SETTLE_STEP)
        world.engine.work()
        (digest,) = posts(world)
        assert "60 in" in json.dumps(digest["blocks"])
