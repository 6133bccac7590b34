"""Shared test helpers: paths to the real public fixtures (copied from ../shared/fixtures), and the
time budget of a test.

A test whose call phase takes over 2 s (the ``slow_call_seconds`` ini option) fails unless it is
marked ``@pytest.mark.slow(reason="…")``; the reason says what must take that long (a real browser,
Azure Queue Storage's server-side clock, a storm of ten thousand findings). ``pytest -m "not slow"``
is the quick local subset; ``pytest`` and ``scripts/test`` run everything.

What counts is the time the CPU was free: on Linux the seconds during which some task waited for a
CPU (``/proc/pressure/cpu``, "some") are left out, so a test is not failed because the machine was
busy elsewhere (other test runs on a shared machine, this run's other workers); a test that sleeps
or does too much still is. Without that file the whole call time counts, against a limit stretched
by this run's workers per core.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator
from pathlib import Path

import pytest

# Cache bytecode (gitignored __pycache__) even where PYTHONDONTWRITEBYTECODE is set: without it every
# run compiles each test module (after assertion rewriting) and each module of ours again, in every
# worker and in every subprocess a test starts (those read the caches this process writes).
sys.dont_write_bytecode = False

pytest_plugins = ("pytester",)  # tests/test_conftest.py runs these hooks in an inner session

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SLOW_CALL_SECONDS = "2"


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (in addopts): one worker more than cores. About a seventh of the suite's time is spent
    waiting, not computing (Azurite's queue clock, the real pacer, servers starting and stopping):
    the extra worker computes meanwhile."""
    return (os.cpu_count() or 1) + 1


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("slow_call_seconds", "the call time over which a test not marked slow fails",
                  default=SLOW_CALL_SECONDS)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def slow_reason(item: pytest.Item) -> str | None:
    """The reason given with the item's ``slow`` marker; None when it is not marked slow."""
    marker = item.get_closest_marker("slow")
    if marker is None:
        return None
    reason = marker.kwargs.get("reason", marker.args[0] if marker.args else "")
    return reason if isinstance(reason, str) else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unexplained = sorted({item.nodeid.split("[")[0] for item in items if slow_reason(item) == ""})
    if unexplained:
        raise pytest.UsageError('@pytest.mark.slow needs reason="what must take that long": ' + ", ".join(unexplained))
    # The slow tests first (each group in its own order): spread over the workers from the start, not
    # left for last, where one of them would keep the whole run waiting.
    items.sort(key=lambda item: slow_reason(item) is None)


PRESSURE = Path("/proc/pressure/cpu")


def cpu_stalled() -> float | None:
    """Seconds, since boot, during which some task waited for a CPU (Linux PSI); None where not kept."""
    try:
        some = PRESSURE.read_text(encoding="ascii").splitlines()[0]  # "some avg10=… avg60=… avg300=… total=<µs>"
        return int(some.rsplit("total=", 1)[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    stalled = cpu_stalled()
    started = time.perf_counter()
    yield  # the test's own failure propagates from here, before any time check
    took = time.perf_counter() - started
    limit = float(item.config.getini("slow_call_seconds"))
    if took <= limit or slow_reason(item) is not None:
        return
    now_stalled = cpu_stalled()
    if stalled is None or now_stalled is None:  # no PSI: allow for this run's own workers sharing the cores
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
        limit *= max(1.0, workers / (os.cpu_count() or 1))
    waited = min(took, now_stalled - stalled) if stalled is not None and now_stalled is not None else 0.0
    if took - waited <= limit:
        return
    busy = f", {took - waited:.1f} s of it with the CPU free" if waited > 0 else ""
    pytest.fail(f"{item.nodeid} took {took:.1f} s{busy}, over the {limit:g} s of a test not marked slow: make it "
                "faster (inject time, shrink what its claim does not need) or mark it @pytest.mark.slow(reason=…)",
                pytrace=False)
