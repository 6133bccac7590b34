"""Generate ``fastcheck.json``: the playbook structure and every shipped action's parameters, as
``fastcheck`` (``remediator validate``'s fast path) reads them. Regenerate after changing an action,
its parameters or the playbook models::

    python -m remediator.playbooks.fastcheck_schema

``tests/playbooks/test_fastcheck.py`` fails while the committed file differs from what this writes.

The schema is translated from the pydantic *core* schemas (what pydantic itself validates with),
node by node; a node it cannot translate exactly becomes ``{"t": "unsure"}``, on which the fast path
gives up and leaves the file to the full loader. Validator functions are kept by reference
(``module:name``) when they live in a module that imports no pydantic (:data:`LIGHT_MODULES`), so
the fast path calls the same code; a validator anywhere else makes its node unsure.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

LIGHT_MODULES = frozenset({"remediator.playbooks.formats", "remediator.checks.params", "remediator.checks.ports"})
"""Modules whose functions the fast path may call (``test_fastcheck`` checks that none imports pydantic)."""
OUTPUT = Path(__file__).with_name("fastcheck.json")
ROOT = Path(__file__).resolve().parent.parent  # the remediator package
SOURCES = ("actions/*.py", "checks/*.py", "playbooks/model.py", "playbooks/formats.py")
"""The files the schema is made from, relative to the package: their digest is in the file, and the fast
path is used only while the files on disk have the same digest (a stale schema is never trusted)."""
VERSION = 1


def sources_digest(root: Path = ROOT) -> str:
    """SHA-256 over the :data:`SOURCES` files (sorted relative paths and contents, LF line ends)."""
    h = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(root.glob(pattern)):
            text = path.read_bytes().replace(b"\r\n", b"\n")  # the same on a checkout with CRLF line ends
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + text + b"\0")
    return h.hexdigest()


def _unsure(why: str) -> dict[str, Any]:
    return {"t": "unsure", "why": why}


def _ref(fn: Any) -> tuple[str, dict[str, Any]] | None:
    """``module:name`` and baked arguments of a validator the fast path can call, else None."""
    func = getattr(fn, "__func__", None)
    if func is not None:  # a classmethod bound to its model
        marked = getattr(func, "__fastcheck__", None)
        if marked is None:
            return None
        check, args = marked
        ref = _ref(check)
        return None if ref is None else (ref[0], dict(args(fn.__self__)))
    module, name = getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "")
    if module not in LIGHT_MODULES or "." in name or getattr(importlib.import_module(module), name, None) is not fn:
        return None
    return f"{module}:{name}", {}


def _is_strict_scalars(fn: Any) -> bool:
    from remediator.actions.base import Params  # noqa: PLC0415

    return getattr(fn, "__func__", None) is getattr(Params._strict_scalars, "__func__", object())


def _constraints(s: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: s[k] for k in keys if s.get(k) is not None}


def translate(s: Mapping[str, Any]) -> dict[str, Any]:
    """One core-schema node as a fast-path node."""
    t = s.get("type")
    if t in ("str", "int", "float", "bool"):
        allowed = {"str": {"min_length", "max_length", "pattern", "strict"},
                   "int": {"ge", "le", "gt", "lt", "strict"},
                   "float": {"ge", "le", "gt", "lt", "strict", "allow_inf_nan"},
                   "bool": {"strict"}}[t]
        extra = {k for k, v in s.items() if v is not None and k not in allowed | {"type", "metadata", "ref",
                                                                                 "serialization"}}
        if extra or (t == "float" and s.get("allow_inf_nan") is False):
            return _unsure(f"{t} with {sorted(extra) or 'allow_inf_nan'}")
        return {"t": t, **_constraints(s, ("min_length", "max_length", "pattern", "ge", "le", "gt", "lt"))}
    if t in ("any", "none"):
        return {"t": t}
    if t == "literal":
        expected = s["expected"]
        if not all(isinstance(v, str | int | bool) or v is None for v in expected):
            return _unsure("literal of other values")
        return {"t": "literal", "values": list(expected)}
    if t == "nullable":
        return {"t": "nullable", "inner": translate(s["schema"])}
    if t == "list":
        return {"t": "list", "items": translate(s.get("items_schema", {"type": "any"})),
                **_constraints(s, ("min_length", "max_length"))}
    if t == "dict":
        return {"t": "dict", "keys": translate(s.get("keys_schema", {"type": "any"})),
                "values": translate(s.get("values_schema", {"type": "any"})),
                **_constraints(s, ("min_length", "max_length"))}
    if t == "union":
        if s.get("mode", "smart") != "smart":
            return _unsure("union mode")
        choices = [translate(c[0] if isinstance(c, tuple) else c) for c in s["choices"]]
        doubts: list[str] = []
        _walk_unsure(choices, doubts)  # the fast path takes a union only when every other choice surely refuses
        return _unsure(f"union with {doubts[0]}") if doubts else {"t": "union", "choices": choices}
    if t in ("function-after", "function-before"):
        fn = s["function"]
        inner = translate(s["schema"])
        if fn["type"] == "with-info" and t == "function-before" and _is_strict_scalars(fn["function"]):
            return inner  # the fast path takes booleans and integers only as such already
        ref = _ref(fn["function"]) if fn["type"] == "no-info" else None
        if ref is None:
            return _unsure(f"validator {getattr(fn['function'], '__qualname__', fn['function'])!r}")
        return {"t": t.removeprefix("function-"), "check": ref[0], "args": ref[1], "inner": inner}
    if t == "model":
        return _model(s)
    return _unsure(f"core schema type {t!r}")


def _model(s: Mapping[str, Any]) -> dict[str, Any]:
    inner = s["schema"]
    config = s.get("config") or {}
    if s.get("custom_init") or s.get("root_model") or s.get("post_init") or inner.get("type") != "model-fields" \
            or inner.get("computed_fields") or inner.get("extras_schema"):
        return _unsure(f"model {s['cls'].__qualname__} with custom construction")
    extra = config.get("extra_fields_behavior", "ignore")
    if extra not in ("forbid", "ignore"):
        return _unsure(f"model {s['cls'].__qualname__} with extra={extra}")
    if config.get("validate_by_name") or config.get("populate_by_name"):
        return _unsure(f"model {s['cls'].__qualname__} validated by name")
    fields: dict[str, Any] = {}
    for name, f in inner["fields"].items():
        alias = f.get("validation_alias", name)
        if not isinstance(alias, str):
            return _unsure(f"field {name} with an alias path")
        fs = f["schema"]
        entry: dict[str, Any] = {"name": name, "required": True}
        if fs.get("type") == "default":
            if fs.get("validate_default") or fs.get("on_error", "raise") != "raise":
                return _unsure(f"field {name} default")
            entry["required"] = False
            value = fs["default_factory"]() if "default_factory" in fs else fs.get("default")
            try:
                json.dumps(value)
            except TypeError:
                return _unsure(f"field {name} default not JSON")
            entry["default"] = list(value) if isinstance(value, tuple) else value
            fs = fs["schema"]
        entry["schema"] = translate(fs)
        fields[alias] = entry
    return {"t": "model", "name": s["cls"].__qualname__, "forbid": extra == "forbid", "fields": fields}


def _walk_unsure(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("t") == "unsure":
            out.append(node["why"])
        for v in node.values():
            _walk_unsure(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk_unsure(v, out)


def generate() -> dict[str, Any]:
    """The file's content, from the models and the registry as imported now."""
    import remediator.actions  # noqa: F401, PLC0415  (registers the shipped actions)
    from remediator.actions.base import REGISTRY  # noqa: PLC0415
    from remediator.playbooks.model import PlaybookDoc  # noqa: PLC0415

    actions = {
        name: {"resource_types": list(a.resource_types), "params": translate(a.Params.__pydantic_core_schema__)}
        for name, a in sorted(REGISTRY.items())
    }
    return {
        "version": VERSION,
        "digest": sources_digest(),
        "regenerate": "python -m remediator.playbooks.fastcheck_schema",
        "playbook": translate(PlaybookDoc.__pydantic_core_schema__),
        "actions": actions,
    }


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=1, sort_keys=True) + "\n"


def unsure_nodes(content: dict[str, Any]) -> dict[str, list[str]]:
    """Where the fast path gives up: ``playbook`` or an action's name → the reasons (for the tests)."""
    out: dict[str, list[str]] = {}
    for key, node in [("playbook", content["playbook"]), *((n, a["params"]) for n, a in content["actions"].items())]:
        found: list[str] = []
        _walk_unsure(node, found)
        if found:
            out[key] = found
    return out


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m remediator.playbooks.fastcheck_schema",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args(argv)
    text = render(generate())
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if args.check:
        out(f"{OUTPUT}: {'up to date' if text == current else 'stale'}")
        return 0 if text == current else 1
    if text != current:
        OUTPUT.write_text(text, encoding="utf-8")
    out(f"{OUTPUT}: {'written' if text != current else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
