"""Ingest throughput with dedup and SQLite persistence: ``Engine.ingest`` on realistic batches.

The engine is the one ``remediator.app.wiring.build_engine`` builds (shipped playbooks, SQLiteStore
on a temporary file, ``synchronous=NORMAL`` under WAL as shipped). Ingest reads no resource state:
it drops what no playbook can claim, stores each new finding in the inbox (deduplicated by finding
id against the findings waiting and those whose remediation is open) and queues ``plan`` jobs,
one transaction per 500 findings. Planning happens on the worker, which reads state anyway; its
throughput is measured here too (pass w), against resource state held in memory (``SavedState``):
ARM reads are left out on purpose, so that figure is the engine's own cost per finding.

Every finding is about its own resource. The resources are clones of the shipped samples
(``remediator/samples/state``), renamed with a seeded RNG the way ``bench_parse_match.py``
builds its batch, and the findings are the shipped sample payloads rewritten to point at them:

* ``nsg``: sample 02 (management ports open) on a VM of its own, with its own NIC, NSG, virtual
  network and subnet NSG: ``nsg-close-management-ports`` (Slack approval), 3 changes;
* ``storage-network``: sample 05 on a storage account of its own:
  ``storage-restrict-network-access`` (Slack approval), 1 change;
* ``storage-public``: sample 01 (an open-container alert) on an account and container of its own:
  ``storage-disable-public-blob-access`` (``approval: auto``, low risk, 2 changes). The first
  ``auto_budget_per_hour`` (20) per subscription are approved on the spot (an apply job is
  queued); the rest are asked for approval, as the engine decides;
* ``ignored``: healthy assessments (sample 05, ``Healthy``) and simulated alerts (sample 07).

Passes (default ``--findings 10000``, in 6 resource groups of 3 subscriptions), in this order on
one database per repeat:

a) fresh: N new findings, mix nsg 30 / storage-network 40 / storage-public 30: all queued;
b) redelivery: the same N again on the same engine (Event Hub is at-least-once): every one is a
   ``duplicate`` (still waiting to be planned);
b') redelivery after a restart: the same N to a *new* engine on the same store (a new Functions
   instance): the same answer, since the dedup is the store's, not the process's;
w) the worker: the ``plan`` jobs of (a), dequeued and handled as the Functions queue trigger does
   (the auto-approved ones' apply jobs are dequeued and dropped: ARM writes are not measured);
   read state, plan, create the remediations, audit, take the auto decisions, mark the inbox;
c) continuous export: N records, 50% fresh findings, 30% redeliveries of (a) (planned by now, with
   their remediations open: duplicates), 20% ignored, shuffled, to the engine that ingested (a).

Each pass times ``engine.ingest(records)`` on records parsed beforehand (``parse_bytes`` of the
NDJSON batch, timed on its own so that parse + ingest can be reported too). The baseline, timed
in the same run on the same records and state: ``Planner.plan_one`` over batch (a), no
persistence, no dedup (what planning inline used to cost ingest). Every repeat starts from a new
database; passes run in the order planner, a, b, b', w, c, after a ``gc.collect()`` each, with the
collector on (its time is measured with ``gc.callbacks``). The figure is the median of
``--repeat`` repeats after ``--warmup`` untimed ones (on a smaller batch).

Target: >= 5,000 findings/s for (a) and (c), printed as PASS or MISS (never the exit status).
``--profile`` adds a breakdown of pass (a) by phase and the top functions of a cProfile run.

    python benchmarks/bench_ingest.py                     # 10,000 findings, 3 repeats
    python benchmarks/bench_ingest.py --findings 300 --repeat 1 --warmup 0 --json
    python benchmarks/bench_ingest.py --profile
"""

from __future__ import annotations

import argparse
import builtins
import cProfile
import functools
import gc
import io
import json
import pstats
import random
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import REPO_ROOT, SHIPPED_PLAYBOOKS, emit, ensure_repo_on_path, load_average, median, table, verdict

ensure_repo_on_path()

if TYPE_CHECKING:
    from remediator.azure.state import SavedState
    from remediator.findings.model import Record
    from remediator.lifecycle.engine import Engine

TARGET_FINDINGS_PER_S = 5000.0
DEFAULT_SEED = 20261128
SAMPLES = REPO_ROOT / "remediator" / "samples"
SAMPLE_SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
ADMIN = "U0ADMIN0001"
Json = dict[str, Any]
T = TypeVar("T")


# --- realistic findings on resources of their own --------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of cloned finding: the sample payload, the sample resources it needs, their names."""

    name: str
    playbook: str
    finding_file: str
    template_rg: str
    # (sample name, clone prefix): every occurrence of the sample name becomes prefix + 6-digit index
    names: tuple[tuple[str, str], ...]
    # the sample resources a clone copies (the state its plan reads)
    state_names: tuple[str, ...]
    alert_uuid: str | None = None  # an alert's id part, made unique per clone


_NET = f"/subscriptions/{SAMPLE_SUB}/resourceGroups/rg-prod-web/providers/Microsoft"
KINDS: dict[str, Kind] = {
    "nsg": Kind(
        name="nsg", playbook="nsg-close-management-ports", finding_file="02-management-ports-assessment.json",
        template_rg="rg-prod-web",
        names=(("vm-jump-01", "vmb"), ("nsg-snet-mgmt", "nsgs"), ("nsg-jump", "nsgb"), ("vnet-prod", "vnetb")),
        state_names=(f"{_NET}.Compute/virtualMachines/vm-jump-01",
                     f"{_NET}.Network/networkInterfaces/vm-jump-01-nic",
                     f"{_NET}.Network/networkSecurityGroups/nsg-jump",
                     f"{_NET}.Network/networkSecurityGroups/nsg-snet-mgmt",
                     f"{_NET}.Network/virtualNetworks/vnet-prod"),
    ),
    "storage-network": Kind(
        name="storage-network", playbook="storage-restrict-network-access",
        finding_file="05-storage-network-assessment.json", template_rg="rg-prod-data",
        names=(("contosodata", "stn"),),
        state_names=(f"/subscriptions/{SAMPLE_SUB}/resourceGroups/rg-prod-data/providers/Microsoft.Storage/"
                     "storageAccounts/contosodata",),
    ),
    "storage-public": Kind(
        name="storage-public", playbook="storage-disable-public-blob-access",
        finding_file="01-storage-open-container-alert.json", template_rg="rg-prod-web",
        names=(("contosoweb", "stp"),),
        state_names=(f"{_NET}.Storage/storageAccounts/contosoweb",
                     f"{_NET}.Storage/storageAccounts/contosoweb/blobServices/default/containers/public-assets"),
        alert_uuid="6c1d4a5e-2b7f-4c39-8e0a-91f2d3b4c5a6",
    ),
}
_TOKEN = re.compile(r"(vmb|nsgs|nsgb|vnetb|stn|stp)(\d{6})", re.IGNORECASE)
_PREFIX_KIND = {prefix: kind.name for kind in KINDS.values() for _, prefix in kind.names}
FRESH_MIX = {"nsg": 30, "storage-network": 40, "storage-public": 30}
GROUPS = ("rg-prod-web", "rg-prod-data", "rg-shared-net", "rg-dev-apps", "rg-ml", "rg-ops")


def _compact(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


class Factory:
    """Deterministic clones of the samples: ``(kind, i)`` always gives the same resources and finding.

    Clone ``i`` lives in resource group ``groups[i % len(groups)]`` of subscription
    ``subscriptions[i // len(groups) % len(subscriptions)]``; its resources are named after the
    kind's prefix and ``i`` (``stn000042``), so ``ClonedState`` can find the sample it came from.
    """

    def __init__(self, *, seed: int = DEFAULT_SEED, groups: Sequence[str] = GROUPS,
                 subscriptions: int = 3) -> None:
        from remediator.azure.state import SavedState

        self.rng = random.Random(seed)
        self.groups = tuple(groups)
        self.subscriptions = (SAMPLE_SUB, *(f"{self.rng.getrandbits(32):08x}-5eed-4b0c-8a11-{n:012x}"
                                            for n in range(1, subscriptions)))
        self.samples = SavedState.from_path(SAMPLES / "state")
        findings = SAMPLES / "findings"
        self._finding = {k.name: _compact((findings / k.finding_file).read_text(encoding="utf-8"))
                         for k in KINDS.values()}
        self._docs: dict[str, list[str]] = {}
        for k in KINDS.values():
            docs = [self.samples.get(rid) for rid in k.state_names]
            if any(d is None for d in docs):
                raise SystemExit(f"the samples changed: {k.name} needs {k.state_names}")
            self._docs[k.name] = [json.dumps(d, separators=(",", ":")) for d in docs]
        healthy = json.loads(self._finding["storage-network"])
        healthy["properties"]["status"] = {"code": "Healthy", "statusChangeDate": "2026-11-25T12:00:00Z"}
        self._healthy = json.dumps(healthy, separators=(",", ":"))
        self._simulated = _compact((findings / "07-simulated-alert.json").read_text(encoding="utf-8"))

    def place(self, i: int) -> tuple[str, str]:
        """(resource group, subscription) of clone ``i``."""
        return self.groups[i % len(self.groups)], self.subscriptions[i // len(self.groups) % len(self.subscriptions)]

    def renames(self, kind: Kind, i: int) -> list[tuple[str, str]]:
        rg, sub = self.place(i)
        pairs = [(name, f"{prefix}{i:06d}") for name, prefix in kind.names]
        pairs += [(kind.template_rg, rg), (kind.template_rg.upper(), rg.upper()), (SAMPLE_SUB, sub),
                  (SAMPLE_SUB.upper(), sub.upper())]
        if kind.alert_uuid:
            pairs.append((kind.alert_uuid, f"{kind.alert_uuid[:24]}{i:012x}"))
        return pairs

    def finding(self, kind: str, i: int) -> str:
        """The finding payload (one compact JSON line) of clone ``i``."""
        return _replace(self._finding[kind], self.renames(KINDS[kind], i))

    def docs(self, kind: str, i: int) -> list[Json]:
        """The ARM documents clone ``i``'s plan reads."""
        pairs = self.renames(KINDS[kind], i)
        return [json.loads(_replace(text, pairs)) for text in self._docs[kind]]

    def ignored(self, i: int) -> str:
        """A record the engine ignores: a healthy assessment, or every fourth a simulated alert."""
        if i % 4 == 3:
            return self._simulated.replace("0d9c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d", f"0d9c1b2a-3e4f-4a5b-8c6d-{i:012x}")
        rg, sub = self.place(i)
        return _replace(self._healthy, [("contosodata", f"sth{i:06d}"), ("rg-prod-data", rg), (SAMPLE_SUB, sub)])

    def kinds(self, n: int, mix: Mapping[str, int] = FRESH_MIX) -> list[str]:
        """``n`` kinds drawn from ``mix`` with the seeded RNG."""
        return self.rng.choices(list(mix), weights=list(mix.values()), k=n)

    def state_of(self, clones: Sequence[tuple[str, int]]) -> SavedState:
        """Every document the clones' plans read, in memory (the ingest benchmark's state)."""
        from remediator.azure.state import SavedState

        state = SavedState()
        for kind, i in clones:
            for doc in self.docs(kind, i):
                state.add(doc)
        return state


def _replace(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


class ClonedState:
    """A ``StateReader`` that makes a clone's documents on demand from the samples (no memory per clone).

    For the storm, whose peak RSS must be the engine's and not that of 10,000 saved documents:
    ``get`` finds the clone's kind and index in the id, reads the sample document and renames it.
    """

    def __init__(self, factory: Factory) -> None:
        self.factory = factory
        self.reads = 0

    def get(self, resource_id: str) -> Json | None:
        self.reads += 1
        m = _TOKEN.search(resource_id)
        if m is None:
            return self.factory.samples.get(resource_id)
        kind = KINDS[_PREFIX_KIND[m.group(1).lower()]]
        i = int(m.group(2))
        pairs = self.factory.renames(kind, i)
        sample_id = resource_id
        for old, new in pairs:
            sample_id = re.sub(re.escape(new), old, sample_id, flags=re.IGNORECASE)
        doc = self.factory.samples.get(sample_id)
        return None if doc is None else json.loads(_replace(json.dumps(doc, separators=(",", ":")), pairs))

    def list(self, resource_type: str, scope: str) -> list[Json]:
        return []  # every cloned VM names its NICs, so the network action never lists

    def role_assignments(self, scope: str, principal_id: str | None = None) -> builtins.list[Json]:
        return []


def ndjson(lines: Sequence[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


# --- the batches ------------------------------------------------------------------------------------


@dataclass
class Batches:
    fresh: bytes
    mixed: bytes
    clones: list[tuple[str, int]]
    mixed_composition: dict[str, int]
    fresh_kinds: dict[str, int]


def build_batches(n: int, seed: int) -> tuple[Factory, Batches]:
    factory = Factory(seed=seed)
    kinds = factory.kinds(n)
    clones = list(zip(kinds, range(n), strict=True))
    fresh = [factory.finding(k, i) for k, i in clones]
    # (c): 50% fresh findings (clones n..), 30% redeliveries of (a), 20% ignored, shuffled
    n_fresh, n_dup = n // 2, n * 3 // 10
    n_ignored = n - n_fresh - n_dup
    more = list(zip(factory.kinds(n_fresh), range(n, n + n_fresh), strict=True))
    clones += more
    mixed = [factory.finding(k, i) for k, i in more]
    mixed += factory.rng.sample(fresh, n_dup)
    mixed += [factory.ignored(i) for i in range(n_ignored)]
    factory.rng.shuffle(mixed)
    return factory, Batches(fresh=ndjson(fresh), mixed=ndjson(mixed), clones=clones,
                            mixed_composition={"fresh": n_fresh, "redelivered": n_dup, "ignored": n_ignored},
                            fresh_kinds=dict(sorted(Counter(kinds).items())))


# --- timing -----------------------------------------------------------------------------------------


class GcTimer:
    """Time spent in the cyclic garbage collector while active (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1

    @contextmanager
    def active(self) -> Iterator[GcTimer]:
        self.seconds, self.collections = 0.0, 0
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


@dataclass
class Pass:
    name: str
    records: int
    seconds: list[float] = field(default_factory=list)
    gc_seconds: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def rate(self) -> float:
        return self.records / self.median_s if self.median_s > 0 else float("nan")

    def run(self, fn: Callable[[], T], gc_timer: GcTimer) -> T:
        gc.collect()
        with gc_timer.active():
            start = time.perf_counter()
            out = fn()
            elapsed = time.perf_counter() - start
        self.seconds.append(elapsed)
        self.gc_seconds.append(gc_timer.seconds)
        return out


# The shipped playbooks' approver roles, mapped as a deployment maps them (Settings.approver_roles)
BENCH_ROLES: dict[str, tuple[str, ...]] = {"security-oncall": ("S0614TZR7",),
                                           "security-leads": ("U05K8NQ2R7T", "U05M3XH9V4P"),
                                           "platform-owners": ("S0615PLT8Q",)}


def bench_settings(**overrides: Any) -> Any:
    from remediator.config.settings import Settings

    values: dict[str, Any] = {"elevation": "standing", "playbooks_dir": SHIPPED_PLAYBOOKS, "admins": (ADMIN,),
                              "slack_channel": "C0BENCH", "approver_roles": BENCH_ROLES, **overrides}
    return Settings(**values)


def new_engine(store: Any, state: Any) -> Engine:
    """``build_engine`` with this store and state; the ARM clients point nowhere (ingest never writes)."""
    from remediator.app.wiring import build_engine
    from remediator.azure.clients import ArmClients
    from remediator.testing import FakeCredential

    return build_engine(bench_settings(), store=store, state=state,
                        clients=ArmClients(FakeCredential(), base_url="http://127.0.0.1:9"))


def outcomes(results: Sequence[Any]) -> dict[str, int]:
    return dict(sorted(Counter(r.outcome for r in results).items()))


def work_plan_jobs(engine: Engine, store: Any) -> int:
    """Handle every visible ``plan`` job as the queue trigger would; other jobs (the auto-approved
    ones' applies) are dequeued and dropped. Returns how many plan jobs it handled."""
    handled = 0
    while (job := store.dequeue(visibility_seconds=300)) is not None:
        if job.kind == "plan":
            engine.handle(job)
            handled += 1
        store.complete(job)
    return handled


def states(store: Any) -> dict[str, int]:
    return dict(sorted(Counter(r.state for r in store.list(limit=10**7)).items()))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from remediator.findings.parse import parse_bytes
    from remediator.planning.planner import Planner
    from remediator.playbooks import load_playbooks
    from remediator.store import SQLiteStore

    factory, batches = build_batches(args.findings, args.seed)
    state = factory.state_of(batches.clones)
    fresh = parse_bytes(batches.fresh, source="bench")
    mixed = parse_bytes(batches.mixed, source="bench")
    playbooks = load_playbooks(SHIPPED_PLAYBOOKS)
    settings = bench_settings()
    n = len(fresh)
    passes = {
        "planner": Pass("baseline: Planner.plan_one over (a), no persistence", n),
        "a": Pass("a) fresh findings", n),
        "b": Pass("b) redelivery, same engine", n),
        "b2": Pass("b') redelivery, new engine (restart)", n),
        "w": Pass("w) worker: the plan jobs of (a)", n),
        "c": Pass("c) continuous export: fresh + redelivered + ignored", len(mixed)),
        "parse_a": Pass("parse_bytes of (a)", n),
        "parse_c": Pass("parse_bytes of (c)", len(mixed)),
    }
    timer = GcTimer()

    def planner_pass() -> list[Any]:
        planner = Planner(playbooks=playbooks, state=state, protected_principals=settings.protected_principals)
        return [planner.plan_one(r) for r in fresh]

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        warm = min(n, 500)
        for w in range(args.warmup):
            with SQLiteStore(Path(tmp) / f"warmup-{w}.db") as store:
                engine = new_engine(store, state)
                engine.ingest(fresh[:warm])
                engine.ingest(fresh[:warm])
                new_engine(store, state).ingest(fresh[:warm])
                work_plan_jobs(engine, store)
        for r in range(args.repeat):
            passes["parse_a"].run(lambda: parse_bytes(batches.fresh, source="bench"), timer)
            passes["parse_c"].run(lambda: parse_bytes(batches.mixed, source="bench"), timer)
            results = passes["planner"].run(planner_pass, timer)
            passes["planner"].outcomes = dict(Counter(x.outcome for x in results))
            with SQLiteStore(Path(tmp) / f"ingest-{r}.db") as store:
                engine = new_engine(store, state)
                for key, eng, records in (("a", engine, fresh), ("b", engine, fresh), ("b2", None, fresh),
                                          ("w", engine, None), ("c", engine, mixed)):
                    target = eng if eng is not None else new_engine(store, state)
                    if records is None:
                        passes[key].run(functools.partial(work_plan_jobs, target, store), timer)
                        passes[key].outcomes = states(store)
                        continue
                    got = passes[key].run(functools.partial(target.ingest, records, source="bench"), timer)
                    passes[key].outcomes = outcomes(got)
                    del got
    profile = profile_fresh(fresh, state, top=args.profile_top) if args.profile else None
    return report(args, passes, batches, profile)


def report(args: argparse.Namespace, passes: dict[str, Pass], batches: Batches,
           profile: dict[str, Any] | None) -> dict[str, Any]:
    base = passes["planner"].median_s
    rows: dict[str, dict[str, Any]] = {}
    for key, p in passes.items():
        rows[key] = {
            "name": p.name, "records": p.records, "seconds": [round(s, 4) for s in p.seconds],
            "median_s": round(p.median_s, 4), "per_s": round(p.rate, 1),
            "gc_share": round(median([g / s for g, s in zip(p.gc_seconds, p.seconds, strict=True)]), 3),
            "x_planner": round(p.median_s * passes["a"].records / p.records / base, 2) if base > 0 else None,
            "outcomes": p.outcomes,
        }
    for key, parse in (("a", "parse_a"), ("c", "parse_c")):
        both = passes[key].median_s + passes[parse].median_s
        rows[key]["parse_plus_ingest_per_s"] = round(passes[key].records / both, 1)
    targets = {key: {"measured": rows[key]["per_s"], "verdict": verdict(rows[key]["per_s"] >= TARGET_FINDINGS_PER_S)}
               for key in ("a", "c")}
    return {
        "benchmark": "ingest",
        "python": sys.version.split()[0],
        "load_average_1m": {"start": args.load_start, "end": load_average()},
        "seed": args.seed, "repeat": args.repeat, "warmup": args.warmup,
        "findings": args.findings,
        "batch": {"fresh_kinds": batches.fresh_kinds, "fresh_bytes": len(batches.fresh),
                  "mixed": batches.mixed_composition, "mixed_bytes": len(batches.mixed)},
        "passes": rows,
        "target": {"findings_per_s_min": TARGET_FINDINGS_PER_S, **targets},
        "profile": profile,
    }


# --- where the time goes ----------------------------------------------------------------------------


class PhaseTimer:
    """Wall time spent inside chosen methods (patched by ``wrap`` until ``restore``), while ``active``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.labels: list[str] = []
        self.active = True
        self._saved: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*a: Any, **kw: Any) -> Any:
            if not self.active:
                return original(*a, **kw)
            start = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                self.totals[label] += time.perf_counter() - start
                self.calls[label] += 1

        self.labels.append(label)
        self._saved.append((owner, attr, original))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._saved):
            setattr(owner, attr, original)
        self._saved.clear()


def profile_fresh(fresh: Sequence[Record], state: SavedState, *, top: int) -> dict[str, Any]:
    """Pass (a) once more with phase timers, then once under cProfile (each on a new database)."""
    from remediator.lifecycle import engine as engine_mod
    from remediator.playbooks import match as match_mod
    from remediator.store import SQLiteStore
    from remediator.store import codec as codec_mod
    from remediator.store import sqlite as sqlite_mod

    phases = PhaseTimer()
    for owner, attr, label in (
        (match_mod.PlaybookSet, "could_claim", "could any playbook claim it (PlaybookSet.could_claim)"),
        (engine_mod, "finding_to_json", "the finding as stored (worker.finding_to_json)"),
        (sqlite_mod.SQLiteStore, "receive", "store.receive (encode + INSERT ... ON CONFLICT DO UPDATE)"),
        (codec_mod, "dumps", "  of which codec.dumps (the finding's JSON)"),
        (sqlite_mod.SQLiteStore, "enqueue", "enqueue the plan jobs (store.enqueue)"),
    ):
        phases.wrap(owner, attr, label)
    timer = GcTimer()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-profile-") as tmp:
        try:
            with SQLiteStore(Path(tmp) / "phases.db") as store:
                engine = new_engine(store, state)
                gc.collect()
                with timer.active():
                    start = time.perf_counter()
                    engine.ingest(fresh, source="bench")
                    total = time.perf_counter() - start
        finally:
            phases.restore()
        profiler = cProfile.Profile()
        with SQLiteStore(Path(tmp) / "cprofile.db") as store:
            engine = new_engine(store, state)
            gc.collect()
            profiler.enable()
            engine.ingest(fresh, source="bench")
            profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return {
        "total_s": round(total, 4),
        "phases": {label: {"seconds": round(phases.totals[label], 4), "share": round(phases.totals[label] / total, 3),
                           "calls": phases.calls[label]} for label in phases.labels},
        "gc": {"seconds": round(timer.seconds, 4), "share": round(timer.seconds / total, 3),
               "collections": timer.collections},
        "cprofile_tottime": out.getvalue(),
    }


# --- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--findings", type=int, default=10_000, help="findings in batches (a) and (c) (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats (median reported; default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats first, on 500 findings (default 1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    parser.add_argument("--profile", action="store_true", help="also break pass (a) down by phase and function")
    parser.add_argument("--profile-top", type=int, default=20, help="functions listed by --profile (default 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    args.load_start = load_average()
    if args.findings < 10 or args.repeat < 1 or args.warmup < 0:
        parser.error("--findings must be >= 10, --repeat >= 1, --warmup >= 0")
    result = run(args)
    return emit(result, as_json=args.json, print_text=print_text)


def print_text(result: dict[str, Any]) -> None:
    batch, rows = result["batch"], result["passes"]
    loads = result["load_average_1m"]
    print(f"Ingest with dedup and SQLite persistence: {result['findings']:,} findings per batch "
          f"(seed {result['seed']}); (a) kinds {batch['fresh_kinds']}; (c) {batch['mixed']}")
    print(f"Median of {result['repeat']} repeats after {result['warmup']} warm-up; "
          f"load average {loads['start']} -> {loads['end']}\n")
    order = ("planner", "a", "b", "b2", "w", "c", "parse_a", "parse_c")
    print(table(["pass", "records", "median ms", "records/s", "x planner time", "GC share"],
                [[rows[k]["name"], rows[k]["records"], rows[k]["median_s"] * 1000, rows[k]["per_s"],
                  rows[k]["x_planner"] if k not in ("parse_a", "parse_c") else "", rows[k]["gc_share"]]
                 for k in order]))
    print("\n(x planner time: the pass's time per record over the planner's: below 1, ingest costs less than "
          "planning would; for w, what persistence and bookkeeping cost on top of planning)")
    for k in ("a", "b", "b2", "w", "c"):
        print(f"  {rows[k]['name']}: {rows[k]['outcomes']}")
    print(f"\nparse + ingest: (a) {rows['a']['parse_plus_ingest_per_s']:,.0f} findings/s, "
          f"(c) {rows['c']['parse_plus_ingest_per_s']:,.0f} records/s")
    target = result["target"]
    for k in ("a", "c"):
        print(f"{rows[k]['name']}: {target[k]['measured']:,.0f} findings/s "
              f"(target >= {target['findings_per_s_min']:,.0f})  {target[k]['verdict']}")
    profile = result.get("profile")
    if profile:
        print(f"\nWhere pass (a) spends its {profile['total_s'] * 1000:,.0f} ms (phase timers, one run):")
        print(table(["phase", "ms", "share", "calls"],
                    [[label, p["seconds"] * 1000, f"{p['share']:.1%}", p["calls"]]
                     for label, p in profile["phases"].items()]
                    + [["garbage collector (any phase)", profile["gc"]["seconds"] * 1000,
                        f"{profile['gc']['share']:.1%}", profile["gc"]["collections"]]]))
        print("\ncProfile of another run of pass (a), by own time:")
        print(profile["cprofile_tottime"])


if __name__ == "__main__":
    raise SystemExit(main())
