"""Playbooks: load a folder of YAML strictly, match findings to it, honour exemptions.

The public API (pinned by ``tests/test_playbooks_api.py``)::

    load_playbooks(directory) -> PlaybookSet          # PlaybookError listing every problem
    validate_playbooks(directory) -> list[Issue]      # the same problems, not raised
    PlaybookSet.match(finding, tags) -> Playbook | None
    load_exemptions(path) -> Exemptions               # ExemptionsError
    Exemptions.find(resource_id, playbook, today=...) -> Exemption | None
    exemption_from_tags(tags) -> str | None
    json_schema() -> dict                             # for editors; never used to load

Modules: ``yamlload`` (YAML → values with lines, safe), ``model`` (the file as written and the
playbook as used), ``loader`` (the passes), ``match``, ``exemptions``, ``schema``.
"""

from remediator.playbooks.exemptions import (
    EXEMPT_TAG,
    Exemption,
    Exemptions,
    exemption_from_tags,
    load_exemptions,
    validate_exemptions,
)
from remediator.playbooks.loader import load_playbook_file, load_playbooks, validate_playbooks
from remediator.playbooks.match import PlaybookSet
from remediator.playbooks.model import Approval, MatchSpec, Playbook, Step, TagCondition, parse_duration
from remediator.playbooks.schema import json_schema

__all__ = [
    "EXEMPT_TAG",
    "Approval",
    "Exemption",
    "Exemptions",
    "MatchSpec",
    "Playbook",
    "PlaybookSet",
    "Step",
    "TagCondition",
    "exemption_from_tags",
    "json_schema",
    "load_exemptions",
    "load_playbook_file",
    "load_playbooks",
    "parse_duration",
    "validate_exemptions",
    "validate_playbooks",
]
