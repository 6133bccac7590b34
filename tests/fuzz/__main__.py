"""``python -m tests.fuzz [-n N] [--target NAME ...]``: run each fuzz target N times (10,000 by
default) and print, per target: examples, crashes (must be 0), accepted inputs, distinct error
messages (and distinct shapes, numbers and quoted values masked) with the most frequent few.
Exit 1 when any target crashed. ``scripts/fuzz`` runs this in the project venv."""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz import discover

_SHAPE = ((re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"), (re.compile(r"/(?:subscriptions|providers)/[^\s'\",:]*"), "<id>"),
          (re.compile(r"\d+"), "N"))


def shape(message: str) -> str:
    """The message with quoted values, ARM ids and numbers masked: how many *kinds* of error there are."""
    for pattern, mask in _SHAPE:
        message = pattern.sub(mask, message)
    return message


@dataclass
class Tally:
    examples: int = 0
    accepted: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    crashes: list[tuple[str, str]] = field(default_factory=list)


def fuzz(target: ModuleType, examples: int, seed: int | None) -> Tally:
    tally = Tally()

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.STRATEGY)
    def one(example: Any) -> None:
        tally.examples += 1
        try:
            message = target.run(example)
        except Exception as exc:  # a contract violation: counted, shown, never stops the run
            where = traceback.extract_tb(exc.__traceback__)[-1]
            detail = f"{type(exc).__name__}: {str(exc)[:300]} (at {where.filename}:{where.lineno})"
            tally.crashes.append((detail, repr(example)[:400]))
            return
        if message is None:
            tally.accepted += 1
        else:
            tally.messages[message] += 1

    if seed is not None:
        one = settings(derandomize=False)(one)
        one._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hypothesis' "overly large repr" and the like: noise here
        one()
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--examples", type=int, default=10_000, help="examples per target (default 10,000)")
    parser.add_argument("--target", action="append", metavar="NAME", help="only this target (repeatable)")
    parser.add_argument("--top", type=int, default=5, help="how many of the most frequent messages to show")
    parser.add_argument("--seed", type=int, help="a fixed seed, to repeat a run")
    args = parser.parse_args(argv)
    targets = [t for t in discover() if not args.target or t.NAME in args.target]
    if not targets:
        names = ", ".join(t.NAME for t in discover())
        print(f"scripts/fuzz: no target named {', '.join(args.target)} (targets: {names})", file=sys.stderr)
        return 2
    crashed = False
    for target in targets:
        started = time.perf_counter()
        tally = fuzz(target, args.examples, args.seed)
        seconds = time.perf_counter() - started
        shapes = Counter[str]()
        for message, count in tally.messages.items():
            shapes[shape(message)] += count
        refused = sum(tally.messages.values())
        print(f"{target.NAME}: {tally.examples:,} examples, {len(tally.crashes)} crashes, "
              f"{tally.accepted:,} accepted, {refused:,} refused with {len(tally.messages):,} distinct error "
              f"messages ({len(shapes):,} shapes), {seconds:.1f} s")
        for text, count in shapes.most_common(args.top):
            print(f"  {count:>6,}  {text[:160]}")
        for detail, example in tally.crashes[:5]:
            print(f"  CRASH {detail}\n        example: {example}")
        crashed = crashed or bool(tally.crashes)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
