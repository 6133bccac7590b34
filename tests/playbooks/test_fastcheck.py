"""``validate``'s fast path (``remediator.playbooks.fastcheck``): the generated schema is current, the
fast path imports no pydantic and no action, and it never accepts what the full loader refuses, nor
accepts a playbook differently (the shipped ones, each action's docstring example, and thousands of
mutations of them)."""

from __future__ import annotations

import inspect
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from remediator.actions import REGISTRY
from remediator.app.paths import SHIPPED_PLAYBOOKS
from remediator.playbooks import fastcheck, fastcheck_schema, load_playbooks
from remediator.playbooks.loader import _load_doc, _Loaded
from remediator.playbooks.playbook import Playbook
from remediator.playbooks.yamlload import YamlProblem, load
from tests.conftest import ROOT

REGENERATE = "python -m remediator.playbooks.fastcheck_schema"
def test_the_committed_schema_is_current() -> None:
    """Adding or changing an action, its parameters or the playbook models changes the schema."""
    fresh = fastcheck_schema.render(fastcheck_schema.generate())
    committed = fastcheck_schema.OUTPUT.read_text(encoding="utf-8")
    assert fresh == committed, f"{fastcheck_schema.OUTPUT.relative_to(ROOT)} is stale: run `{REGENERATE}`"


def test_the_schema_covers_every_registered_action() -> None:
    content = json.loads(fastcheck_schema.OUTPUT.read_text(encoding="utf-8"))
    assert sorted(content["actions"]) == sorted(REGISTRY)


def test_the_fast_path_imports_no_pydantic_and_no_action() -> None:
    code = (
        "import importlib, sys\n"
        "from remediator.app.cli import main\n"
        f"for m in {sorted(fastcheck_schema.LIGHT_MODULES)!r}: importlib.import_module(m)\n"
        "code = main(['validate', sys.argv[1]])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')"
        " or m.startswith('remediator.actions'))\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(SHIPPED_PLAYBOOKS)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


def test_the_shipped_playbooks_load_alike_on_both_paths() -> None:
    """The benchmark's input: every shipped playbook must be decided by the fast path. When one uses a
    parameter whose validator the fast path cannot call (``fastcheck_schema.unsure_nodes``), write
    that validator as a function in remediator.checks.params (see that package's docstring)."""
    quick = fastcheck.quick_load(SHIPPED_PLAYBOOKS)
    full = load_playbooks(SHIPPED_PLAYBOOKS)
    content = json.loads(fastcheck_schema.OUTPUT.read_text(encoding="utf-8"))
    assert quick is not None, f"the fast path gave up; undecidable: {fastcheck_schema.unsure_nodes(content)}"
    assert [_summary(p) for p in quick] == [_summary(p) for p in full]
    assert quick.disabled == full.disabled == ()


def test_a_stale_or_missing_schema_is_never_used(tmp_path: Path) -> None:
    content = json.loads(fastcheck_schema.OUTPUT.read_text(encoding="utf-8"))
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({**content, "digest": "0" * 64}))
    assert fastcheck.quick_load(SHIPPED_PLAYBOOKS, schema=stale) is None
    assert fastcheck.quick_load(SHIPPED_PLAYBOOKS, schema=tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text("{")
    assert fastcheck.quick_load(SHIPPED_PLAYBOOKS, schema=tmp_path / "broken.json") is None


def test_the_digest_covers_the_actions_and_the_models(tmp_path: Path) -> None:
    """A new action module (or an edit of one) changes the digest, so an old schema is not trusted."""
    root = tmp_path / "remediator"
    for pattern in fastcheck_schema.SOURCES:
        for path in fastcheck_schema.ROOT.glob(pattern):
            target = root / path.relative_to(fastcheck_schema.ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    before = fastcheck_schema.sources_digest(root)
    assert before == fastcheck_schema.sources_digest()
    (root / "actions" / "newservice.py").write_text('"""A new action."""\n')
    assert fastcheck_schema.sources_digest(root) != before


# --------------------------------------------------------------------------------------------
# The fast path against the full loader, one document at a time.


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, SimpleNamespace):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _summary(p: Playbook) -> tuple[Any, ...]:
    steps = [(s.action, _plain(s.params), dict(s.raw_params), s.line) for s in p.steps]
    return (p.name, p.description, p.file, p.priority, p.match, p.risk, p.approval, steps, p.line, p.controls,
            p.enabled)


CHECKER = fastcheck._Checker(json.loads(fastcheck.SCHEMA.read_bytes()))
FAST_ACTIONS: Any = {n: SimpleNamespace(resource_types=tuple(a["resource_types"])) for n, a in CHECKER.actions.items()}


def _both(text: str) -> tuple[_Loaded | None, _Loaded | None]:
    """(fast, full) for one playbook text; fast None when it gives up, full None when it refuses."""
    checker = CHECKER
    doc = load(text)
    fast, fast_issues = checker.load_doc(doc, "x.yaml", FAST_ACTIONS)
    full, full_issues = _load_doc(doc, "x.yaml", actions=REGISTRY)
    assert (fast is None) == bool(fast_issues)
    assert (full is None) == bool(full_issues)
    return fast, full


def _examples() -> Iterator[tuple[str, str]]:
    for path in sorted(SHIPPED_PLAYBOOKS.glob("*.yaml")):
        yield path.name, path.read_text(encoding="utf-8")
    for name, action in sorted(REGISTRY.items()):
        block = re.search(r"```yaml\n(.*?)```", inspect.cleandoc(type(action).__doc__ or ""), re.S)
        assert block is not None
        yield f"{name} example", block.group(1)


EXAMPLES = dict(_examples())


UNSURE = fastcheck_schema.unsure_nodes(json.loads(fastcheck_schema.OUTPUT.read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_loads_alike_on_both_paths(name: str) -> None:
    """An action whose validators are all checks the fast path can call (remediator.checks.params) is
    decided there; one with a validator elsewhere is left to the loader (correct, slower)."""
    fast, full = _both(EXAMPLES[name])
    assert full is not None, name
    if fast is None:
        assert any(action in UNSURE for action in CHECKER.actions if action in EXAMPLES[name]), \
            f"{name}: the fast path gave up on a valid playbook"
        return
    assert _summary(fast.playbook) == _summary(full.playbook)


# Values a playbook author could write anywhere: other types, near misses, edge sizes.
ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, 1, -1, 5, 3389, 65536, 1.5, "", " ", "yes", "off", "1", "true", "x" * 600,
    "auto", "slack", "low", "high", "medium", "Medium", "critical", "MEDIUM", "4h", "3m", "15d", "1h30m", "90",
    "security-oncall", "S0614TZR7", "s0614tzr7", "U123", "C0614TZR7", "Storage.Blob_OpenACL", "*",
    "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6", "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6\n", "not-a-guid",
    "Microsoft.Storage/storageAccounts", "subscription", "microsoft.resources/subscriptions",
    "Microsoft.Authorization/policyExemptions/write", "MCSB NS-2", "MCSB XX-1", "tags.env", "env",
    "22", "22-25", "25-22", "*", "22\x1c", "\u0662\u0662", "rg-\u00e9", "Owner\u2003",
    "203.0.113.0/24", "10.0.0.0/8", "198.51.100.6/31", "Owner", "owner", "Admin",
    "/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg/providers/Microsoft.Network/"
    "virtualNetworks/hub/subnets/default", "DenyAll", "AllowPrivate", "narrow", "deny", "remove",
    [], [None], ["x"], [1], [22, "3389", "x"], {}, {"in": ["a"]}, {"equals": "b", "exists": True}, {"x": 1},
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*at, i))


def _mutate(value: Any, at: tuple[Any, ...], rng: random.Random) -> Any:
    """``value`` with the node at ``at`` replaced, deleted, or (for a mapping) given an unknown key."""
    if not at:
        return rng.choice(ODD_VALUES)
    parent = value
    for seg in at[:-1]:
        parent = parent[seg]
    last = at[-1]
    roll = rng.random()
    if roll < 0.15 and isinstance(parent, dict):
        del parent[last]
    elif roll < 0.2 and isinstance(parent, list):
        parent.pop(last)
    elif roll < 0.25 and isinstance(parent, dict):
        parent[rng.choice(["unknown", "prams", "in", "equals", "enabled", "priority", "params"])] = \
            rng.choice(ODD_VALUES)
    elif roll < 0.3 and isinstance(parent, list):
        parent.append(rng.choice([*ODD_VALUES, parent[last]]))  # a duplicate sometimes
    else:
        parent[last] = json.loads(json.dumps(rng.choice(ODD_VALUES)))
    return value


@pytest.mark.slow(reason="about 4,400 mutated playbooks through both paths")
def test_the_fast_path_never_accepts_what_the_full_loader_refuses() -> None:
    rng = random.Random(20261207)
    accepted = refused = gave_up = 0
    for name, text in sorted(EXAMPLES.items()):
        base = yaml.safe_load(text)
        spots = list(_paths(base))
        for _ in range(100):
            value = json.loads(json.dumps(base))
            for _ in range(rng.choice((1, 1, 1, 2))):
                path = rng.choice(spots)
                try:
                    value = _mutate(value, path, rng)
                except (KeyError, IndexError, TypeError):
                    continue
            try:
                fast, full = _both(yaml.safe_dump(value, sort_keys=False))
            except YamlProblem:  # e.g. a number as a mapping key: refused before either path runs
                refused += 1
                continue
            if fast is not None:
                assert full is not None, f"{name}: fast path accepted what the loader refuses: {value}"
                assert _summary(fast.playbook) == _summary(full.playbook), name
                accepted += 1
            elif full is None:
                refused += 1
            elif not any(action in UNSURE for action in CHECKER.actions if action in text):
                gave_up += 1  # a valid playbook of actions the fast path fully decides
    # the mutations must reach both sides, and the fast path must decide most valid ones itself
    assert accepted > 300, (accepted, refused, gave_up)
    assert refused > 1000, (accepted, refused, gave_up)
    assert gave_up < accepted / 4, (accepted, refused, gave_up)


def test_a_pattern_is_decided_only_on_printable_ascii() -> None:
    """pydantic matches patterns with Rust's regex engine, whose \\s, \\d and $ differ from Python's
    outside printable ASCII ('22\\x1c' is no port to it; Python's \\s takes \\x1c)."""
    node = json.loads(fastcheck.SCHEMA.read_bytes())["actions"]["network.restrict-inbound"]["params"]
    for text in ("22\x1c", "\u0662\u0662", "22\n"):
        with pytest.raises(fastcheck._Doubt):
            fastcheck.check(node, {"ports": [text]})
    assert fastcheck.check(node, {"ports": [" 22 - 25 "]}).ports == [" 22 - 25 "]
