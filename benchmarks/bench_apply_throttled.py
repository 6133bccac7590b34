"""Applying at ARM's pace: 500 approved changes, 20 % of the writes answered 429 (Retry-After 1 s).

Estate (``_estate.py``, FakeArm in a child process, real SDK clients): 500 storage accounts across
4 subscriptions, each with an approved ``storage-disable-public-blob-access`` remediation (planned
beforehand, not timed). Then, timed: ``Engine.work(threads=…)`` until every apply job is done,
with every request to the fake taking ``--latency`` (100 ms) and every fifth ``PATCH`` answered
429 ``Retry-After: 1``, after which ARM throttles that whole subscription for the second (as the
real one does). Privilege is ``standing`` (the PIM broker's own requests are left out: they are
writes too, and would only add the same pattern).

The ideal, printed beside the measurement: changes x (ARM requests per change x latency) ÷ the
allowed concurrency (subscriptions x per-subscription limit, capped by the worker threads), plus
the Retry-After waits (the 429s of the most throttled subscription x Retry-After: a throttled
subscription waits, the others go on). Target: wall time ≤ 1.5 x the ideal; every change applied
exactly once (one successful PATCH per account).

    python benchmarks/bench_apply_throttled.py
    python benchmarks/bench_apply_throttled.py --changes 100      # short
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _estate import PUBLIC_KEY, account_id, estate, subscriptions
from _util import SHIPPED_PLAYBOOKS, ensure_repo_on_path, table, verdict

ensure_repo_on_path()


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 (one linear script)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--changes", type=int, default=500)
    p.add_argument("--subs", type=int, default=4)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--per-sub-concurrency", type=int, default=4)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--retry-after", type=float, default=1.0)
    p.add_argument("--fraction", type=float, default=0.2)
    args = p.parse_args(argv)

    import logging

    from remediator.azure.reader import LiveState
    from remediator.config.settings import Settings
    from remediator.findings.parse import parse_value
    from remediator.lifecycle.engine import Engine
    from remediator.playbooks import load_playbooks
    from remediator.privilege.elevation import StandingElevator
    from remediator.store import SQLiteStore

    logging.getLogger("remediator").setLevel(logging.ERROR)  # one "standing privilege" warning per change
    subs = subscriptions(args.subs)
    per_sub = -(-args.changes // args.subs)
    with estate(subs=subs, per_sub=per_sub, latency=0.0, quota=None) as fake, tempfile.TemporaryDirectory() as tmp:
        clients = fake.clients(concurrency=args.per_sub_concurrency)
        settings = Settings(auto_budget_per_hour=100_000, group_wait=timedelta(0))
        store = SQLiteStore(Path(tmp) / "apply.db")
        engine = Engine(store=store, settings=settings, playbooks=load_playbooks(SHIPPED_PLAYBOOKS),
                        state=LiveState(clients), clients=clients, elevator=StandingElevator())
        records = []
        for n in range(args.changes):
            sub, i = subs[n % args.subs], n // args.subs
            rid = account_id(sub, i)
            records.extend(parse_value({
                "id": f"{rid}/providers/Microsoft.Security/assessments/{PUBLIC_KEY}", "name": PUBLIC_KEY,
                "type": "Microsoft.Security/assessments",
                "properties": {"resourceDetails": {"id": rid}, "status": {"code": "Unhealthy"},
                               "metadata": {"severity": "High"}}}, source="bench"))
        engine.ingest(records, source="bench")
        # plan (not timed): every plan job, leaving the apply jobs queued
        applies = []
        while (job := store.dequeue(visibility_seconds=600)) is not None:
            if job.kind == "apply":
                applies.append(job)
            else:
                engine.handle(job)
            store.complete(job)
        for job in applies:
            store.enqueue(job)
        approved = store.list(states=("approved",), limit=100_000)
        fake.call("reset")
        fake.call("latency", args.latency)
        fake.call("throttle", (args.fraction, args.retry_after))
        t0 = time.perf_counter()
        engine.work(threads=args.threads)
        wall = time.perf_counter() - t0
        stats = fake.call("stats")
        applied = store.list(states=("applied",), limit=100_000)
        others = [r for r in store.list(limit=100_000) if r.state != "applied"]
        store.close()

    per_change = 4  # re-plan: 2 GETs (tags, action), the PATCH, the verify GET
    concurrency = min(args.threads, args.subs * args.per_sub_concurrency)
    worst = max(stats["injected_by_sub"].values(), default=0)
    work = args.changes * per_change * args.latency / concurrency
    waits = worst * args.retry_after
    ideal = work + waits
    patches = stats["patches"]
    once = len(patches) == len(approved) == len(applied) and all(n == 1 for n in patches.values())
    print(f"{len(approved)} approved changes across {args.subs} subscriptions; "
          f"{args.latency * 1000:.0f} ms per request; "
          f"{args.fraction:.0%} of PATCHes answered 429 Retry-After {args.retry_after:g} s; {args.threads} threads, "
          f"{args.per_sub_concurrency} requests in flight per subscription")
    print(table(["", "seconds"], [
        [f"work: {args.changes} x {per_change} requests x {args.latency:g} s / {concurrency}", work],
        [f"waits: {worst} injected 429s on the most throttled subscription x {args.retry_after:g} s", waits],
        ["ideal", ideal],
        ["measured wall time", wall],
    ]))
    print(f"429s answered: {stats['throttle']}; requests {stats['requests']:,}; per subscription "
          f"{stats['per_subscription']}")
    print(f"applied {len(applied)}, other states {len(others)}; successful PATCHes per account: "
          f"{sorted(set(patches.values()))}; exactly once: {verdict(once)}")
    ok = wall <= 1.5 * ideal and once
    print(f"wall <= 1.5 x ideal: {verdict(wall <= 1.5 * ideal)} ({wall / ideal:.2f} x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
