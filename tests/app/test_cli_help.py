"""``remediator --help``, ``COMMAND --help`` and ``--version`` as a user runs them (the real entry point)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib

import pytest

from remediator.app.cli import COMMANDS, build_parser
from tests.conftest import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediator", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_module_registers_its_command() -> None:
    assert sorted(_subcommands()) == sorted(m.__name__.rsplit(".", 1)[1] for m in COMMANDS)


def test_the_top_level_help_lists_every_registered_command_with_what_it_does() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0
    listed = re.findall(r"^    ([a-z][a-z-]*)  +\S", proc.stdout, flags=re.MULTILINE)
    assert listed == list(_subcommands()), proc.stdout
    assert "--version" in proc.stdout


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_argument_of_every_command_says_what_it_is(command: str) -> None:
    undocumented = [a.option_strings[0] if a.option_strings else a.dest
                    for a in _subcommands()[command]._actions
                    if not isinstance(a, argparse._HelpAction) and (not a.help or a.help == argparse.SUPPRESS)]
    assert undocumented == [], f"remediator {command}: no help for {undocumented}"


def test_audit_help_tells_of_verify() -> None:
    proc = _cli("audit", "--help")
    assert proc.returncode == 0
    assert "audit verify" in proc.stdout
    assert "verify" in _cli("--help").stdout.split("    audit", 1)[1].split("    report", 1)[0]


def test_version_is_the_package_version() -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    proc = _cli("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"remediator {expected}\n", "")
