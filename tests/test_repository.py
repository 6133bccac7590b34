"""What the repository carries: no local state (a SQLite store and its journal files) is committed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

STATE_FILES = ("remediator.db", "demo.db", "remediator.db-wal", "remediator.db-shm")


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def git_checkout() -> None:
    if shutil.which("git") is None or _git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout (an sdist or wheel has no index to check)")


@pytest.mark.usefixtures("git_checkout")
def test_no_sqlite_store_is_committed() -> None:
    tracked = _git("ls-files", "--", "*.db", "*.db-wal", "*.db-shm", "*.sqlite3").stdout.split()
    assert tracked == [], f"local stores are committed (someone's audit trail ships with the repo): {tracked}"


@pytest.mark.usefixtures("git_checkout")
@pytest.mark.parametrize("name", STATE_FILES)
def test_a_store_made_in_the_checkout_is_ignored(name: str) -> None:
    """``remediator scan`` or ``demo --store`` in the checkout leaves no untracked file to commit by mistake."""
    assert _git("check-ignore", "-q", "--no-index", name).returncode == 0, f"{name} is not in .gitignore"
