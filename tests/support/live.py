"""Resource documents as live Azure returns them (tests/fixtures/live/, see its SOURCES.md)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "live"


@cache
def _load(name: str) -> Any:
    return json.loads((LIVE / name).read_text(encoding="utf-8"))


def live(name: str) -> dict[str, Any]:
    """A fresh copy of one document (``live("keyvault__vault.json")``)."""
    doc = _load(name)
    if not isinstance(doc, dict):
        raise ValueError(f"{name} holds {len(doc)} documents; use live_documents()")
    return copy.deepcopy(doc)


def live_documents() -> list[dict[str, Any]]:
    """Fresh copies of every document: the whole estate, ready for ``FakeArm.load``."""
    out: list[dict[str, Any]] = []
    for path in sorted(LIVE.glob("*.json")):
        doc = _load(path.name)
        out.extend(copy.deepcopy(doc) if isinstance(doc, list) else [copy.deepcopy(doc)])
    return out
