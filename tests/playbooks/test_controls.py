"""``controls:`` on playbooks: the accepted format, its one-line errors, the schema, the shipped playbooks."""

from __future__ import annotations

import re

import pytest

from remediator.playbooks import json_schema
from remediator.playbooks.controls import CONTROL_PATTERN, control_problem
from tests.support.engine import PLAYBOOKS


def test_every_shipped_playbook_names_at_least_one_control() -> None:
    missing = [p.name for p in PLAYBOOKS if not p.controls]
    assert missing == []
    assert all(control_problem(c) is None for p in PLAYBOOKS for c in p.controls)


@pytest.mark.parametrize("control", ["MCSB NS-2", "MCSB IM-1", "MCSB PA-7", "NIST-AI-RMF MANAGE-2.4",
                                     "NIST-AI-RMF GOVERN-1", "ISO27001 A.8.20", "ISO27001 A.5.37", "GDPR Art.32",
                                     "GDPR Art.25(2)", "NIST-800-53 AC-6(1)"])
def test_valid_controls(control: str) -> None:
    assert control_problem(control) is None
    assert re.fullmatch(CONTROL_PATTERN, control)


@pytest.mark.parametrize(("control", "message"), [
    ("SOC2 CC6.1", "expected '<FRAMEWORK> <ID>' with a framework of MCSB (e.g. MCSB NS-2), NIST-AI-RMF"),
    ("mcsb NS-2", "frameworks are upper-case: 'MCSB'"),
    ("MCSB XX-2", "MCSB control 'XX-2': expected <domain>-<n>"),
    ("ISO27001 A.8.35", "Annex A clause 8 has controls A.8.1 to A.8.34"),
    ("ISO27001 A.9.1", "expected A.<clause>.<n> of ISO/IEC 27001:2022 Annex A"),
    ("NS-2", "expected '<FRAMEWORK> <ID>'"),
    ("GDPR Article 32", "GDPR control 'Article 32': expected Art.<n>"),
])
def test_invalid_controls_get_one_line(control: str, message: str) -> None:
    problem = control_problem(control)
    assert problem is not None
    assert message in problem
    assert "\n" not in problem
    assert not re.fullmatch(CONTROL_PATTERN, control)


def test_the_schema_lists_controls() -> None:
    schema = json_schema()["properties"]["controls"]
    assert schema["type"] == "array"
    assert schema["items"]["pattern"] == CONTROL_PATTERN
