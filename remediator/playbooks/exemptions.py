"""Exemptions: resources a playbook must leave alone, each with an owner, a reason and an expiry.

```yaml
exemptions:
  - resource: /subscriptions/*/resourceGroups/rg-legacy/*   # an ARM id, or a glob (* and ?), any case
    playbook: storage-disable-public-blob-access            # or "*" for every playbook
    owner: alice@example.com
    reason: Public static website until migration (TICKET-123)
    expires: 2027-01-31                                     # from this day on, the entry no longer applies
```

A resource can also exempt itself with the ``remediation-exempt`` tag (any key casing); the tag's
value is the reason. The file is read with the same strict YAML rules as playbooks and its
problems are reported the same way (``file:line: path: message``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from remediator import ids
from remediator.errors import ExemptionsError, Issue
from remediator.playbooks._validation import did_you_mean, format_path, issues_from
from remediator.playbooks.match import glob_match, is_glob
from remediator.playbooks.model import NAME_PATTERN
from remediator.playbooks.yamlload import YamlProblem, decode, load

EXEMPT_TAG = "remediation-exempt"
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NAME = re.compile(NAME_PATTERN)


def _resource(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected an ARM resource id or glob starting with /subscriptions/, got {value!r}")
    if not value.strip("/*?"):
        raise ValueError(f"{value!r} would exempt every resource; remove the playbook instead")
    return value


def _playbook(value: str) -> str:
    if value != "*" and not _NAME.match(value):
        raise ValueError(f"expected a playbook name (kebab-case) or '*', got {value!r}")
    return value


def _date(value: str) -> str:
    try:
        if not _DATE.match(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a date like 2027-01-31, got {value!r}") from None
    return value


class _Doc(BaseModel):
    # defer_build: the validator is built on the first exemptions file read, not on every import of
    # remediator.playbooks (``remediator validate`` without --exemptions never needs it)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class ExemptionDoc(_Doc):
    resource: Annotated[str, AfterValidator(_resource)] = Field(description="ARM id or glob (* and ?).")
    playbook: Annotated[str, AfterValidator(_playbook)] = Field(description="Playbook name, or '*'.")
    owner: str = Field(min_length=1, description="Who answers for this exemption.")
    reason: str = Field(min_length=1, description="Why the resource is exempt (a ticket helps).")
    expires: Annotated[str, AfterValidator(_date), WithJsonSchema({"type": "string", "format": "date"})] = Field(
        description="YYYY-MM-DD; from this day on the exemption no longer applies."
    )


class ExemptionsDoc(_Doc):
    exemptions: list[ExemptionDoc] = Field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exemption:
    resource: str
    playbook: str
    owner: str
    reason: str
    expires: date
    file: str = ""
    line: int | None = None

    def covers(self, resource_id: str, playbook: str) -> bool:
        """True when this entry names ``playbook`` (or ``*``) and ``resource_id`` (id or glob)."""
        if self.playbook not in ("*", playbook):
            return False
        if is_glob(self.resource):
            return glob_match(ids.key(self.resource), ids.key(resource_id))
        return ids.same(self.resource, resource_id)

    def active(self, today: date) -> bool:
        return today < self.expires


class Exemptions:
    """The entries of one exemptions file (or none)."""

    __slots__ = ("_entries", "file")

    def __init__(self, entries: Iterable[Exemption] = (), *, file: str = "") -> None:
        self._entries = tuple(entries)
        self.file = file

    def __iter__(self) -> Iterator[Exemption]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, resource_id: str, playbook: str, *, today: date) -> Exemption | None:
        """The active entry exempting ``resource_id`` from ``playbook``; an exact id beats a glob."""
        hits = [e for e in self._entries if e.active(today) and e.covers(resource_id, playbook)]
        hits.sort(key=lambda e: is_glob(e.resource))
        return hits[0] if hits else None

    def expired(self, today: date) -> list[Exemption]:
        """Entries past their date (to warn their owners; ``find`` ignores them)."""
        return [e for e in self._entries if not e.active(today)]

    def unknown_playbooks(self, names: Iterable[str]) -> list[Issue]:
        """Entries naming a playbook that does not exist (a typo would silently exempt nothing)."""
        known = sorted(names)
        return [
            Issue(
                e.file,
                e.line,
                "playbook",
                f"no playbook named {e.playbook!r}; {did_you_mean(e.playbook, known, 'playbooks')}",
            )
            for e in self._entries
            if e.playbook != "*" and e.playbook not in known
        ]


def exemption_from_tags(tags: Mapping[str, str] | None) -> str | None:
    """The reason from a ``remediation-exempt`` tag (key in any case); None when the tag is absent."""
    for key, value in (tags or {}).items():
        if str(key).strip().lower() == EXEMPT_TAG:
            text = str(value).strip() if value is not None else ""
            return text or f"{EXEMPT_TAG} tag set"
    return None


def validate_exemptions(path: str | Path) -> list[Issue]:
    """Every problem in the exemptions file; empty when it loads."""
    return _load(Path(path))[1]


def load_exemptions(path: str | Path) -> Exemptions:
    """Load an exemptions file; ``ExemptionsError`` (first problem, and how many more) if invalid."""
    exemptions, issues = _load(Path(path))
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise ExemptionsError(f"{issues[0]}{more}")
    return exemptions


def _load(path: Path) -> tuple[Exemptions, list[Issue]]:
    shown = path.as_posix()
    try:
        data = path.read_bytes()
    except OSError as err:
        return Exemptions(file=shown), [Issue(shown, None, "", f"cannot read: {err.strerror or err}")]
    try:
        doc = load(decode(data))
    except YamlProblem as err:
        return Exemptions(file=shown), [Issue(shown, err.line, "yaml", err.message)]
    issues = [Issue(shown, p.line, format_path(p.path), p.message) for p in doc.problems]
    if doc.value is None:
        return Exemptions(file=shown), issues
    if not isinstance(doc.value, dict):
        issues.append(Issue(shown, doc.line(()), "", "expected a mapping with an 'exemptions' list"))
        return Exemptions(file=shown), issues
    try:
        parsed = ExemptionsDoc.model_validate(doc.value)
    except ValidationError as err:
        issues += issues_from(err, file=shown, doc=doc, model=ExemptionsDoc)
        return Exemptions(file=shown), sorted(issues, key=lambda i: i.line or 0)
    entries: list[Exemption] = []
    seen: dict[tuple[str, str], int] = {}
    for i, e in enumerate(parsed.exemptions):
        line = doc.line(("exemptions", i))
        key = (ids.key(e.resource), e.playbook)
        if key in seen:
            issues.append(
                Issue(shown, line, f"exemptions[{i}]", f"same resource and playbook as exemptions[{seen[key]}]")
            )
        seen.setdefault(key, i)
        entries.append(
            Exemption(
                resource=e.resource,
                playbook=e.playbook,
                owner=e.owner,
                reason=e.reason,
                expires=date.fromisoformat(e.expires),
                file=shown,
                line=line,
            )
        )
    return Exemptions(entries, file=shown), sorted(issues, key=lambda i: i.line or 0)
