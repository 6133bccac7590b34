"""Where the shipped data lives: the sample findings and state, and the shipped playbooks."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # remediator/
SAMPLES = PACKAGE_DIR / "samples"
SHIPPED_PLAYBOOKS = PACKAGE_DIR.parent / "playbooks"


def default_playbooks_dir() -> Path:
    """``./playbooks`` when run inside a checkout of one's own playbooks, else the shipped folder."""
    local = Path("playbooks")
    return local if local.is_dir() else SHIPPED_PLAYBOOKS
