"""The backlog: Resource Graph scan (paging, throttling), the offline shapes, one finding across routes,
bulk state reads (and a stale graph row only ever re-asks), the pace of ARM (a 429 holds the whole
subscription), and concurrent applies exactly once. Real SDK clients against FakeArm throughout."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.app.cli import build_parser
from remediator.app.cli.scan import run as scan_run
from remediator.azure.graph import Graph, GraphState, Scope, arm_document
from remediator.azure.reader import LiveState
from remediator.findings.model import Finding, Ignored
from remediator.findings.parse import parse_file, parse_value
from remediator.lifecycle.engine import Engine
from remediator.privilege.elevation import StandingElevator
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.conftest import ROOT
from tests.support.clock import VirtualTime
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    ROLES_ENV,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    World,
    sample_state,
    storage_account,
)

SUB2 = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
NETWORK_KEY = "45d313c3-3fca-5040-035f-d61928366d31"  # storage firewall: storage-restrict-network-access (slack)
PUBLIC_KEY = "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6"  # public blob access: storage-disable-public-blob-access (auto)
POLICY_FIXTURE = ROOT / "tests" / "fixtures" / "policy" / \
    "policyinsights__2024-10-01__PolicyStates_QuerySubscriptionLevelPolicyAssignmentScope.json"


def assessment(resource_id: str, key: str, code: str = "Unhealthy", *,
               changed: str = "2026-11-20T08:00:00Z") -> dict[str, Any]:
    """An ARM ``Microsoft.Security/assessments`` document on ``resource_id``."""
    return {"id": f"{resource_id}/providers/Microsoft.Security/assessments/{key}", "name": key,
            "type": "Microsoft.Security/assessments",
            "properties": {"resourceDetails": {"source": "Azure", "id": resource_id}, "displayName": f"check {key[:8]}",
                           "status": {"code": code, "statusChangeDate": changed, "firstEvaluationDate": changed},
                           "metadata": {"displayName": f"check {key[:8]}", "severity": "High"}}}


def account(name: str, sub: str = SUB, **props: Any) -> dict[str, Any]:
    doc = storage_account(name, **props)
    doc["id"] = doc["id"].replace(SUB, sub)
    return doc


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock()
    from datetime import timedelta

    from remediator.config.settings import Settings

    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), slack_channel="C0REMEDIATE", group_wait=timedelta(0),
                        approver_roles=ROLES)
    with FakeArm(graph_page_size=3) as arm, SQLiteStore(tmp_path / "r.db", clock=clock) as store:
        arm.load(sample_state())
        clients = arm.clients()
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients), clients=clients,
                        elevator=StandingElevator(), chat=RecordingChat(), directory=StaticDirectory({ONCALL: MEMBERS}),
                        clock=clock, graph=Graph(clients))
        yield World(engine=engine, store=store, arm=arm, chat=RecordingChat(), clock=clock,
                    directory=StaticDirectory({}), settings=settings)


# -- the scan -------------------------------------------------------------------------------------------


def test_scan_pages_through_every_table_and_honours_the_quota(world: World) -> None:
    arm = world.arm
    names = [f"acct{i:02d}" for i in range(7)]
    for i, name in enumerate(names):
        doc = account(name, SUB if i % 2 else SUB2)
        arm.add(doc)
        arm.add(assessment(doc["id"], NETWORK_KEY))
        arm.add(assessment(doc["id"], PUBLIC_KEY, "Healthy"))  # healthy: not part of the backlog
    arm.graph_quota(3, window=0.5)  # Resource Graph's quota, made small: the scan must wait, not fail
    vt = VirtualTime()  # the quota's window and the scan's waits, on one clock that waiting moves on
    arm.clock = vt.monotonic

    clients = arm.clients(clock=vt.monotonic, sleep=vt.sleep)
    scan = Graph(clients, page_size=2).scan(Scope(subscriptions=(SUB, SUB2)))

    assert scan.complete
    assert scan.problems == []
    assert scan.rows["assessments"] == 7
    assert scan.subscriptions == {SUB, SUB2}
    found = [f for f in scan.findings if f.kind == "recommendation"]  # the sample estate's exemption is one too
    assert {f.resource_id for f in found} == {account(n, SUB if i % 2 else SUB2)["id"] for i, n in enumerate(names)}
    assert [f.resource_id.lower() for f in found] == sorted(f.resource_id.lower() for f in found)
    pages = [r for r in arm.graph_requests if r.status == 200]
    assert sum(1 for r in pages if (r.body or {}).get("options", {}).get("$skipToken")) >= 3  # 7 rows, 2 a page
    # x-ms-user-quota-remaining ran low: the scan paused until the quota reset instead of failing
    assert clients.paces()["graph"].stats()["blocked_seconds"] > 0
    assert vt.total_slept > 0
    assert all(r.status in (200, 429) for r in arm.graph_requests)
    assert arm.writes == []


def test_scan_of_a_management_group_lists_its_subscriptions(world: World) -> None:
    arm = world.arm
    arm.add_subscription(SUB2, management_group="mg-prod")
    doc = account("mgacct", SUB2)
    arm.add(doc)
    arm.add(assessment(doc["id"], NETWORK_KEY))

    scan = Graph(arm.clients()).scan(Scope(management_group="mg-prod"))

    assert scan.subscriptions == {SUB2}
    assert [f.resource_id for f in scan.findings] == [doc["id"]]


def test_fake_graph_refuses_queries_it_does_not_understand(world: World) -> None:
    from remediator.errors import StateError

    with pytest.raises(StateError, match="not a KQL engine"):
        list(Graph(world.arm.clients()).query("resources | summarize count() by type"))


# -- the offline shapes ----------------------------------------------------------------------------------


def test_policy_insights_query_results_read_whole(tmp_path: Path) -> None:
    records = parse_file(POLICY_FIXTURE)
    noncompliant, compliant = records
    assert isinstance(noncompliant, Finding)
    assert noncompliant.source == "policy-state"
    assert noncompliant.type == "c8b79b49-a579-4045-984e-1b249ab8b474"
    assert noncompliant.resource_type == "Microsoft.Network/publicIPAddresses"
    assert isinstance(compliant, Ignored)
    assert compliant.resolves
    # `az policy state list` prints the value array alone
    body = json.loads(POLICY_FIXTURE.read_text())["responses"]["200"]["body"]["value"]
    (tmp_path / "states.json").write_text(json.dumps(body))
    assert [r.id for r in parse_file(tmp_path / "states.json")] == [r.id for r in records]


def test_resource_graph_exports_and_az_security_output_read(tmp_path: Path) -> None:
    rid = account("exported")["id"]
    row = assessment(rid, NETWORK_KEY)
    row["type"] = row["type"].lower()
    az_graph = {"count": 1, "data": [row], "skip_token": None, "total_records": 1}
    rest = {"totalRecords": 1, "count": 1, "resultTruncated": "false", "data": [row]}
    flat = {"id": row["id"], "name": NETWORK_KEY, "type": "Microsoft.Security/assessments",
            **copy.deepcopy(row["properties"]), "resourceGroup": "rg-prod-data"}  # az: properties flattened
    ids_seen = set()
    for n, doc in enumerate((az_graph, rest, [flat], row)):
        path = tmp_path / f"{n}.json"
        path.write_text(json.dumps(doc))
        (finding,) = parse_file(path)
        assert isinstance(finding, Finding)
        assert finding.resource_id == rid
        ids_seen.add(finding.id)
    assert len(ids_seen) == 1  # one finding whichever export carried it


def test_plan_and_scan_from_file_read_the_three_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from remediator.app.cli import main

    rid = f"/subscriptions/{SUB}/resourceGroups/rg-prod-data/providers/Microsoft.Storage/storageAccounts/contosodata"
    (tmp_path / "graph.json").write_text(json.dumps({"count": 1, "data": [assessment(rid, NETWORK_KEY)],
                                                      "skip_token": None, "total_records": 1}))
    state = str(ROOT / "remediator" / "samples" / "state")
    assert main(["plan", str(POLICY_FIXTURE), str(tmp_path / "graph.json"), "--resources", state]) == 2
    out = capsys.readouterr().out
    assert "storage-restrict-network-access" in out
    assert "policy state Compliant" in out
    assert main(["scan", "--dry-run", "--from-file", str(POLICY_FIXTURE), "--from-file", str(tmp_path / "graph.json"),
                 "--resources", state, "--output", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert [r["outcome"] for r in doc["results"]] == ["no_match", "ignored", "changes"]
    summary = {row["playbook"]: row for row in doc["summary"]}
    assert summary["storage-restrict-network-access"]["changes"] == 1


def test_scan_dry_run_folds_a_finding_reported_twice_as_plan_does(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The same assessment in two exports is one finding: planned once, counted in ``duplicates_folded``
    (JSON) and on the closing line (text), the same contract as ``remediator plan``."""
    from remediator.app.cli import main

    rid = f"/subscriptions/{SUB}/resourceGroups/rg-prod-data/providers/Microsoft.Storage/storageAccounts/contosodata"
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps({"count": 1, "data": [assessment(rid, NETWORK_KEY)]}))
    state = str(ROOT / "remediator" / "samples" / "state")
    argv = ["scan", "--dry-run", "--from-file", str(tmp_path / "a.json"), "--from-file", str(tmp_path / "b.json"),
            "--resources", state]
    assert main([*argv, "--output", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["duplicates_folded"] == 1
    assert [r["outcome"] for r in doc["results"]] == ["changes"]
    assert doc["summary"][0]["findings"] == 1
    assert main(argv) == 2
    assert "1 duplicate folded (same finding id)" in capsys.readouterr().out
    assert main(["plan", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--resources", state,
                 "--output", "json"]) == 2
    assert json.loads(capsys.readouterr().out)["duplicates_folded"] == 1


def test_scan_ingest_reports_the_duplicates_it_folded(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``--dry-run`` the same contract: a finding in two exports is ingested once and
    ``duplicates_folded`` (JSON) and the summary line (text) say how many repeats were folded."""
    from remediator.app.cli import main

    monkeypatch.chdir(tmp_path)
    for var in ("REMEDIATOR_CONFIG", "REMEDIATOR_STORE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REMEDIATOR_APPROVER_ROLES", ROLES_ENV)
    monkeypatch.setenv("REMEDIATOR_EXECUTOR_PRINCIPAL_ID", "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e")
    rid = f"/subscriptions/{SUB}/resourceGroups/rg-prod-data/providers/Microsoft.Storage/storageAccounts/contosodata"
    other = rid.replace("contosodata", "contosologs")
    (tmp_path / "a.json").write_text(json.dumps({"count": 1, "data": [assessment(rid, NETWORK_KEY)]}))
    both = [assessment(rid, NETWORK_KEY), assessment(other, NETWORK_KEY)]
    (tmp_path / "b.json").write_text(json.dumps({"count": 2, "data": both}))
    argv = ["scan", "--from-file", str(tmp_path / "a.json"), "--from-file", str(tmp_path / "b.json")]
    assert main([*argv, "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["duplicates_folded"] == 1
    assert sum(doc["ingested"].values()) == 3
    assert main(argv) == 0
    assert "1 duplicate folded (same finding id)." in capsys.readouterr().out


# -- one finding, whichever route ---------------------------------------------------------------------------


def test_pushed_and_scanned_assessment_are_one_finding(world: World) -> None:
    doc = account("bothroutes", publicNetworkAccess="Enabled")
    world.arm.add(doc)
    world.arm.add(assessment(doc["id"], NETWORK_KEY))
    pushed = parse_value({**assessment(doc["id"], NETWORK_KEY), "assessmentEventDataEnrichment": {"action": "Insert"}},
                         source="export")
    first = world.engine.ingest(pushed)
    scan = Graph(world.arm.clients()).scan(Scope(subscriptions=(SUB,)))
    (scanned,) = [f for f in scan.findings if f.resource_id == doc["id"]]

    again = world.engine.ingest([scanned], source="scan")

    assert scanned.id == pushed[0].id
    assert [a.outcome for a in first] == ["queued"]
    assert [a.outcome for a in again] == ["duplicate"]


# -- bulk state ---------------------------------------------------------------------------------------------


def _deliver_all(world: World, records: list[Any]) -> None:
    world.engine.ingest(records, source="scan")
    world.engine.work()


def test_plan_jobs_read_state_in_bulk_not_one_get_each(world: World) -> None:
    docs = [account(f"bulk{i}", allowBlobPublicAccess=True) for i in range(6)]
    world.arm.load(docs)
    world.arm.reset_log()
    records = [r for d in docs for r in parse_value(assessment(d["id"], NETWORK_KEY), source="t")]
    world.engine.ingest(records, source="scan")
    (job,) = [j for j in [world.store.dequeue()] if j is not None]
    world.engine.handle(job)

    reads = [r for r in world.arm.requests if r.method == "GET" and "storageaccounts/bulk" in r.path.lower()]
    queries = [r for r in world.arm.graph_requests if "resources | where id in~" in (r.body or {}).get("query", "")]
    assert reads == []
    assert len(queries) == 1
    assert len(world.store.list(states=("pending_approval",))) == 6


def test_a_stale_graph_row_is_asked_again_never_written(world: World) -> None:
    doc = account("drifting")
    doc["properties"].pop("allowBlobPublicAccess", None)  # the graph's version: the setting not yet there
    world.arm.add(doc)
    world.arm.freeze_graph()  # Resource Graph still holds this version
    live = copy.deepcopy(doc)
    live["properties"]["allowBlobPublicAccess"] = True  # what the plan overwrites moved since: stale row
    live["properties"]["driftMarker"] = "changed-by-hand"
    world.arm.add(live)
    world.arm.reset_log()
    (finding,) = parse_value(assessment(doc["id"], PUBLIC_KEY), source="t")

    _deliver_all(world, [finding])  # auto playbook: planned from the graph row, approved at once, applied

    first, second = sorted(world.store.list(), key=lambda r: r.attempt)
    assert first.state == "stale"
    assert "allowBlobPublicAccess" not in first.changes[0]["before"]["properties"]
    assert second.state == "applied"
    assert second.changes[0]["before"]["properties"]["allowBlobPublicAccess"] is True
    (write,) = world.arm.resource_writes  # exactly one write: the live plan's, never the stale one
    assert ids.same(write.path, doc["id"])
    after = world.arm.get(doc["id"])
    assert after is not None
    assert after["properties"]["allowBlobPublicAccess"] is False
    assert after["properties"]["driftMarker"] == "changed-by-hand"  # the live change survived


def test_a_graph_row_stale_only_in_what_the_plan_leaves_alone_applies_at_once(world: World) -> None:
    doc = account("drifting-elsewhere", allowBlobPublicAccess=True)
    world.arm.add(doc)
    world.arm.freeze_graph()
    live = copy.deepcopy(doc)
    live["properties"]["driftMarker"] = "changed-by-hand"  # a property the plan neither writes nor overwrites
    world.arm.add(live)
    world.arm.reset_log()
    (finding,) = parse_value(assessment(doc["id"], PUBLIC_KEY), source="t")

    _deliver_all(world, [finding])

    (only,) = world.store.list()
    assert only.state == "applied"  # the approval binds to the write and what it overwrites: both unchanged
    (write,) = world.arm.resource_writes
    assert write.body == {"properties": {"allowBlobPublicAccess": False}}
    after = world.arm.get(doc["id"])
    assert after is not None
    assert after["properties"]["driftMarker"] == "changed-by-hand"


def test_graph_rows_become_arm_documents() -> None:
    doc = account("roundtrip")
    from remediator.testing.fake_graph import graph_row

    assert arm_document(graph_row(doc, "resources")) == doc


def test_graph_state_falls_back_to_live_reads(world: World) -> None:
    doc = account("notingraph")
    state = GraphState(LiveState(world.arm.clients()), Graph(world.arm.clients()))
    assert state.prefetch([doc["id"]]) == 0  # not there yet
    world.arm.add(doc)
    assert state.get(doc["id"]) == doc  # read live


# -- ARM's pace ---------------------------------------------------------------------------------------------


def test_a_429_holds_the_whole_subscription_not_just_the_call(world: World) -> None:
    arm = world.arm
    docs = [account(f"pace{i}", sub) for sub in (SUB, SUB2) for i in range(6)]
    arm.load(docs)
    arm.latency = 0.01
    arm.throttle(0.2, retry_after=0.5, methods=("GET",), subscription=SUB)
    vt = VirtualTime()  # ARM's throttle windows and the paces' waits, on one clock that waiting moves on
    arm.clock = vt.monotonic
    clients = arm.clients(clock=vt.monotonic, sleep=vt.sleep)
    state = LiveState(clients)
    arm.reset_log()
    errors: list[BaseException] = []

    def read(doc: dict[str, Any]) -> None:
        try:
            for _ in range(3):
                assert state.get(doc["id"]) is not None
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=read, args=(d,)) for d in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    stats = arm.throttle_stats
    assert stats["injected"] >= 1
    # after a 429, only requests already on the wire (at most the other 5 readers) reach ARM while the
    # subscription is throttled; nothing new is sent until Retry-After has passed
    assert stats["in_window"] <= stats["injected"] * 5
    pace = clients.paces()[SUB.lower()]
    assert pace.stats()["blocked_seconds"] >= 0.5 * stats["injected"] * 0.9
    other = clients.paces()[SUB2.lower()].stats()
    assert other["throttled"] == 0
    assert other["blocked_seconds"] == 0


def test_concurrent_applies_under_429_write_each_change_exactly_once(world: World) -> None:
    docs = [account(f"conc{i:02d}", allowBlobPublicAccess=True) for i in range(16)]
    world.arm.load(docs)
    world.arm.throttle(0.25, retry_after=0.05, methods=("PATCH",))  # its length is not the point: 50 ms
    records = [r for d in docs for r in parse_value(assessment(d["id"], PUBLIC_KEY), source="t")]
    world.engine.ingest(records, source="scan")

    world.engine.work(threads=6)

    states = {r.state for r in world.store.list()}
    assert states == {"applied"}
    patches = [ids.key(r.path) for r in world.arm.requests if r.method == "PATCH" and r.status == 200]
    assert sorted(patches) == sorted(ids.key(d["id"]) for d in docs)  # each exactly once
    assert world.arm.throttle_stats["injected"] >= 3


# -- the command ----------------------------------------------------------------------------------------------


def test_scan_dry_run_prints_the_backlog_plan_from_the_estate(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    docs = [account(f"estate{i}", allowBlobPublicAccess=True) for i in range(4)]
    world.arm.load(docs)
    for d in docs:
        world.arm.add(assessment(d["id"], PUBLIC_KEY))
    world.arm.reset_log()
    args = build_parser().parse_args(["scan", "--dry-run", "--subscription", SUB])
    import io

    out, err = io.StringIO(), io.StringIO()
    code = scan_run(args, out, clients=world.arm.clients(), err=err)

    text = out.getvalue()
    assert code == 2
    assert "allowBlobPublicAccess" in text
    assert "storage-disable-public-blob-access" in text
    assert "playbook" in text.splitlines()[-6] or "total" in text
    assert err.getvalue() == ""  # no progress bar when not a terminal
    assert world.arm.writes == []
    assert not [r for r in world.arm.requests if r.method == "GET" and "storageaccounts/estate" in r.path.lower()]


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_scan_dry_run_output_survives_a_narrow_encoding(tmp_path: Path, encoding: str) -> None:
    """``scan --dry-run`` writes through ``plan``'s writer: whole, strict JSON, ASCII-escaped when the
    stream cannot carry the text (a tag in Zürich's owner's name), never an encoding error."""
    rid = f"/subscriptions/{SUB}/resourceGroups/rg-prod-data/providers/Microsoft.Storage/storageAccounts/contosodata"
    docs = json.loads((ROOT / "remediator" / "samples" / "state" / "storage.json").read_text(encoding="utf-8"))
    for doc in docs:
        if doc["id"] == rid:
            doc["tags"] = {**doc.get("tags", {}), "owner": "Zoë Weiß ☁ Zürich"}
    (tmp_path / "state.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "graph.json").write_text(json.dumps({"count": 1, "data": [assessment(rid, NETWORK_KEY)]}))
    argv = ["scan", "--dry-run", "--from-file", str(tmp_path / "graph.json"),
            "--resources", str(tmp_path / "state.json")]

    # without REMEDIATOR_* (the harness's REMEDIATOR_REQUIRE_AZURITE is an unknown setting, said on stderr)
    harness_free = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}

    def cli(*extra: str, io_encoding: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "remediator", *argv, *extra], capture_output=True, timeout=60,
                              check=False, cwd=ROOT, env={**harness_free, "PYTHONIOENCODING": io_encoding})

    wide, narrow = cli("--output", "json", io_encoding="utf-8"), cli("--output", "json", io_encoding=encoding)
    assert (wide.returncode, narrow.returncode) == (2, 2), narrow.stderr
    assert narrow.stderr == b""
    assert "Zoë Weiß ☁ Zürich" in wide.stdout.decode("utf-8")
    assert json.loads(narrow.stdout.decode(encoding)) == json.loads(wide.stdout.decode("utf-8"))
    assert json.loads(narrow.stdout.decode(encoding))["summary"][0]["changes"] == 1
    text = cli(io_encoding=encoding)
    assert (text.returncode, text.stderr) == (2, b"")
    lines = text.stdout.decode(encoding).splitlines()
    assert lines[-1].startswith("total ")
    assert len(lines) == len(cli(io_encoding="utf-8").stdout.decode("utf-8").splitlines())
