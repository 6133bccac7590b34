"""The suite's time budget (tests/conftest.py): an unmarked test over the limit fails with one line
naming it and its time; a slow one passes, and a slow marker must say why; a busy machine gets more."""

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
    monkeypatch.setattr(tests.conftest, "load_per_core", lambda: 1.0)  # an idle machine, whatever this one is
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


def test_on_a_busy_machine_the_limit_grows_with_the_load(inner: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.conftest

    inner.makepyfile(test_budget=TESTS)
    monkeypatch.setattr(tests.conftest, "load_per_core", lambda: 100.0)  # 0.05 s x 100: the sleeper is allowed
    inner.runpytest(*PLAIN).assert_outcomes(passed=3, failed=1)
    monkeypatch.setattr(tests.conftest, "load_per_core", lambda: 1.5)  # 0.075 s: it is not
    result = inner.runpytest(*PLAIN)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.re_match_lines([r".*test_dawdles took \d+\.\d s, over the 0\.05 s \(x1\.5: the machine is busy\)"])


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
