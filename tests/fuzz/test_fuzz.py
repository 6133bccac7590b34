"""CI runs every fuzz target (``tests/fuzz/*_target.py``, see ``tests/fuzz/__init__.py``) with a few
hundred examples; ``scripts/fuzz`` runs 10,000 of each. A target added later (the Slack endpoint's
``slack_target.py``) is picked up here without a change."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz import discover

TARGETS = discover()
CI_EXAMPLES = 300


@pytest.mark.slow(reason="a few hundred generated examples per target (CI_EXAMPLES)")
@pytest.mark.parametrize("target", TARGETS, ids=[t.NAME for t in TARGETS])
def test_fuzz_target(target: ModuleType) -> None:
    @settings(max_examples=CI_EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example, HealthCheck.filter_too_much])
    @given(target.STRATEGY)
    def one(example: Any) -> None:
        message = target.run(example)
        assert message is None or isinstance(message, str)

    one()


def test_discovery_finds_this_suites_targets() -> None:
    names = {t.NAME for t in TARGETS}
    assert {"findings", "state", "playbooks"} <= names
    assert len(names) == len(TARGETS), "two targets share a NAME"
