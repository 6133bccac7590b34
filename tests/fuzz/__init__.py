"""The fuzz suite: hostile input against every parser a user or an outsider can reach.

The harness convention (shared by every target; ``test_fuzz.py`` and ``scripts/fuzz`` rely on it):

* a target is a module ``tests/fuzz/<name>_target.py`` that defines

  - ``NAME: str``: the target's name (``findings``, ``state``, ``playbooks``, ``slack``, …);
  - ``STRATEGY``: a hypothesis strategy producing one example (bytes, text, a list of files, a
    request: whatever the target takes);
  - ``def run(example) -> str | None``: runs the target once, in-process, and returns the one-line
    error message the user would see, or ``None`` when the input is accepted. It **raises** on a
    contract violation: an exception other than the project's own user-facing error type, a
    traceback or a multi-line message, an error that does not name the file/field, output that
    is not strict JSON, a partial document, and so on (``AssertionError`` or the exception
    itself). Messages should not carry per-run noise (temp paths): replace them with ``<tmp>``,
    so that counting distinct messages means something.

* :func:`discover` finds every target module; ``test_fuzz.py`` runs each with a few hundred
  examples in CI, ``scripts/fuzz`` runs 10,000 of each (``-n`` to change) and prints examples,
  crashes (must be 0) and distinct error messages.

Shared checks for targets live in :mod:`tests.fuzz.contract`; strategies in
:mod:`tests.fuzz.strategies`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def discover() -> list[ModuleType]:
    """Every ``tests/fuzz/*_target.py`` module, imported, in name order."""
    modules = []
    for path in sorted(HERE.glob("*_target.py")):
        module = importlib.import_module(f"tests.fuzz.{path.stem}")
        for attr in ("NAME", "STRATEGY", "run"):
            if not hasattr(module, attr):
                raise AssertionError(f"{path.name}: a fuzz target defines NAME, STRATEGY and run(); {attr} is missing")
        modules.append(module)
    return modules
