"""One rule for where the playbooks are (``remediator.app.paths``), followed by every command: run
from a folder without ``playbooks/``, ``plan``, ``validate``, ``demo`` and the engine ``serve`` builds
all use the shipped playbooks; a folder that is named is used as named."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from remediator.app import paths
from remediator.app.cli import main
from remediator.app.wiring import build_engine
from remediator.config.settings import Settings
from remediator.findings.parse import parse_file
from remediator.playbooks import load_playbooks
from remediator.testing import FakeArm
from tests.conftest import ROOT
from tests.support.engine import ROLES

SAMPLE = str(ROOT / "remediator" / "samples" / "findings" / "01-storage-open-container-alert.json")
STATE = str(ROOT / "remediator" / "samples" / "state")


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_in_a_checkout_the_shipped_playbooks_are_the_repositorys() -> None:
    assert paths.shipped_playbooks() == ROOT / "playbooks" == paths.SHIPPED_PLAYBOOKS
    assert not paths.PACKAGED_PLAYBOOKS.exists()  # the wheel's copy is made at build time, never kept here


def test_the_rule(elsewhere: Path) -> None:
    assert paths.playbooks_dir(None) == paths.shipped_playbooks()
    assert paths.playbooks_dir("mine") == Path("mine")  # named: as named, even when missing (an error later)
    assert paths.settings_playbooks_dir(Settings().playbooks_dir) == paths.shipped_playbooks()
    assert paths.settings_playbooks_dir(Path("/srv/playbooks")) == Path("/srv/playbooks")
    (elsewhere / "playbooks").mkdir()
    assert paths.playbooks_dir(None) == Path("playbooks")
    assert paths.settings_playbooks_dir(Settings().playbooks_dir) == Path("playbooks")


def test_plan_validate_and_demo_from_another_folder(elsewhere: Path) -> None:
    out = io.StringIO()
    assert main(["plan", SAMPLE, "--resources", STATE], out=out) == 2
    assert "storage-disable-public-blob-access" in out.getvalue()
    out = io.StringIO()
    assert main(["validate"], out=out) == 0
    assert f"{len(load_playbooks(ROOT / 'playbooks'))} playbooks" in out.getvalue()
    assert main(["validate", "playbooks"], out=io.StringIO()) == 1  # named and missing: an error, not a fallback


def test_the_engine_serve_builds_from_another_folder_loads_the_shipped_playbooks(elsewhere: Path) -> None:
    with FakeArm() as arm:
        settings = Settings(store_url=f"sqlite:///{elsewhere / 'r.db'}", elevation="standing",
                            approver_roles=ROLES)  # the shipped playbooks' roles, mapped
        engine = build_engine(settings, clients=arm.clients())  # failed before: "playbooks: no such directory"
        try:
            [answer] = engine.ingest(parse_file(SAMPLE), source="test")
            assert answer.outcome == "queued"  # a shipped playbook claims it
        finally:
            engine.store.close()  # type: ignore[attr-defined]
