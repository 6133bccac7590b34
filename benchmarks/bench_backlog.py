"""The backlog: from ``scan`` to every plan ready, against ARM at 100 ms a request.

Estate (``_estate.py``, FakeArm in a child process, real SDK clients over HTTP): 2,000 storage
accounts across 4 subscriptions, each with 5 open findings (two unhealthy assessments, a
non-compliant policy state, two active alerts): 10,000 findings. Every request to the fake takes
``--latency`` (100 ms) and Resource Graph keeps its real quota (15 requests per 5 s per caller).

Measured, in one run:

* **remediator**: ``Graph.scan`` (Resource Graph, paged), ``Engine.ingest`` into SQLite, then the
  worker (``Engine.work(threads=--threads)``) until every plan job is done: each plan job reads its
  findings' resources from Resource Graph in bulk. Every plan ready = no finding waiting in the inbox.
  ``auto_budget_per_hour`` is 0 so that nothing is applied: this measures planning only.
* **baseline**: one GET per finding, sequentially (``LiveState`` through the same SDK clients, no
  bulk read), timed on a ``--sample`` of findings and **extrapolated** to all of them (the whole
  baseline would take about 10,000 x 100 ms ≈ 17 minutes).
* peak RSS of this process (the fake's memory is in its own process).

Target: every plan ready in ≤ 30 s; peak RSS ≤ 200 MiB.

    python benchmarks/bench_backlog.py                      # the full run
    python benchmarks/bench_backlog.py --per-sub 50 --sample 20   # a short one while developing
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _estate import estate, subscriptions
from _util import SHIPPED_PLAYBOOKS, ensure_repo_on_path, table, verdict

ensure_repo_on_path()


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 (one linear script)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subs", type=int, default=4)
    p.add_argument("--per-sub", type=int, default=500, help="storage accounts per subscription (5 findings each)")
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--sample", type=int, default=50, help="findings planned one GET each for the baseline")
    args = p.parse_args(argv)

    from remediator.azure.graph import Graph, Scope
    from remediator.azure.reader import LiveState
    from remediator.config.settings import Settings
    from remediator.lifecycle.engine import Engine
    from remediator.planning.planner import Planner
    from remediator.playbooks import load_playbooks
    from remediator.privilege.elevation import StandingElevator
    from remediator.store import SQLiteStore

    subs = subscriptions(args.subs)
    playbooks = load_playbooks(SHIPPED_PLAYBOOKS)
    with estate(subs=subs, per_sub=args.per_sub, latency=args.latency) as fake, \
            tempfile.TemporaryDirectory() as tmp:
        clients = fake.clients()
        settings = Settings(auto_budget_per_hour=0, group_wait=timedelta(0), storm_threshold=5)
        store = SQLiteStore(Path(tmp) / "backlog.db")
        engine = Engine(store=store, settings=settings, playbooks=playbooks, state=LiveState(clients),
                        clients=clients, elevator=StandingElevator(), graph=Graph(clients))
        fake.call("reset")
        t0 = time.perf_counter()
        scan = Graph(clients).scan(Scope(subscriptions=tuple(subs)))
        t_scan = time.perf_counter()
        answers = engine.ingest(scan.records, source="scan")
        t_ingest = time.perf_counter()
        engine.work(threads=args.threads)
        t_done = time.perf_counter()
        waiting = store.waiting(received_before=store_clock_far_future(), limit=10)
        stats = fake.call("stats")
        rems = store.list(limit=100_000)
        elapsed = t_done - t0

        # the baseline: one GET per finding, sequentially, on a sample
        sample = scan.findings[: args.sample]
        planner = Planner(playbooks=playbooks, state=LiveState(clients))
        fake.call("reset")
        b0 = time.perf_counter()
        for f in sample:
            planner.plan_one(f)
        per_finding = (time.perf_counter() - b0) / max(len(sample), 1)
        base_stats = fake.call("stats")
        store.close()
    baseline = per_finding * len(scan.findings)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    queued = sum(1 for a in answers if a.outcome == "queued")
    print(f"estate: {args.subs} subscriptions x {args.per_sub} accounts, {len(scan.findings):,} open findings; "
          f"{args.latency * 1000:.0f} ms per request; Resource Graph quota 15/5 s; {args.threads} worker threads")
    print(table(["phase", "seconds", "requests"], [
        ["scan (Resource Graph, paged)", t_scan - t0, scan.queries],
        ["ingest (dedup, SQLite inbox)", t_ingest - t_scan, 0],
        ["plan jobs (bulk reads + plan)", t_done - t_ingest, stats["graph"] - scan.queries],
        ["total: scan -> every plan ready", elapsed, stats["requests"]],
    ]))
    print(f"findings queued {queued:,}; remediations {len(rems):,} "
          f"({sum(1 for r in rems if r.state == 'pending_approval'):,} pending); still waiting: {len(waiting)}; "
          f"resource GETs during planning: {stats['gets']:,}")
    print(f"baseline, live GETs per finding, sequential: {per_finding * 1000:.1f} ms/finding measured on "
          f"{len(sample)} findings ({base_stats['gets']} GETs: today's path reads the resource for the tags "
          f"and again in the action), extrapolated to {len(scan.findings):,}: {baseline:,.0f} s "
          f"(strictly one GET each would be {len(scan.findings) * args.latency:,.0f} s)")
    print(f"ratio: {elapsed / baseline:.3f} of the baseline ({baseline / elapsed:.0f}x faster)")
    print(f"peak RSS (this process; the fake runs in its own): {rss:.1f} MiB")
    ok_time = elapsed <= 30 and not waiting
    ok_rss = rss <= 200
    print(f"every plan ready <= 30 s: {verdict(ok_time)} ({elapsed:.1f} s); peak RSS <= 200 MiB: {verdict(ok_rss)}")
    return 0 if ok_time and ok_rss else 1


def store_clock_far_future() -> object:
    from datetime import UTC, datetime

    return datetime(2100, 1, 1, tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
