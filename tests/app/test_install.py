"""Installed as users install tools: the wheel ships the sample playbooks, and ``remediator`` works
from any folder of a clean virtual environment (the README's ``pipx install .`` / ``pip install .``).

The test builds the wheel from the working tree (``pip wheel --no-deps``, in a copy so the checkout
gets no ``build/``), checks that the playbooks it carries are exactly ``playbooks/`` (one source: the
copy is made at build time by setup.py), installs it into a new venv (no system site-packages; the
dependencies from the package index) and runs ``remediator --help``, ``validate`` and ``demo
--approve-all`` from another folder, with no ``PYTHONPATH`` pointing at the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "requirements.txt",
           "remediator", "bot", "function_app", "playbooks")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-wal", "*.db-shm")


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow(reason="builds the wheel, installs it and its dependencies into a new venv (about a minute)")
def test_the_wheel_installs_a_working_tool_with_the_shipped_playbooks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(tmp_path / "dist")],
         tmp_path, env)
    [wheel] = (tmp_path / "dist").glob("remediator-*.whl")

    with zipfile.ZipFile(wheel) as whl:
        shipped = {Path(n).name: whl.read(n) for n in whl.namelist() if n.startswith("remediator/samples/playbooks/")}
    repo = {p.name: p.read_bytes() for p in (ROOT / "playbooks").glob("*.yaml")}
    assert shipped.keys() == repo.keys()
    assert [n for n in repo if shipped[n] != repo[n]] == []  # one source: the wheel's copy is the folder

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env, timeout=900)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])  # what `pipx install .` arranges
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    location = _run(["python", "-c", "import remediator; print(remediator.__file__)"], elsewhere, env)
    assert location.startswith(str(venv)), location  # the installed copy, not the checkout
    assert "validate" in _run(["remediator", "--help"], elsewhere, env)
    validated = _run(["remediator", "validate"], elsewhere, env)
    assert validated.splitlines()[0].endswith(f"{len(repo)} playbooks valid"), validated
    assert "site-packages" in validated
    # validate's fast path works from the wheel too: its schema ships, and matches the installed sources
    fast = _run(["python", "-c", "from remediator.playbooks.fastcheck import SCHEMA, _schema; "
                 "print(_schema(SCHEMA) is not None)"], elsewhere, env)
    assert fast.strip() == "True", fast
    demo = _run(["remediator", "demo", "--approve-all"], elsewhere, env)
    assert "applied" in demo
    assert sorted(os.listdir(elsewhere)) == []  # the demo keeps its store in a temporary folder
