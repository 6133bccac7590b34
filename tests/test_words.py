"""Counts agree with their nouns: ``plural`` and a walk of the sources for "(s)" and "{n} changes"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from remediator.words import noun, plural, plural_of
from tests.conftest import ROOT

SOURCES = [p for d in ("remediator", "bot", "function_app") for p in sorted((ROOT / d).rglob("*.py"))]
# a count followed by one of these, hard-coded, reads "1 changes" when the count is 1
COUNTED = re.compile(r"^ (?:sample |pending |linked |approved |integrity |virtual network |IP )?"
                     r"(changes|requests|remediations|records|findings|playbooks|approvals|problems|rules|rule\(s\)|"
                     r"writes|grants|resources|errors|warnings|members|users|chains|anchors|connections|"
                     r"endpoints|duplicates|days|hours|minutes|seconds|lines|properties|things|items)\b")
# messages that copy another service's wording on purpose (the fakes answer as Azure and Slack do)
ALLOWED = {
    ("remediator/testing/fake_arm.py", "minutes"),  # PIM's own error text
    ("remediator/testing/fake_slack.py", "items"),  # Slack's invalid_blocks text
    ("remediator/testing/fake_arm.py", "(s)"),  # ARM's 412 ConditionNotMet text ("conditional header(s)")
    ("remediator/testing/fake_private_link.py", "(s)"),  # ARM's LinkedAuthorizationFailed ("linked scope(s)")
}


def _violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.JoinedStr):
            continue
        parts = node.values
        for i, part in enumerate(parts):
            if isinstance(part, ast.Constant) and isinstance(part.value, str) and "(s)" in part.value \
                    and (rel, "(s)") not in ALLOWED:
                found.append(f"{rel}:{node.lineno}: {part.value.strip()!r} (use remediator.words.plural)")
            if i and isinstance(part, ast.Constant) and isinstance(part.value, str) \
                    and isinstance(parts[i - 1], ast.FormattedValue):
                m = COUNTED.match(part.value)
                if m and (rel, m.group(1)) not in ALLOWED:
                    found.append(f"{rel}:{node.lineno}: {{…}}{part.value.split(',')[0]!r} (a count of 1 reads "
                                 f"'1 {m.group(1)}'; use remediator.words.plural)")
    return found


def test_no_message_hard_codes_a_plural_after_a_count() -> None:
    problems = [v for path in SOURCES for v in _violations(path)]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(("n", "word", "text"), [
    (0, "change", "0 changes"), (1, "change", "1 change"), (2, "change", "2 changes"), (1, "approval", "1 approval"),
    (3, "policy", "3 policies"), (2, "process", "2 processes"), (1, "entry", "1 entry"), (2, "entry", "2 entries"),
])
def test_plural(n: int, word: str, text: str) -> None:
    assert plural(n, word) == text


def test_thousands_and_irregular_forms() -> None:
    assert plural(1204, "finding", sep=",") == "1,204 findings"
    assert noun(2, "person", "people") == "people"
    assert noun(1, "is") == "is"
    assert noun(2, "is") == "are"
    assert plural_of("match") == "matches"
