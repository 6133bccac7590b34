"""The catalog of built-in Azure Policy definitions remediator measures itself against.

``policy-catalog.tsv`` (next to this file) is a copy of the project's reference table: the 571
built-in definitions of Azure/azure-policy ``built-in-policies/policyDefinitions/`` (commit f4a50bac,
2026-04-29) in the mission's categories, deprecated ones and the Azure Government copies left out,
with a classification (``class``: a matched, b0 an action exists, b property change, c more logic, d not
a configuration change) and the Modify definitions' operations (``modify_ops``: ``alias=value``).

It serves two readers: ``match.policy_categories`` of a playbook (the built-in definitions of a
category whose effect can be Modify) and ``remediator coverage`` / ``docs/coverage.md``.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("policy-catalog.tsv")
CATALOG_SOURCE = ("Azure/azure-policy built-in-policies/policyDefinitions at f4a50bac (2026-04-29), the mission's "
                  "categories, deprecated and Azure Government copies left out")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One built-in definition: its GUID (lower case), category (the repository folder), display name,
    the allowed values of its effect, the resource types it targets and its Modify operations."""

    klass: str
    category: str
    id: str
    display_name: str
    effects: tuple[str, ...]
    resource_types: tuple[str, ...]
    modify_ops: tuple[str, ...]
    note: str
    file: str

    @property
    def can_modify(self) -> bool:
        """The definition's effect can be Modify (its operations are what remediator plans)."""
        return any(e.lower() == "modify" for e in self.effects) and bool(self.modify_ops)


@functools.cache
def catalog() -> tuple[CatalogEntry, ...]:
    """The catalog's rows, in file order (read once)."""
    with CATALOG_FILE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return tuple(
        CatalogEntry(klass=r["class"], category=r["folder"], id=r["id"].strip().lower(), display_name=r["displayName"],
                     effects=_effects(r["effects"]),
                     resource_types=tuple(t.strip() for t in re.split(r"[,;]", r["resource_types"]) if t.strip()),
                     modify_ops=tuple(o.strip() for o in r["modify_ops"].split("; ") if o.strip()),
                     note=r["note"], file=r["file"])
        for r in rows)


def _effects(text: str) -> tuple[str, ...]:
    """The effects column (``audit/Audit/deny/Deny``: definitions list both casings) once each, as
    Azure spells them (the capitalised form where both are listed)."""
    found: dict[str, str] = {}
    for e in (e.strip() for e in text.split("/") if e.strip()):
        if e.lower() not in found or (e[0].isupper() and not found[e.lower()][0].isupper()):
            found[e.lower()] = e
    return tuple(found.values())


@functools.cache
def by_id() -> dict[str, CatalogEntry]:
    return {e.id: e for e in catalog()}


def modify_categories() -> dict[str, tuple[str, ...]]:
    """Category (lower case) → the GUIDs of its built-in definitions whose effect can be Modify."""
    out: dict[str, list[str]] = {}
    for e in catalog():
        if e.can_modify:
            out.setdefault(e.category.lower(), []).append(e.id)
    return {k: tuple(v) for k, v in out.items()}


def category_names() -> list[str]:
    """The categories that have Modify definitions, as the catalog spells them."""
    return sorted({e.category for e in catalog() if e.can_modify})
