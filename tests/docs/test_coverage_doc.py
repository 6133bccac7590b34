"""docs/coverage.md is what `remediator coverage --catalog --output markdown` prints for the shipped playbooks."""

from __future__ import annotations

import io

from remediator.app.cli import main
from remediator.app.cli.coverage import REGENERATE
from tests.conftest import ROOT


def test_coverage_page_is_current() -> None:
    out = io.StringIO()
    assert main(["coverage", "--catalog", "--output", "markdown"], out=out, stdin=io.StringIO()) == 0
    current = (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8")
    assert current == out.getvalue(), f"docs/coverage.md is out of date: regenerate it with `{REGENERATE}`"


def test_the_alias_table_is_generated_from_the_catalog() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "scripts/gen_modify_aliases.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
