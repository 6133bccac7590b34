"""Fuzz target: the playbook loader (``remediator validate DIR``, ``plan --playbooks DIR``).

An example is a folder of one to three files: shipped playbooks mutated as text (lines dropped,
doubled, swapped, re-indented, tokens replaced by hostile YAML) and as values (random edits,
dumped back), the same playbook twice, random YAML, alias bombs ("billion laughs"), deep
nesting, tags, merge keys, BOMs, UTF-16 and damaged bytes.

Contract: ``load_playbooks`` raises only ``PlaybookError``; every issue is one line naming a file
of the folder (or the folder); what loads plans the sample findings against the sample state
without an exception, every reason on one line. ``validate``'s fast path (``quick_load``) accepts
nothing the loader refuses, and what it accepts is what the loader loads.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from remediator.errors import PlaybookError
from tests.fuzz.contract import Violation, one_line_error, tidy
from tests.fuzz.strategies import JSON, Seeds, damaged, encoded, mutated

NAME = "playbooks"
ROOT = Path(__file__).resolve().parents[2]
TEXTS = Seeds(p.read_text(encoding="utf-8") for p in sorted((ROOT / "playbooks").glob("*.yaml")))
VALUES = Seeds(yaml.safe_load(t) for t in TEXTS)

HOSTILE_YAML: tuple[str, ...] = (
    "!!python/object/apply:os.system ['true']", "!!binary aGVsbG8=", "!custom x", "*undefined", "&a [*a]",
    "<<: {x: 1}", ".nan", ".inf", "-.inf", "1e999", "9" * 5000, "0x" + "f" * 5000, "0o9", "yes", "on",
    "~", "null", "''", '"\\ud800"', '"\\x00"', "\t", "[" * 200 + "]" * 200, "{" * 60 + "}" * 60,
    "|\n  multi\n  line", ">-", "- - -", "? complex\n: key", "%YAML 1.1", "---\n---", "...", "@", "`",
    "2001-12-14t21:59:43.10-05:00", "12:30:00", "S0614TZR7", "0", "-1", "1000000", "P1D", "2h", "0s",
)


def _bomb(width: int, depth: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, depth + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\nname: *a{depth}\n"


@st.composite
def _text_mutated(draw: st.DrawFn) -> str:
    lines = TEXTS[draw(st.integers(0, len(TEXTS) - 1))].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "double", "swap", "indent", "dedent", "token", "insert", "tab"]))
        if op == "drop":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "token":
            head, sep, _ = lines[i].partition(": ")
            token = draw(st.sampled_from(HOSTILE_YAML))
            lines[i] = f"{head}{sep}{token}" if sep else f"{lines[i]} {token}"
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=30)))
        else:
            lines[i] = lines[i].replace("  ", "\t", 1)
    return "\n".join(lines) + "\n"


@st.composite
def _value_mutated(draw: st.DrawFn) -> str:
    value = draw(mutated(VALUES, max_mutations=3))
    try:
        return yaml.safe_dump(value, allow_unicode=draw(st.booleans()), sort_keys=False)
    except yaml.YAMLError:  # a value PyYAML cannot represent: the seed as it was
        return yaml.safe_dump(VALUES[0])


_CONTENT = st.one_of(
    _text_mutated(), _text_mutated(), _value_mutated(), _value_mutated(),
    st.sampled_from(TEXTS),
    JSON.map(yaml.safe_dump),
    st.text(max_size=200),
    st.sampled_from(HOSTILE_YAML),
    st.tuples(st.integers(1, 12), st.integers(1, 12)).map(lambda wd: _bomb(*wd)),
    st.integers(1, 100_000).map(lambda n: "name: " + "[" * n + "]" * n),
    st.integers(1, 2_000).map(lambda n: "".join(f"{'  ' * i}k{i}:\n" for i in range(n))),
)


@st.composite
def _file(draw: st.DrawFn) -> bytes:
    text = draw(_CONTENT)
    if draw(st.integers(0, 5)) == 0:
        return draw(encoded(text))
    return draw(damaged(text.encode("utf-8", "surrogatepass")))


@st.composite
def _example(draw: st.DrawFn) -> tuple[tuple[str, bytes], ...]:
    count = draw(st.integers(1, 3))
    files = [(name, draw(_file())) for name in ["a.yaml", "b.yml", "c.yaml"][:count]]
    if draw(st.integers(0, 5)) == 0:  # the same playbook twice: names and claims collide
        files.append(("copy.yaml", copy.copy(files[0][1])))
    if draw(st.integers(0, 9)) == 0:
        files.append((".editor-swap.yaml", b"\x00\x01"))
    return tuple(files)


STRATEGY = _example()


@functools.cache
def _inputs() -> tuple[Any, list[Any]]:
    from remediator.app.paths import SAMPLES
    from remediator.azure.state import SavedState
    from remediator.findings.parse import parse_file

    records = [r for p in sorted((SAMPLES / "findings").glob("*.json")) for r in parse_file(p)]
    return SavedState.from_path(SAMPLES / "state"), records


def run(example: tuple[tuple[str, bytes], ...]) -> str | None:
    from remediator.planning.planner import Planner
    from remediator.playbooks import load_playbooks
    from remediator.playbooks.fastcheck import quick_load

    with tempfile.TemporaryDirectory(prefix="fuzz-playbooks-") as tmp:
        for name, content in example:
            (Path(tmp) / name).write_bytes(content)
        quick = quick_load(tmp)
        try:
            playbooks = load_playbooks(tmp)
        except PlaybookError as exc:
            if quick is not None:
                raise Violation("validate's fast path accepted a folder the loader refuses") from None
            if not exc.issues:
                raise Violation("PlaybookError without issues") from None
            for issue in exc.issues:
                one_line_error(str(issue), names=[tmp], what="issue")
                if not issue.file.startswith(tmp):
                    raise Violation(f"issue names no file of the folder: {issue.file!r}") from None
            return tidy(one_line_error(str(exc), names=[tmp]), tmp)
        if quick is not None and _seen(quick) != _seen(playbooks):
            raise Violation("validate's fast path loaded the folder differently from the loader")
        state, records = _inputs()
        for result in Planner(playbooks=playbooks, state=state).plan(records):
            one_line_error(result.reason, what=f"{result.outcome} reason")
    return None


def _seen(playbooks: Any) -> list[tuple[Any, ...]]:
    """What ``validate`` reports and the cross-file checks use, per playbook (enabled and disabled)."""
    every = [*playbooks, *playbooks.disabled]
    return [(p.name, p.file, p.line, p.priority, p.enabled, p.match, p.risk, p.approval, p.controls,
             [(s.action, dict(s.raw_params), s.line) for s in p.steps]) for p in every]
