"""Build hook: the wheel ships the sample playbooks (``remediator demo``, ``plan`` and ``serve`` fall back
to them anywhere, ``remediator.app.paths.playbooks_dir``).

One source of truth: the repository's top-level ``playbooks/`` (the folder users read and copy) is
copied at build time into the wheel as ``remediator/samples/playbooks/``; nothing is kept twice in
the repository. An editable install reads the checkout's folder directly. The rest of the
configuration is in pyproject.toml; ``tests/app/test_install.py`` builds the wheel and checks that
what it ships equals ``playbooks/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "playbooks"
TARGET = Path("remediator") / "samples" / "playbooks"


class BuildPyWithPlaybooks(build_py):
    """``build_py`` plus the copy of ``playbooks/*.yaml`` into the package (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        if not SOURCE.is_dir():
            raise SystemExit(f"setup.py: {SOURCE}: no playbooks folder to ship (is this a full checkout or sdist?)")
        target = Path(self.build_lib) / TARGET
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for playbook in sorted(SOURCE.glob("*.yaml")):
            shutil.copyfile(playbook, target / playbook.name)


setup(cmdclass={"build_py": BuildPyWithPlaybooks})
