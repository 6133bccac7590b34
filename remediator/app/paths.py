"""Where the shipped data lives: the sample findings and state, and the shipped playbooks.

The sample playbooks are the repository's top-level ``playbooks/``; a wheel carries them as
``remediator/samples/playbooks/`` (copied at build time by setup.py: one source, never two copies
in the repository). ``shipped_playbooks()`` finds them either way, and ``playbooks_dir`` is the one
rule every command follows (``plan``, ``scan``, ``validate``, ``report``, ``demo``, ``serve``,
``doctor``, the engine's wiring): a folder that is given is used as given (a typo is an error, never
the shipped playbooks instead); none means ``./playbooks`` if it exists, else the shipped ones.
``REMEDIATOR_PLAYBOOKS_DIR`` left at its default (``playbooks``) counts as none
(``settings_playbooks_dir``), so ``serve`` from another folder works like ``plan``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # remediator/
SAMPLES = PACKAGE_DIR / "samples"
PACKAGED_PLAYBOOKS = SAMPLES / "playbooks"  # in an installed wheel
CHECKOUT_PLAYBOOKS = PACKAGE_DIR.parent / "playbooks"  # in a checkout (or an editable install)
DEFAULT = Path("playbooks")  # Settings.playbooks_dir's default


def shipped_playbooks() -> Path:
    """The sample playbooks: the wheel's copy when installed, else the checkout's folder."""
    return PACKAGED_PLAYBOOKS if PACKAGED_PLAYBOOKS.is_dir() else CHECKOUT_PLAYBOOKS


SHIPPED_PLAYBOOKS = shipped_playbooks()


def playbooks_dir(given: str | Path | None = None) -> Path:
    """The playbooks folder to load: ``given``, else ``./playbooks`` if it is a folder, else the shipped ones."""
    if given is not None and str(given).strip():
        return Path(given)
    return DEFAULT if DEFAULT.is_dir() else shipped_playbooks()


def settings_playbooks_dir(configured: Path) -> Path:
    """``Settings.playbooks_dir`` through ``playbooks_dir``: its default value is not a choice of the user."""
    return playbooks_dir(None if configured == DEFAULT else configured)


def default_playbooks_dir() -> Path:
    """``./playbooks`` when run inside a checkout of one's own playbooks, else the shipped folder."""
    return playbooks_dir(None)
