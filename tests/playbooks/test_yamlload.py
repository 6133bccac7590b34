"""libyaml and the pure-Python parser read a playbook the same way: same values, same lines.

``load`` parses with libyaml where PyYAML has it (``yamlload.LIBYAML``) and falls back to the
pure-Python parser for the wording of a problem; these tests hold the two parsers to the same
answer on the shipped playbooks and on a set of broken ones, so ``remediator validate`` points at
the same ``file:line`` whichever parser a machine has.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from remediator.app.cli import main
from remediator.playbooks import yamlload
from remediator.playbooks.yamlload import YamlProblem, compose, load
from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "playbooks").glob("*.yaml"))
needs_libyaml = pytest.mark.skipif(not yamlload.LIBYAML, reason="PyYAML was built without libyaml")

GOOD = """\
# a comment before the playbook
name: storage-fix-blob
description: Turn off public blob access, written é-and-ü so that byte and character offsets differ.
match:
  recommendations: [ae1f4d96-0a39-40c8-8d7c-5b1b5a1e6b6a]
  resource_types: [Microsoft.Storage/storageAccounts]
risk: low
approval: auto
steps:
  - action: storage.disable-public-blob-access
"""

_DEEP = "  - action:\n" + "".join(f"{' ' * (2 * i + 6)}k{i}:\n" for i in range(44)) + " " * 94 + "x"  # 46 levels

# (what is wrong, the text substituted for the last line): each breaks the file at line 10 or later
BROKEN = {
    "unclosed flow sequence": "  - action: [storage.disable-public-blob-access\n",
    "unclosed double quote": '  - action: "storage.disable-public-blob-access\n',
    "unclosed single quote": "  - action: 'storage.disable\n    params: {}\n",
    "mapping value in a plain scalar": "  - action: storage: disable\n",
    "bad indentation": "  - action: storage.disable-public-blob-access\n   params: {}\n",
    "a tab in the indentation": "  - action: storage.disable-public-blob-access\n\tparams: {}\n",
    "an undefined alias": "  - action: *nowhere\n",
    "a control character after non-ASCII text": "  - action: ünïcödé\x01\n",
    "a byte-order mark inside a scalar is fine": "  - action: x\ufeffy\n",
    "a surrogate escape": '  - action: "\\ud800"\n',
    "an escape past U+10FFFF": '  - action: "\\U00110000"\n',
    "a bad escape": '  - action: "\\q"\n',
    "a duplicate key": "  - action: a\n    action: b\n",
    "a python tag": "  - action: !!python/name:os.system\n",
    "a merge key": "  - <<: {action: a}\n",
    "a second document": "  - action: a\n---\nname: again\n",
    "a block scalar with a bad indicator": "  - action: |x\n      text\n",
    "nesting past the limit": _DEEP,
    "a list item in a mapping": "  - action: a\n  params: {}\n - bad\n",
    "a complex key": "  - ? [a, b]\n    : c\n",
}


def _broken(last_line: str) -> str:
    lines = GOOD.splitlines(keepends=True)
    return "".join(lines[:-1]) + last_line


def _outcome(text: str, *, libyaml: bool) -> tuple[object, ...]:
    """What ``load`` gives: the value with every line it records, or the problem's line."""
    try:
        doc = load(text, libyaml=libyaml)
    except YamlProblem as e:
        return ("problem", e.line, e.message)
    return ("ok", doc.value, doc.value_lines, doc.key_lines, [(p.path, p.line, p.message) for p in doc.problems])


@needs_libyaml
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_playbooks_load_the_same_with_either_parser(path: Path) -> None:
    text = yamlload.decode(path.read_bytes())
    fast, pure = _outcome(text, libyaml=True), _outcome(text, libyaml=False)
    assert fast[0] == "ok"
    assert fast == pure


@needs_libyaml
@pytest.mark.parametrize("wrong", sorted(BROKEN))
def test_libyaml_reports_a_broken_file_on_the_pure_parsers_line(wrong: str) -> None:
    text = _broken(BROKEN[wrong])
    pure = _outcome(text, libyaml=False)
    try:
        compose(text, libyaml=True)  # libyaml on its own, without the fallback for the wording
        fast_line = None
    except YamlProblem as e:
        fast_line = e.line
    if fast_line is not None:
        assert pure[0] == "problem"
        assert fast_line == pure[1], f"{wrong}: libyaml says line {fast_line}, the pure parser {pure[1:]}"
    # and what a user sees (libyaml, then the pure parser's words when the file is wrong) is the same
    assert _outcome(text, libyaml=True) == pure


@needs_libyaml
@pytest.mark.parametrize("levels", [38, 39, 40, 41, 42])
def test_nesting_at_the_limit_is_decided_the_same_way(levels: int) -> None:
    """libyaml composes any depth up to its own 1,000; what the pure composer refuses (more than 40
    levels) must still be refused, with the same line and words, and what it accepts accepted."""
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + "  " * levels + "leaf\n"
    aliased = "top: &deep\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(levels - 2)) + \
        "  " * (levels - 1) + "leaf\nagain: [*deep]\n"
    for doc in (text, aliased):
        assert _outcome(doc, libyaml=True) == _outcome(doc, libyaml=False)
    assert (_outcome(text, libyaml=True)[0] == "problem") == (levels + 1 > 40)  # the leaf is level levels+1


@needs_libyaml
def test_the_broken_set_covers_errors_beyond_the_first_lines() -> None:
    outcomes = [_outcome(_broken(last), libyaml=True) for last in BROKEN.values()]
    lines = [o[1] for o in outcomes if o[0] == "problem"]
    assert len(lines) >= len(BROKEN) - 3  # nearly all are problems (a duplicate key is one, but not fatal)
    assert all(isinstance(line, int) and line >= 10 for line in lines)  # a line 1 would not show a lost offset


@needs_libyaml
def test_validate_prints_the_same_lines_with_either_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``remediator validate`` on a folder of broken playbooks: the same output, libyaml or not."""
    for i, wrong in enumerate(sorted(BROKEN)):
        name = re.sub(r"[^a-z0-9]+", "-", wrong.lower()).strip("-")
        (tmp_path / f"{i:02d}-{name}.yaml").write_text(
            _broken(BROKEN[wrong]).replace("storage-fix-blob", f"fix-{i}"), encoding="utf-8"
        )
    printed = []
    for libyaml in (True, False):
        monkeypatch.setattr(yamlload, "LIBYAML", libyaml)
        code = main(["validate", str(tmp_path)], out=io.StringIO())
        printed.append((code, capsys.readouterr().err))
    assert printed[0] == printed[1]
    code, err = printed[0]
    assert code == 1
    assert "-a-control-character-after-non-ascii-text.yaml:10: yaml: character '\\x01' is not allowed in YAML" in err
    assert "-a-duplicate-key.yaml:11: steps[0].action: duplicate key (first defined on line 10)" in err
