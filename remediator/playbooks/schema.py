"""The JSON Schema (draft 2020-12) of a playbook file, for editors (yaml-language-server).

Generated from the same pydantic models the loader validates with, plus one branch per
registered action for ``steps`` (its ``params`` from the action's ``Params`` model). References
are inlined and titles dropped, so the document stays small and reads top to bottom.

Put ``# yaml-language-server: $schema=<path or URL of the file remediator schema writes>`` on the
first line of a playbook to get completion and checks in VS Code and other editors. The loader
does not use this schema: its own checks are stricter and its messages better.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from remediator.actions.base import Action
from remediator.playbooks.model import PlaybookDoc

SCHEMA_ID = "urn:remediator:schema:playbook:v1"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(actions: Mapping[str, Action[Any]] | None = None) -> dict[str, Any]:
    """The playbook schema; ``actions`` defaults to every shipped action."""
    if actions is None:
        from remediator.playbooks.loader import default_actions  # noqa: PLC0415  (avoids an import cycle)

        actions = default_actions()
    body = _compact(PlaybookDoc)
    props = body["properties"]
    props["approval"] = {
        "description": props["approval"].get("description", ""),
        "anyOf": [
            {"const": "auto", "description": "Apply without asking (risk: low only)."},
            {k: v for k, v in props["approval"].items() if k != "description"},
        ],
    }
    steps = props["steps"]
    steps["items"] = {"oneOf": [_step_schema(name, actions[name]) for name in sorted(actions)]}
    return {"$schema": DRAFT, "$id": SCHEMA_ID, "title": "remediator playbook", **body}


def _step_schema(name: str, action: Action[Any]) -> dict[str, Any]:
    doc = (action.summary or (type(action).__doc__ or "").strip().split("\n", 1)[0]).strip()
    params = _compact(action.Params)
    params.pop("description", None)
    step: dict[str, Any] = {
        "type": "object",
        "properties": {
            "action": {"const": name, **({"description": doc} if doc else {})},
            "params": params,
        },
        "required": ["action"],
        "additionalProperties": False,
    }
    if params.get("required"):
        step["required"] = ["action", "params"]
    return step


def _compact(model: type[BaseModel]) -> dict[str, Any]:
    """``model_json_schema()`` with ``$ref``s inlined, titles and nulls-only defaults dropped,
    and ``additionalProperties: false`` on every object that lists its properties or patterns."""
    raw = model.model_json_schema(by_alias=True)
    defs: dict[str, Any] = raw.pop("$defs", {})
    return _clean(raw, defs, ())  # type: ignore[no-any-return]


def _clean(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_clean(x, defs, stack) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/") :]
        if name in stack:
            raise RuntimeError(f"recursive parameter model {name} cannot be inlined")
        target = copy.deepcopy(defs[name])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _clean({**target, **extra}, defs, (*stack, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
            out[key] = {k: _clean(v, defs, stack) for k, v in value.items()}
        else:
            out[key] = _clean(value, defs, stack)
    # Optional[X] comes out as anyOf [X, null]: a null in YAML is never what the author means.
    any_of = out.get("anyOf")
    if isinstance(any_of, list):
        kept = [s for s in any_of if s != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(any_of):
            del out["anyOf"]
            out = {**kept[0], **out}
    if out.get("type") == "object" and ("properties" in out or "patternProperties" in out):
        out.setdefault("additionalProperties", False)
    return out
