"""The suite's time budget (tests/conftest.py): an unmarked test over the limit fails with one line
naming it and its time; a slow one passes, and a slow marker must say why; time spent waiting for a
busy CPU is left out."""

from __future__ import annotations

import pytest

PLAIN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")  # the inner session needs neither
CONFTEST = "from tests.conftest import pytest_addoption, pytest_collection_modifyitems, pytest_runtest_call\n"
TESTS = '''
import time
import pytest

def test_quick():
    pass

def test_dawdles():
    time.sleep(0.1)

@pytest.mark.slow(reason="waits on purpose")
def test_allowed():
    time.sleep(0.1)

def test_fails_on_its_own():
    time.sleep(0.1)
    assert 1 == 2
'''


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    import tests.conftest
    from tests.conftest import ROOT

    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setattr(tests.conftest, "cpu_stalled", lambda: None)  # the whole call time counts
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)  # ... against the limit as set
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    slow: allowed over the limit\nslow_call_seconds = 0.05\n")
    return pytester


def test_an_unmarked_test_over_the_limit_fails_with_one_line(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_budget=TESTS)
    result = inner.runpytest(*PLAIN)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.re_match_lines([r".*test_budget.py::test_dawdles took \d+\.\d s, over the 0\.05 s of a test not "
                                  r"marked slow: make it faster .* or mark it @pytest.mark.slow\(reason=…\)"])
    assert "test_allowed took" not in result.stdout.str()
    assert "test_fails_on_its_own took" not in result.stdout.str()  # its own failure is the one reported
    assert "assert 1 == 2" in result.stdout.str()


class Stalls:
    """``/proc/pressure/cpu``'s "some" total as a test wants it: each read ``per_read`` seconds on."""

    def __init__(self, per_read: float) -> None:
        self.total, self.per_read = 1000.0, per_read

    def __call__(self) -> float:
        self.total += self.per_read
        return self.total


def test_time_spent_waiting_for_a_cpu_is_left_out(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.conftest

    inner.makepyfile(test_budget=TESTS)
    monkeypatch.setattr(tests.conftest, "cpu_stalled", Stalls(per_read=10.0))  # the machine was busy throughout
    inner.runpytest(*PLAIN).assert_outcomes(passed=3, failed=1)
    monkeypatch.setattr(tests.conftest, "cpu_stalled", Stalls(per_read=0.02))  # busy for a moment only
    result = inner.runpytest(*PLAIN)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.re_match_lines([r".*test_dawdles took \d+\.\d s, \d+\.\d s of it with the CPU free, over the "
                                  r"0\.05 s"])


def test_the_pressure_file_is_read_where_the_kernel_keeps_it() -> None:
    from tests.conftest import PRESSURE, cpu_stalled

    stalled = cpu_stalled()
    if PRESSURE.exists():
        assert stalled is not None
        assert stalled >= 0
    else:
        assert stalled is None


def test_a_slow_marker_without_a_reason_is_a_usage_error(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_unexplained="import pytest\n\n@pytest.mark.slow\ndef test_x():\n    pass\n")
    result = inner.runpytest(*PLAIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*@pytest.mark.slow needs reason="what must take that long": '
                                 'test_unexplained.py::test_x*'])


def test_the_quick_subset_leaves_out_the_slow_tests(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_budget=TESTS)
    result = inner.runpytest(*PLAIN, "-m", "not slow", "-k", "not dawdles and not fails")
    result.assert_outcomes(passed=1, deselected=3)


def test_without_psi_the_limit_allows_for_the_runs_own_workers(inner: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(4 * (os.cpu_count() or 1)))  # 0.05 s x 4 = 0.2 s
    inner.makepyfile(test_budget=TESTS)
    result = inner.runpytest(*PLAIN)
    result.assert_outcomes(passed=3, failed=1)  # test_dawdles' 0.1 s is within; only the real failure fails
