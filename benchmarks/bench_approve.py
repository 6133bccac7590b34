"""Approve click → answer: how long Slack waits for remediator, in-process, on the real stack.

The stack is the one ``remediator serve`` runs, with Azure and Slack replaced by the shipped fakes:
SQLiteStore on a temporary file, FakeArm seeded with ``remediator/samples/state`` plus a clone of
the sample resources for every finding, FakeSlack (a real HTTP server) behind the worker's
``SlackChat`` and the App's ``SlackDirectory``, the engine built by ``build_engine`` and wired
exactly as ``remediator.app.wiring.build_slack_engine`` wires it (the one difference: the worker's
``ChannelPacer`` runs on a virtual clock, so posting the approval messages takes no real
seconds), and the bolt App from ``bot.app.build_app``.

``--clicks`` remediations (default 300, NSG and storage-network findings on resources of their
own, built as in ``bench_ingest.py``) are ingested one at a time and planned by the worker,
with digests off (``storm_threshold`` 0), so each has its own approval message; the worker posts
them (engine and store on the pacer's virtual clock, so ``group_wait`` passes without waiting).
Then, for each one, a signed Approve click by a member
of the approvers' user group is built (``FakeSlack.block_actions``: the form body Slack sends,
signed with the app's secret) and handed to ``bot.endpoint.SlackEndpoint.handle`` as the
Functions handler and ``remediator serve`` do (signature on the raw bytes, the replay cache's
row in SQLite, the shape check, then bolt); the clock stops at the ``BoltResponse``. The App has
``process_before_response=True``, so that answer comes after the whole listener: the engine's
decision (compare-and-set on SQLite, audit, two queued jobs) and the ``chat.update`` of the
message (a real HTTP round trip to FakeSlack).

Baseline, in the same run, interleaved click by click: the same click with a wrong signature,
which the endpoint refuses (401) before bolt parses it: the HMAC and nothing else, so
"replay cache + bolt + engine + chat.update" = click - baseline. ``--http`` also sends another ``--clicks`` clicks
through ``bot.http.LocalServer`` (waitress) over real HTTP (urllib, a new connection per click).

Target: p99 <= 50 ms (Slack's own limit is 3,000 ms), printed as PASS or MISS (never the exit
status). The first ``--warmup`` clicks (default 10; the first one fills the user-group cache with
``usergroups.users.list``) are not counted. ``--profile`` times the parts of a click.

    python benchmarks/bench_approve.py                  # 300 clicks
    python benchmarks/bench_approve.py --http --profile
    python benchmarks/bench_approve.py --clicks 20 --warmup 2 --json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit, ensure_repo_on_path, load_average, table, verdict
from bench_ingest import DEFAULT_SEED, SAMPLES, Factory, PhaseTimer, bench_settings, ndjson

ensure_repo_on_path()

if TYPE_CHECKING:
    from bot.chat import SlackChat
    from bot.endpoint import SlackEndpoint
    from bot.http import App
    from remediator.lifecycle.engine import Engine
    from remediator.store import SQLiteStore
    from remediator.testing import FakeArm
    from remediator.testing.fake_slack import FakeSlack, SignedRequest

TARGET_P99_MS = 50.0
SLACK_LIMIT_MS = 3000.0
TEAM = "T0TEAM00001"
ONCALL = "S0614TZR7"  # the bench workspace's on-call user group (BENCH_ROLES maps security-oncall to it)
MEMBERS = tuple(f"U0MEMBER{i:03d}" for i in range(40))
CHANNEL = "C0REMEDIATE"
BAD_SIGNATURE = "v0=" + "0" * 64
APPROVAL_MIX = {"nsg": 50, "storage-network": 50}


class VirtualTime:
    """A clock that runs in real time plus every second slept: ``sleep`` returns at once.

    Given to ``ChannelPacer`` (and the worker client's Retry-After handler), posts are spaced in
    this clock exactly as in real time, without waiting.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def clock(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.offset += max(seconds, 0.0)

    def wall(self) -> datetime:
        """The same virtual time as an aware UTC datetime: the engine's and the store's clock (job
        delays such as ``group_wait`` pass when the pacer sleeps, or when ``sleep`` is called)."""
        return datetime.now(UTC) + timedelta(seconds=self.offset)


@dataclass
class Stack:
    slack: FakeSlack
    arm: FakeArm
    store: SQLiteStore
    engine: Engine
    app: App
    endpoint: SlackEndpoint
    chat: SlackChat
    settings: Any
    vtime: VirtualTime
    messages: dict[str, dict[str, str]] = field(default_factory=dict)  # remediation id -> its message ref


@contextmanager
def slack_stack(db: Path, *, arm_docs: Sequence[dict[str, Any]] = (), state: Any = None,
                **overrides: Any) -> Iterator[Stack]:
    """The whole Slack stack (see the module docstring); ``state`` replaces live reads from FakeArm."""
    from bot.app import build_app
    from bot.chat import ChannelPacer, SlackChat, StoreDigestIndex, ack_client, worker_client
    from bot.directory import SlackDirectory
    from bot.endpoint import build_endpoint
    from remediator.app.wiring import build_engine
    from remediator.azure.reader import LiveState
    from remediator.azure.state import SavedState
    from remediator.store import SQLiteStore
    from remediator.testing import FakeArm
    from remediator.testing.fake_slack import FakeSlack

    vtime = VirtualTime()
    with ExitStack() as stack:
        slack = stack.enter_context(FakeSlack(team_id=TEAM, groups={ONCALL: MEMBERS}))
        arm = stack.enter_context(FakeArm())
        store = stack.enter_context(SQLiteStore(db, clock=vtime.wall))
        arm.load(SavedState.from_path(SAMPLES / "state").documents())
        arm.load(arm_docs)
        settings = bench_settings(slack_bot_token=slack.token, slack_signing_secret=slack.signing_secret,
                                  slack_channel=CHANNEL, slack_api_url=slack.base_url, slack_team_id=TEAM,
                                  **overrides)
        clients = arm.clients()
        # remediator.app.wiring.build_slack_engine's wiring, with the pacer (and Retry-After waits) on virtual time
        chat = SlackChat(worker_client(settings, sleep=vtime.sleep), settings,
                         pacer=ChannelPacer(clock=vtime.clock, sleep=vtime.sleep))
        directory = SlackDirectory(ack_client(settings), team_id=settings.slack_team_id)
        engine = build_engine(settings, chat=chat, directory=directory, store=store, clients=clients,
                              state=state if state is not None else LiveState(clients), clock=vtime.wall)
        chat.requirement = engine.requirement
        chat.digests = StoreDigestIndex(engine.store)
        app = build_app(engine, settings)
        endpoint = build_endpoint(app, settings, store, clock=vtime.wall)
        yield Stack(slack=slack, arm=arm, store=store, engine=engine, app=app, endpoint=endpoint, chat=chat,
                    settings=settings, vtime=vtime)


# --- clicks -----------------------------------------------------------------------------------------


@dataclass
class Clicks:
    name: str
    total_ms: list[float] = field(default_factory=list)  # build the signed request + dispatch
    dispatch_ms: list[float] = field(default_factory=list)  # dispatch only (what the server spends)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, total: float, dispatch: float, status: int) -> None:
        self.total_ms.append(total * 1000)
        self.dispatch_ms.append(dispatch * 1000)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def stats(self, which: str = "total") -> dict[str, float]:
        values = sorted(self.total_ms if which == "total" else self.dispatch_ms)
        return {"p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99),
                "max": values[-1] if values else float("nan"), "mean": sum(values) / len(values) if values else 0.0}


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (p99 of 300 values is the 297th)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return float(sorted_values[int(rank) - 1])


def click_request(stack: Stack, rid: str, user: str, *, bad_signature: bool = False) -> SignedRequest:
    """The signed click Slack would send for the approval message of ``rid`` (``stack.messages``)."""
    from bot import blocks

    msg = stack.messages.get(rid, {})
    req = stack.slack.block_actions(action_id=blocks.ACTION_APPROVE, value=rid, user_id=user, team_id=TEAM,
                                    channel=msg.get("channel", CHANNEL), message_ts=msg.get("ts", ""))
    return req.with_headers(x_slack_signature=BAD_SIGNATURE) if bad_signature else req


def click_in_process(stack: Stack, rid: str, user: str, out: Clicks, *, bad_signature: bool = False) -> int:
    start = time.perf_counter()
    req = click_request(stack, rid, user, bad_signature=bad_signature)
    built = time.perf_counter()
    resp = stack.endpoint.handle(req.body.encode(), req.headers)
    done = time.perf_counter()
    out.add(done - start, done - built, resp.status)
    return int(resp.status)


def click_over_http(stack: Stack, url: str, rid: str, user: str, out: Clicks, *, bad_signature: bool = False) -> int:
    from remediator.testing.fake_slack import FakeSlack

    start = time.perf_counter()
    req = click_request(stack, rid, user, bad_signature=bad_signature)
    built = time.perf_counter()
    status, _ = FakeSlack.send(url + "/slack/events", req)
    done = time.perf_counter()
    out.add(done - start, done - built, status)
    return status


def open_remediations(stack: Stack, factory: Factory, clones: Sequence[tuple[str, int]]) -> list[str]:
    """One ingest per finding; the worker plans them and posts one approval message each (the
    stack runs with digests off, ``storm_threshold`` 0)."""
    from remediator.findings.parse import parse_bytes

    finding_ids: list[str] = []
    for kind, i in clones:
        (result,) = stack.engine.ingest(parse_bytes(ndjson([factory.finding(kind, i)]), source="bench"),
                                        source="bench")
        if result.outcome != "queued":
            raise SystemExit(f"clone {kind} {i} was not queued: {result.outcome} {result.reason}")
        finding_ids.append(str(result.record["id"]))
    stack.engine.work()  # plan jobs, then (group_wait later) the announce and the posts
    stack.vtime.sleep(stack.settings.group_wait.total_seconds())
    stack.engine.work()
    ids: list[str] = []
    for row in stack.store.inbound(finding_ids):
        rem = stack.engine.get(row.remediation_id or "")
        if rem is None or rem.state != "pending_approval" or not rem.message:
            raise SystemExit(f"finding {row.finding_id} did not open a posted request: {rem}")
        ids.append(rem.id)
        stack.messages[rem.id] = dict(rem.message)
    return ids


def run(args: argparse.Namespace) -> dict[str, Any]:
    factory = Factory(seed=args.seed)
    rounds = 2 if args.http else 1
    n = args.warmup + args.clicks * rounds
    clones = list(zip(factory.kinds(n, APPROVAL_MIX), range(n), strict=True))
    docs = [doc for kind, i in clones for doc in factory.docs(kind, i)]
    with tempfile.TemporaryDirectory(prefix="bench-approve-") as tmp, slack_stack(Path(tmp) / "approve.db",
                                                                                 arm_docs=docs,
                                                                                 storm_threshold=0) as stack:
        setup_start = time.perf_counter()
        ids = open_remediations(stack, factory, clones)
        setup_s = time.perf_counter() - setup_start
        posted = len(stack.slack.calls_to("chat.postMessage"))
        stack.slack.reset()
        users = iter(MEMBERS * (n // len(MEMBERS) + 1))
        warm = Clicks("warm-up")
        for rid in ids[:args.warmup]:
            click_in_process(stack, rid, next(users), warm)
        approve, baseline = Clicks("Approve click"), Clicks("baseline: bad signature (the endpoint refuses, 401)")
        in_process = ids[args.warmup:args.warmup + args.clicks]
        phases = PhaseTimer() if args.profile else None
        if phases is not None:
            wrap_click_phases(phases)
        try:
            for rid in in_process:
                user = next(users)
                if phases is not None:
                    phases.active = False
                click_in_process(stack, rid, user, baseline, bad_signature=True)
                if phases is not None:
                    phases.active = True
                click_in_process(stack, rid, user, approve)
        finally:
            if phases is not None:
                phases.restore()
        http: tuple[Clicks, Clicks] | None = None
        if args.http:
            from bot.http import LocalServer

            http = (Clicks("Approve click over HTTP (LocalServer)"), Clicks("baseline over HTTP: bad signature"))
            with LocalServer(stack.engine, stack.settings, port=0, endpoint=stack.endpoint, worker=False,
                             ingest=False) as server:
                for rid in ids[args.warmup + args.clicks:]:
                    user = next(users)
                    click_over_http(stack, server.url, rid, user, http[1], bad_signature=True)
                    click_over_http(stack, server.url, rid, user, http[0])
        states = [r.state for r in stack.store.list(limit=n + 10)]
        checks = {
            "remediations": n,
            "approval_messages_posted": posted,
            "approved": states.count("approved"),
            "chat_update_calls": len(stack.slack.calls_to("chat.update")),
            "ephemeral_refusals": len(stack.slack.calls_to("chat.postEphemeral")),
            "usergroups_lookups": len(stack.slack.calls_to("usergroups.users.list")),
            "setup_s": round(setup_s, 2),
            "kinds": {k: sum(1 for c, _ in clones if c == k) for k in APPROVAL_MIX},
        }
    result = report(args, approve, baseline, http, checks)
    if phases is not None:
        result["profile"] = {label: {"ms_per_click": round(phases.totals[label] * 1000 / len(in_process), 3),
                                     "calls": phases.calls[label]} for label in phases.labels}
    return result


def wrap_click_phases(phases: PhaseTimer) -> None:
    """Time the parts of a click: bolt's verification, the engine's decision, the message update."""
    from slack_sdk import WebClient

    from bot import blocks
    from bot.endpoint import SlackEndpoint
    from bot.http import App
    from bot.replay import ReplayCache
    from remediator.lifecycle.engine import Engine
    from remediator.store.sqlite import SQLiteStore

    for owner, attr, label in (
        (SlackEndpoint, "handle", "SlackEndpoint.handle (verify, replay, shape, bolt: all below)"),
        (ReplayCache, "first_seen", "  replay cache (a lock row in SQLite)"),
        (App, "dispatch", "bolt App.dispatch (everything below included)"),
        (Engine, "approve", "  Engine.approve (checks, CAS, audit, 2 jobs)"),
        (SQLiteStore, "transition", "    SQLiteStore.transition (compare-and-set)"),
        (SQLiteStore, "audit", "    SQLiteStore.audit"),
        (SQLiteStore, "enqueue", "    SQLiteStore.enqueue"),
        (Engine, "get", "  Engine.get (the listener re-reads the remediation)"),
        (blocks, "approval_message", "  render the approval message"),
        (WebClient, "chat_update", "  chat.update (HTTP to FakeSlack)"),
    ):
        phases.wrap(owner, attr, label)


def report(args: argparse.Namespace, approve: Clicks, baseline: Clicks, http: tuple[Clicks, Clicks] | None,
           checks: dict[str, Any]) -> dict[str, Any]:
    p99 = approve.stats()["p99"]
    rows = {"approve": approve, "baseline": baseline}
    if http is not None:
        rows |= {"http_approve": http[0], "http_baseline": http[1]}
    return {
        "benchmark": "approve",
        "python": sys.version.split()[0],
        "load_average_1m": {"start": args.load_start, "end": load_average()},
        "clicks": args.clicks, "warmup": args.warmup, "seed": args.seed,
        "checks": checks,
        "latency_ms": {key: {"name": c.name, "statuses": c.statuses,
                             "build_and_dispatch": {k: round(v, 3) for k, v in c.stats("total").items()},
                             "dispatch_only": {k: round(v, 3) for k, v in c.stats("dispatch").items()}}
                       for key, c in rows.items()},
        "engine_and_update_ms_p50": round(approve.stats()["p50"] - baseline.stats()["p50"], 3),
        "target": {"p99_ms_max": TARGET_P99_MS, "p99_ms": round(p99, 3), "x_target": round(p99 / TARGET_P99_MS, 3),
                   "x_slack_limit": round(p99 / SLACK_LIMIT_MS, 4), "verdict": verdict(p99 <= TARGET_P99_MS)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clicks", type=int, default=300, help="timed Approve clicks (default 300)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed clicks first (default 10)")
    parser.add_argument("--http", action="store_true", help="also click through LocalServer over real HTTP")
    parser.add_argument("--profile", action="store_true", help="time the parts of the in-process clicks")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    args.load_start = load_average()
    if args.clicks < 1 or args.warmup < 1:
        parser.error("--clicks and --warmup must be >= 1 (the first click fills the user-group cache)")
    result = run(args)
    return emit(result, as_json=args.json, print_text=print_text)


def print_text(result: dict[str, Any]) -> None:
    checks, lat, target = result["checks"], result["latency_ms"], result["target"]
    loads = result["load_average_1m"]
    print(f"Approve click -> BoltResponse, in-process (SlackEndpoint.handle), SQLite; {result['clicks']} clicks after "
          f"{result['warmup']} warm-up; load average {loads['start']} -> {loads['end']}")
    print(f"{checks['remediations']} remediations {checks['kinds']} opened and posted in {checks['setup_s']} s; "
          f"{checks['approved']} approved, {checks['chat_update_calls']} chat.update, "
          f"{checks['ephemeral_refusals']} refusals, {checks['usergroups_lookups']} usergroups.users.list\n")
    rows = []
    for c in lat.values():
        for which, label in (("build_and_dispatch", "build + dispatch"), ("dispatch_only", "dispatch only")):
            s = c[which]
            rows.append([f"{c['name']}: {label}", s["p50"], s["p90"], s["p99"], s["max"],
                         ", ".join(f"{k}x{v}" for k, v in sorted(c["statuses"].items()))])
    print(table(["clicks", "p50 ms", "p90 ms", "p99 ms", "max ms", "HTTP status"], rows))
    print(f"\nengine + chat.update (p50 click - p50 baseline): {result['engine_and_update_ms_p50']:.2f} ms")
    if "profile" in result:
        print("\nper click (mean ms, phase timers):")
        print(table(["part", "ms per click", "calls"],
                    [[label, p["ms_per_click"], p["calls"]] for label, p in result["profile"].items()]))
    print(f"\np99 {target['p99_ms']:.2f} ms = {target['x_target']:.3f}x the {TARGET_P99_MS:.0f} ms target, "
          f"{target['x_slack_limit']:.4f}x Slack's {SLACK_LIMIT_MS:,.0f} ms: {target['verdict']}")


if __name__ == "__main__":
    raise SystemExit(main())
