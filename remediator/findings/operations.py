"""The ARM write operations whose success is a finding, apart from the parser so that a playbook's
``operations`` can be checked without importing it (``remediator validate``'s fast path)."""

from __future__ import annotations

WATCHED_OPERATIONS: frozenset[str] = frozenset({
    "microsoft.authorization/policyexemptions/write",
    "microsoft.authorization/roleassignments/write",
    "microsoft.network/virtualnetworks/virtualnetworkpeerings/write",
})
"""ARM write operations whose success is a finding (``kind`` ``operation``), lower-cased."""
