"""The curated public API is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import remediator


def test_public_names_are_pinned() -> None:
    assert remediator.__all__ == sorted([
        "Change", "Finding", "Ignored", "Planner", "RemediatorError", "Result", "SavedState", "Severity",
        "__version__", "fingerprint", "load_exemptions", "load_playbooks", "parse_bytes", "parse_file",
        "parse_value",
    ])
    for name in remediator.__all__:
        assert getattr(remediator, name) is not None


def test_import_remediator_is_cheap() -> None:
    code = "import sys, remediator; print(sorted(m for m in sys.modules if m.startswith(('remediator.', 'pydantic'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
