"""Shared test helpers: the real ARM example documents and findings built from them.

``arm_fixture(name)`` returns the ``responses["200"].body`` (a real ARM document from the REST
spec examples in tests/fixtures/arm/); ``make_finding(resource_id, ...)`` builds a ``Finding``
for an ARM resource with sensible defaults, for tests that do not start from a Defender payload.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from remediator import ids
from remediator.model import Finding, FindingKind, Severity

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARM_FIXTURES = FIXTURES / "arm"


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def arm_fixture(name: str, status: str = "200") -> dict[str, Any]:
    """A fresh copy of the response body of an ARM example in tests/fixtures/arm/."""
    return copy.deepcopy(_load(ARM_FIXTURES / name)["responses"][status]["body"])


def make_finding(
    resource_id: str,
    *,
    kind: FindingKind = "recommendation",
    type: str = "00000000-0000-0000-0000-000000000000",
    title: str = "test finding",
    severity: Severity = Severity.HIGH,
    status: str = "Unhealthy",
    source: str = "test",
    principal_id: str | None = None,
    additional_data: dict[str, Any] | None = None,
    extended_properties: dict[str, str] | None = None,
    raw: dict[str, Any] | None = None,
    finding_id: str | None = None,
) -> Finding:
    """A ``Finding`` on ``resource_id``; subscription, group and type derived from the id."""
    rid = ids.parse(resource_id)
    return Finding(
        id=finding_id or f"test:{ids.key(resource_id)}:{type}",
        kind=kind,
        type=type,
        title=title,
        severity=severity,
        status=status,
        resource_id=resource_id,
        subscription_id=rid.subscription_id,
        resource_group=rid.resource_group,
        resource_type=rid.type,
        source=source,
        principal_id=principal_id,
        additional_data={k.lower(): v for k, v in (additional_data or {}).items()},
        extended_properties={k.lower(): v for k, v in (extended_properties or {}).items()},
        raw=raw or {},
    )
