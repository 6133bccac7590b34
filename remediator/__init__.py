"""remediator: Defender for Cloud findings → YAML playbooks → exact, approved, PIM-scoped fixes.

The curated public API (pinned by ``tests/test_public_api.py``); names load on first use so
``import remediator`` stays cheap on a Functions cold start::

    parse_bytes, parse_value, parse_file      payloads → Finding | Ignored
    Finding, Ignored, Severity                the values findings become
    load_playbooks, load_exemptions           strict YAML loading (PlaybookError: file:line: path: message)
    Planner, Change, Result, fingerprint      the dry run and its output
    SavedState                                offline state; LiveState lives in remediator.azure.reader
    RemediatorError (and the tree in remediator.errors)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "parse_bytes": "remediator.findings.parse",
    "parse_value": "remediator.findings.parse",
    "parse_file": "remediator.findings.parse",
    "Finding": "remediator.findings.model",
    "Ignored": "remediator.findings.model",
    "Severity": "remediator.findings.model",
    "load_playbooks": "remediator.playbooks",
    "load_exemptions": "remediator.playbooks",
    "Planner": "remediator.planning.planner",
    "Change": "remediator.actions.change",
    "Result": "remediator.planning.result",
    "fingerprint": "remediator.actions.change",
    "SavedState": "remediator.azure.state",
    "RemediatorError": "remediator.errors",
}

__all__ = [
    "Change", "Finding", "Ignored", "Planner", "RemediatorError", "Result", "SavedState", "Severity",
    "__version__", "fingerprint", "load_exemptions", "load_playbooks", "parse_bytes", "parse_file", "parse_value",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'remediator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
