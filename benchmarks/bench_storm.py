"""A storm of 10,000 findings: the messages Slack sees, how fast they are posted, the memory it takes.

``--findings`` (default 10,000) findings of two Slack-approval playbooks
(``storage-restrict-network-access`` 60%, ``nsg-close-management-ports`` 40%), each on a
resource of its own, in 4 resource groups of one subscription (built as in ``bench_ingest.py``),
arrive as NDJSON, are parsed (``parse_bytes``) and ingested, and the worker runs
(``engine.work()``) until the queue is empty, posting through the real ``SlackChat`` to FakeSlack
(the stack of ``bench_approve.py``: SQLiteStore, the engine wired as ``build_slack_engine`` does,
engine and store on the virtual clock below).

``--chunks`` (default ``0,64``) says how the storm arrives: 0 = in one ``ingest`` call (one POST
of the whole batch to ``/api/findings``), then the worker; 64 = in calls of 64 events, the
``maxEventBatchSize`` of the Functions Event Hub trigger in ``host.json``, one every
``--interval`` seconds (default 0.1: the storm takes ~16 s to arrive), with the worker running
after each (it keeps up: the plan jobs are done before the next batch). New approval requests are
announced ``group_wait`` (default 10 s) after the plan that opened them, by one job that groups
every request not yet announced, whichever delivery brought it (``storm_threshold``, default 5,
per playbook and resource group, up to 500 per digest): a storm arriving over many deliveries
becomes a digest per group per ``group_wait`` window, not one per delivery.

Posting goes through the real ``ChannelPacer`` (1 message per second per channel) on a virtual
clock: real time plus every second the pacer slept, so a run that would post for minutes takes
seconds and the recorded post times are still the ones the pacer would produce. The peak rate
per channel is the most posts within any 1-second window [t, t + 1) of the times the pacer let a
post go (``ChannelPacer.sent``). A short run in real time
(``--real-findings``, default 50, one playbook in ``--real-groups`` 5 groups → 5 digests) shows
the real spacing, on the monotonic clock and as FakeSlack received the posts (its wall-clock
receipt times jitter by a few milliseconds either way).

Each storm runs in a fresh interpreter, so that its peak RSS is its own: ``ru_maxrss`` (KiB on
Linux) of the child, also shown with the child's ``VmHWM`` (the high-water mark of its own
address space) and its RSS once the stack is built, before the storm (the baseline). The child
is started from a minimal ``python -S -I`` launcher, because on Linux a process's ``ru_maxrss``
carries over the high-water mark of the address space it was spawned from (see the README); the
launcher alone is printed as the floor. Resource state is made on demand from the samples
(``ClonedState``), so no saved copy of 10,000 resources sits in the child's memory.

Target: peak RSS <= 200 MB (MiB here, which is stricter), printed as PASS or MISS (never the exit
status). Everything is stored for real: 10,000 remediations, their audit events and jobs.

    python benchmarks/bench_storm.py                    # 10,000 findings, in one ingest and in 64s
    python benchmarks/bench_storm.py --findings 500 --chunks 0 --real-findings 10 --real-groups 2 --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import REPO_ROOT, emit, ensure_repo_on_path, load_average, table, verdict

TARGET_RSS_MIB = 200.0
DEFAULT_SEED = 20261128
STORM_MIX = {"storage-network": 60, "nsg": 40}
GROUPS = ("rg-storm-web", "rg-storm-data", "rg-storm-ml", "rg-storm-ops", "rg-storm-dev")
STORM_GROUPS = 4  # the storm's resource groups (the first four); the real-time run may use all five
REAL_MIX = {"storage-network": 1}
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
FLOOR = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
_DIGEST_TEXT = re.compile(r"^(\d+) remediations of ")


# --- the child: one storm ---------------------------------------------------------------------------


def proc_status_kib(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in KiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_per_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most events within any half-open ``window`` [t, t + window) starting at an event."""
    ordered = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def message_figures(posts: Sequence[tuple[str, str, float]], sent: Sequence[tuple[str, float]], *,
                    real: bool) -> dict[str, Any]:
    """Messages (digests by size, single requests) from FakeSlack's ``chat.postMessage`` calls
    (channel, text, receipt time), and the posting rate from the pacer's slots (channel, time)."""
    sizes: Counter[int] = Counter()
    singles = 0
    for _, text, _ in posts:
        m = _DIGEST_TEXT.match(text)
        if m:
            sizes[int(m.group(1))] += 1
        else:
            singles += 1
    pacer_times: dict[str, list[float]] = {}
    for channel, at in sent:
        pacer_times.setdefault(channel, []).append(at)
    received: dict[str, list[float]] = {}
    for channel, _, at in posts:
        received.setdefault(channel, []).append(at)
    gaps = [b - a for times in (received if real else pacer_times).values()
            for a, b in itertools.pairwise(sorted(times))]
    return {
        "messages": {"chat.postMessage": len(posts), "digests": sum(sizes.values()), "single": singles,
                     "digest_sizes": {str(k): v for k, v in sorted(sizes.items(), reverse=True)},
                     "remediations_announced": sum(k * v for k, v in sizes.items()) + singles,
                     "channels": len(pacer_times)},
        "peak_posts_per_channel_1s": max((peak_per_window(t) for t in pacer_times.values()), default=0),
        "gap_s": {"min": round(min(gaps), 3), "max": round(max(gaps), 3)} if gaps else None,
        "posting_span_s": round(max((max(t) - min(t) for t in pacer_times.values() if t), default=0.0), 1),
    }


def storm(args: argparse.Namespace) -> dict[str, Any]:
    """Run one storm in this process and return its figures (``--child``)."""
    import resource
    import tempfile

    ensure_repo_on_path()
    from bench_approve import slack_stack
    from bench_ingest import ClonedState, Factory, ndjson

    from bot.chat import ChannelPacer
    from remediator.findings.parse import parse_bytes

    real = args.child == "real"
    groups = GROUPS[: args.groups]
    factory = Factory(seed=args.seed, groups=groups, subscriptions=1)
    state = ClonedState(factory)
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp, slack_stack(Path(tmp) / "storm.db",
                                                                               state=state) as stack:
        if real:
            stack.chat.pacer = ChannelPacer()  # the real clock and sleep
        rss_setup = proc_status_kib("VmRSS")
        kinds = factory.kinds(args.findings, REAL_MIX if real else STORM_MIX)
        chunk = args.chunk or args.findings
        outcomes: Counter[str] = Counter()
        parse_s = ingest_s = work_s = 0.0
        calls = jobs = 0
        slept_before = stack.vtime.offset
        for start in range(0, args.findings, chunk):
            lines = [factory.finding(kinds[i], i) for i in range(start, min(start + chunk, args.findings))]
            t0 = time.perf_counter()
            records = parse_bytes(ndjson(lines), source="eventhub")
            t1 = time.perf_counter()
            results = stack.engine.ingest(records, source="eventhub")
            t2 = time.perf_counter()
            parse_s, ingest_s, calls = parse_s + t1 - t0, ingest_s + t2 - t1, calls + 1
            outcomes.update(r.outcome for r in results)
            del lines, records, results
            if args.chunk:  # deliveries spread over time, the worker keeping up between them
                jobs += stack.engine.work()
                work_s += time.perf_counter() - t2
                stack.vtime.sleep(args.interval)
        wait = stack.settings.group_wait.total_seconds()
        idle = 0
        while idle < 2:  # until nothing is left, delayed announce jobs included
            t0 = time.perf_counter()
            done = stack.engine.work()
            work_s += time.perf_counter() - t0
            jobs += done
            idle = idle + 1 if done == 0 else 0
            if done == 0:
                stack.vtime.sleep(wait)
        slept = stack.vtime.offset - slept_before
        maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm_kib = proc_status_kib("VmHWM")
        posts = [(str(c.body.get("channel")), str(c.body.get("text", "")), c.at)
                 for c in stack.slack.calls_to("chat.postMessage")]
        figures = message_figures(posts, stack.chat.pacer.sent, real=real)
    return {
        "mode": "real time" if real else "virtual time",
        "findings": args.findings, "chunk": args.chunk, "interval_s": args.interval if args.chunk else None,
        "ingest_calls": calls, "groups": list(groups),
        "kinds": dict(Counter(kinds)), "outcomes": dict(outcomes),
        "parse_s": round(parse_s, 3), "ingest_s": round(ingest_s, 3), "work_s": round(work_s, 3), "jobs": jobs,
        "state_reads": state.reads,
        **figures,
        "pacer_slept_s": round(slept, 1),
        "rss_after_setup_mib": round((rss_setup or 0) / 1024, 1),
        "ru_maxrss_mib": round(maxrss_kib / 1024, 1),
        "vmhwm_mib": round((hwm_kib or 0) / 1024, 1),
    }


# --- the parent: one fresh interpreter per storm ----------------------------------------------------


def spawn(argv: Sequence[str]) -> str:
    """Run ``argv`` from the minimal launcher (see the module docstring); its stdout."""
    done = subprocess.run([sys.executable, "-S", "-I", "-c", LAUNCHER, *argv], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"storm child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def child(args: argparse.Namespace, mode: str, findings: int, chunk: int, groups: int) -> dict[str, Any]:
    out = spawn([sys.executable, str(Path(__file__).resolve()), "--child", mode, "--findings", str(findings),
                 "--chunk", str(chunk), "--groups", str(groups), "--seed", str(args.seed),
                 "--interval", str(args.interval)])
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    floor_kib = int(spawn([sys.executable, "-S", "-c", FLOOR]).strip())
    runs = [child(args, "virtual", args.findings, chunk, STORM_GROUPS) for chunk in args.chunks]
    real = child(args, "real", args.real_findings, 0, args.real_groups) if args.real_findings else None
    worst = max(r["ru_maxrss_mib"] for r in runs)
    return {
        "benchmark": "storm",
        "python": sys.version.split()[0],
        "load_average_1m": {"start": args.load_start, "end": load_average()},
        "seed": args.seed,
        "launcher_floor_ru_maxrss_mib": round(floor_kib / 1024, 1),
        "runs": runs,
        "real_time": real,
        "target": {"rss_mib_max": TARGET_RSS_MIB, "peak_rss_mib": worst, "verdict": verdict(worst <= TARGET_RSS_MIB)},
    }


def print_text(result: dict[str, Any]) -> None:
    loads = result["load_average_1m"]
    runs = result["runs"]
    first = runs[0]
    print(f"Storm: {first['findings']:,} findings {first['kinds']} in {len(first['groups'])} resource groups; "
          f"load average {loads['start']} -> {loads['end']}\n")
    rows = []
    for r in runs:
        m = r["messages"]
        how = "one ingest" if not r["chunk"] else \
            f"{r['ingest_calls']} ingests of {r['chunk']}, {r['interval_s']} s apart"
        rows.append([how, m["chat.postMessage"], m["digests"], m["single"], r["peak_posts_per_channel_1s"],
                     r["posting_span_s"], r["parse_s"] + r["ingest_s"], r["work_s"], r["rss_after_setup_mib"],
                     r["ru_maxrss_mib"], r["vmhwm_mib"]])
    print(table(["arrival", "posts", "digests", "single", "peak/ch/1s", "posting s (virtual)", "parse+ingest s",
                 "work s", "RSS before MiB", "peak RSS MiB", "VmHWM MiB"], rows))
    for r in runs:
        how = "one ingest" if not r["chunk"] else f"chunks of {r['chunk']}"
        print(f"  {how}: digest sizes {r['messages']['digest_sizes']}, "
              f"{r['messages']['remediations_announced']:,} remediations announced, outcomes {r['outcomes']}, "
              f"{r['jobs']:,} jobs, min gap {r['gap_s']['min'] if r['gap_s'] else '-'} s")
    print(f"\n(launcher floor: ru_maxrss {result['launcher_floor_ru_maxrss_mib']} MiB)")
    real = result["real_time"]
    if real:
        gap = real["gap_s"] or {"min": float("nan"), "max": float("nan")}
        print(f"\nReal time: {real['findings']} findings in {len(real['groups'])} groups -> "
              f"{real['messages']['chat.postMessage']} posts ({real['messages']['digests']} digests) in "
              f"{real['work_s']:.2f} s; gaps between posts as FakeSlack received them {gap['min']:.3f}-"
              f"{gap['max']:.3f} s; peak {real['peak_posts_per_channel_1s']} post(s) per channel per second")
    target = result["target"]
    print(f"\npeak RSS {target['peak_rss_mib']:.1f} MiB (target <= {target['rss_mib_max']:.0f} MB): "
          f"{target['verdict']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=10_000, help="findings in the storm (default 10,000)")
    parser.add_argument("--chunks", default="0,64",
                        help="comma-separated ingest sizes, one storm each; 0 = all in one ingest (default 0,64: "
                             "host.json's Event Hub maxEventBatchSize)")
    parser.add_argument("--interval", type=float, default=0.1,
                        help="virtual seconds between chunked deliveries (default 0.1)")
    parser.add_argument("--real-findings", type=int, default=50, help="findings of the real-time run (0: skip)")
    parser.add_argument("--real-groups", type=int, default=5, help="resource groups of the real-time run (default 5)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--child", choices=("virtual", "real"), help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--groups", type=int, default=STORM_GROUPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(storm(args)))
        return 0
    try:
        args.chunks = [int(c) for c in str(args.chunks).split(",") if c.strip()]
    except ValueError:
        parser.error("--chunks takes comma-separated integers")
    if args.findings < 1 or args.interval < 0 or not args.chunks or any(c < 0 for c in args.chunks) \
            or args.real_findings < 0 or not 1 <= args.real_groups <= len(GROUPS):
        parser.error(f"--findings >= 1, --interval >= 0, --chunks >= 0, --real-findings >= 0, "
                     f"1 <= --real-groups <= {len(GROUPS)}")
    args.load_start = load_average()
    result = run(args)
    return emit(result, as_json=args.json, print_text=print_text)


if __name__ == "__main__":
    raise SystemExit(main())
