"""infra/*.bicep, parsed (pycep-parser, the parser checkov uses) and rendered as ARM documents.

``parse(path)`` is pycep's JSON form of a template. ``Template`` evaluates it the way a deployment
would, as far as that can be known offline: parameters take their defaults (or the overrides
given, e.g. ``publicTrial``), variables and expressions are evaluated (string interpolation,
``? :``, ``!``, ``==``, the functions the templates use), conditions and ``for`` loops decide which
resources exist, and each resource becomes the document ARM would return for it: ``id``, ``name``,
``type``, ``location``, ``kind``, ``sku``, ``tags``, ``identity`` and its declared ``properties``.
Values known only after deployment (``storage.properties.primaryEndpoints.blob``,
``uniqueString``, principal ids) are ``Unknown``: rendered as ``<unknown: …>`` strings, never a
guess.

pycep gives an identifier and a string literal the same shape (``location`` and ``'location'``
are both ``"location"``): a string naming a parameter, variable, resource or loop variable is read
as that symbol. ``tests/infra/test_template.py`` checks that no literal in the templates collides
with a symbol name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep import BicepParser

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c0de"
RESOURCE_GROUP = "rg-remediator"
LOCATION = "swedencentral"
TENANT = "00000000-0000-0000-0000-0000000000aa"
ENVIRONMENT = {
    "name": "AzureCloud",
    "resourceManager": "https://management.azure.com/",
    "suffixes": {"storage": "core.windows.net", "keyvaultDns": ".vault.azure.net"},
}


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()


@functools.cache
def _parse_text(text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = _parser().parse(text=text)
    return parsed


def parse(path: Path) -> dict[str, Any]:
    """pycep's JSON of a template (raises on a syntax error, with the line)."""
    return _parse_text(path.read_text(encoding="utf-8"))


@functools.cache
def _expression(text: str) -> Any:
    """The parsed form of one expression (the inside of a ``${…}``)."""
    return _parse_text(f"var x = {text}\n")["variables"]["x"]["value"]


@dataclass(frozen=True)
class Unknown:
    """A value only a deployment knows."""

    what: str

    def __str__(self) -> str:
        return f"<unknown: {self.what}>"


@dataclass
class Resource:
    symbol: str
    type: str
    api_version: str
    config: Mapping[str, Any]
    scope_vars: dict[str, Any] = field(default_factory=dict)
    doc: dict[str, Any] | None = None


def _interpolations(text: str) -> Iterator[tuple[bool, str]]:
    """``(is_expression, part)`` of a Bicep string, ``${…}`` matched with nesting and quotes."""
    i = 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            yield False, text[i:]
            return
        if start > i:
            yield False, text[i:start]
        depth, j, quoted = 1, start + 2, False
        while j < len(text) and depth:
            ch = text[j]
            if ch == "'":
                quoted = not quoted
            elif not quoted and ch == "{":
                depth += 1
            elif not quoted and ch == "}":
                depth -= 1
            j += 1
        yield True, text[start + 2:j - 1]
        i = j


class Template:
    """One parsed template, rendered for the given parameter values (defaults otherwise)."""

    def __init__(self, path: Path, params: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.parsed = parse(path)
        given = dict(params or {})
        unknown = set(given) - set(self.parsed["parameters"])
        if unknown:
            raise KeyError(f"{path.name} has no parameter(s) {sorted(unknown)}")
        self.params: dict[str, Any] = {}
        for pname, spec in self.parsed["parameters"].items():
            if pname in given:
                self.params[pname] = given[pname]
            elif spec.get("default") is not None:
                self.params[pname] = self.eval(spec["default"], {})
            else:
                self.params[pname] = Unknown(f"required parameter {pname}")
        self._vars: dict[str, Any] = {}
        self._instances_of: dict[str, list[Resource]] = {}

    # -- symbols -----------------------------------------------------------------------------
    def symbols(self) -> set[str]:
        p = self.parsed
        return set(p["parameters"]) | set(p["variables"]) | set(p["resources"]) | set(p.get("modules") or {})

    def var(self, name: str) -> Any:
        if name not in self._vars:
            self._vars[name] = Unknown(f"variable {name} (cycle)")
            self._vars[name] = self.eval(self.parsed["variables"][name]["value"], {})
        return self._vars[name]

    def resources(self) -> dict[str, list[Resource]]:
        """Symbol → the deployed instances (none when its condition is false; one per loop item)."""
        out = {symbol: self.instances(symbol) for symbol in self.parsed["resources"]}
        for instances in out.values():
            for r in instances:
                self.document(r)
        return out

    def instances(self, symbol: str) -> list[Resource]:
        if symbol not in self._instances_of:
            self._instances_of[symbol] = list(self._instances(symbol, self.parsed["resources"][symbol]))
        return self._instances_of[symbol]

    def _instances(self, symbol: str, spec: Mapping[str, Any]) -> Iterator[Resource]:
        config = spec["config"]
        if "loop_type" in config:
            loop = config["loop_type"]
            detail = loop["detail"]
            items = self.eval(detail.get("array_name"), {}) if loop["type"] in ("array", "array_index") else None
            if not isinstance(items, list):
                raise ValueError(f"{self.path.name}: resource {symbol}: cannot evaluate its loop ({loop})")
            for index, item in enumerate(items):
                scope = {detail["item_name"]: item}
                if detail.get("index_name"):
                    scope[detail["index_name"]] = index
                body = config["config"]
                condition = config.get("condition")
                if condition is not None and self.eval(condition, scope) is not True:
                    continue
                yield Resource(symbol, spec["type"], spec["api_version"], body, scope)
            return
        if "condition" in config and "config" in config and isinstance(config["config"], Mapping):
            cond = self.eval(config["condition"], {})
            if isinstance(cond, Unknown):
                raise ValueError(f"{self.path.name}: resource {symbol}: condition {config['condition']!r} is {cond}")
            if cond is True:
                yield Resource(symbol, spec["type"], spec["api_version"], config["config"])
            return
        yield Resource(symbol, spec["type"], spec["api_version"], config)

    def modules(self) -> dict[str, Template]:
        """Each local module, rendered with the parameters this template passes it."""
        out: dict[str, Template] = {}
        for symbol, spec in (self.parsed.get("modules") or {}).items():
            config = spec["config"]
            params = {k: self.eval(v, {}) for k, v in (config.get("params") or {}).items()}
            out[symbol] = Template(self.path.parent / spec["detail"]["path"], params)
        return out

    def documents(self, *, modules: bool = True) -> list[dict[str, Any]]:
        """Every deployed resource as a JSON-safe ARM document (``Unknown`` → ``<unknown: …>``),
        with those of its modules."""
        docs = [r.doc for rs in self.resources().values() for r in rs if r.doc is not None]
        if modules:
            for module in self.modules().values():
                docs.extend(module.documents())
        return [json.loads(json.dumps(d, default=str)) for d in docs]

    def document(self, r: Resource) -> dict[str, Any]:
        if r.doc is not None:
            return r.doc
        c, scope = r.config, r.scope_vars
        name = self.eval(c.get("name"), scope)
        parent = c.get("parent")
        if parent is not None:
            parent_doc = self._resolve_ref(parent, scope)
            rid = f"{parent_doc['id']}/{r.type.rsplit('/', 1)[1]}/{name}"
        elif c.get("scope") is not None:
            target = self._resolve_ref(c["scope"], scope)
            base = target["id"] if isinstance(target, Mapping) else str(target)
            rid = f"{base}/providers/{r.type}/{name}"
        elif (self.parsed.get("globals") or {}).get("scope", {}).get("value") == "subscription":
            rid = f"/subscriptions/{SUBSCRIPTION}/providers/{r.type}/{name}"
        else:
            rid = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{r.type}/{name}"
        doc: dict[str, Any] = {"id": rid, "name": name, "type": r.type, "apiVersion": r.api_version}
        r.doc = doc  # before the properties: a property may refer to the resource's own id
        for key in ("location", "kind", "sku", "tags", "identity", "properties"):
            if key in c:
                doc[key] = self.eval(c[key], scope)
        return doc

    def _resolve_ref(self, node: Any, scope: Mapping[str, Any]) -> Any:
        """``parent: storage`` / ``scope: vault`` / ``privateZones[i]``: the document."""
        value = self.eval(node, scope)
        if isinstance(value, list) and len(value) == 1:
            return value[0]
        return value

    def _resource_value(self, symbol: str) -> Any:
        docs = [self.document(r) for r in self.instances(symbol)]
        if "loop_type" in self.parsed["resources"][symbol]["config"]:
            return docs
        if not docs:
            return Unknown(f"resource {symbol} (not deployed)")
        return docs[0]

    # -- expressions -------------------------------------------------------------------------
    def eval(self, node: Any, scope: Mapping[str, Any]) -> Any:
        if isinstance(node, str):
            return self._string(node, scope)
        if isinstance(node, Unknown):
            return node
        if isinstance(node, bool | int | float) or node is None:
            return node
        if isinstance(node, list):
            return [self.eval(n, scope) for n in node]
        if isinstance(node, Mapping):
            if set(node) == {"operator"}:
                return self._operator(node["operator"], scope)
            if set(node) == {"function"}:
                value = self._function(node["function"], scope)
                prop = node["function"].get("property_name")
                return self._access(value, prop, scope) if prop else value
            if "loop_type" in node and "config" in node:
                return self._loop(node, scope)
            return {str(self._key(k, scope)): self.eval(v, scope) for k, v in node.items()}
        return Unknown(repr(node))

    def _loop(self, node: Mapping[str, Any], scope: Mapping[str, Any]) -> Any:
        """A ``[for …]`` expression inside a value."""
        loop, detail = node["loop_type"], node["loop_type"]["detail"]
        if loop["type"] == "object":
            source = self.eval(detail["object_name"], scope)
            if not isinstance(source, Mapping):
                return Unknown("for over an object")
            items: list[Any] = [{"key": k, "value": v} for k, v in sorted(source.items(), key=lambda kv: kv[0].lower())]
        else:
            source = self.eval(detail["array_name"], scope)
            if not isinstance(source, list):
                return Unknown("for over an array")
            items = source
        out = []
        for index, item in enumerate(items):
            inner = {**scope, detail["item_name"]: item}
            if detail.get("index_name"):
                inner[detail["index_name"]] = index
            if node.get("condition") is not None and self.eval(node["condition"], inner) is not True:
                continue
            out.append(self.eval(node["config"], inner))
        return out

    def _key(self, key: str, scope: Mapping[str, Any]) -> Any:
        if len(key) > 1 and key[0] == key[-1] == "'":  # a quoted key: '${hostIdentity.id}'
            key = key[1:-1]
        return self._interpolate(key, scope) if "${" in key else key

    def _string(self, text: str, scope: Mapping[str, Any]) -> Any:
        if "${" in text:
            return self._interpolate(text, scope)
        if text in scope:
            return scope[text]
        p = self.parsed
        if text in p["parameters"]:
            return self.params[text]
        if text in p["variables"]:
            return self.var(text)
        if text in p["resources"]:
            return self._resource_value(text)
        if text in (p.get("modules") or {}):
            return Unknown(f"module {text}")
        return text

    def _interpolate(self, text: str, scope: Mapping[str, Any]) -> Any:
        out: list[str] = []
        for is_expr, part in _interpolations(text):
            if not is_expr:
                out.append(part)
                continue
            value = self.eval(_expression(part), scope)
            if isinstance(value, Unknown):
                return Unknown(text)
            out.append(_text(value))
        return "".join(out)

    def _operator(self, op: Mapping[str, Any], scope: Mapping[str, Any]) -> Any:
        kind, o = op["type"], op.get("operands") or {}
        if kind == "property_accessor":
            return self._access(self.eval(o["operand_1"], scope), o["operand_2"], scope)
        if kind == "index_accessor":
            base, index = self.eval(o["operand_1"], scope), self.eval(o["operand_2"], scope)
            if isinstance(base, Unknown) or isinstance(index, Unknown):
                return Unknown("index")
            try:
                return base[index]
            except (KeyError, IndexError, TypeError):
                return Unknown(f"[{index}]")
        if kind == "conditional":
            cond = self.eval(o["condition"], scope)
            if isinstance(cond, Unknown):
                return Unknown("condition")
            return self.eval(o["true_value"] if cond else o["false_value"], scope)
        values = {k: self.eval(v, scope) for k, v in o.items()}
        if any(isinstance(v, Unknown) for v in values.values()):
            return Unknown(kind)
        ops: dict[str, Callable[..., Any]] = {
            "not": lambda bool_value: not bool_value,
            "equals": lambda operand_1, operand_2: operand_1 == operand_2,
            "not_equals": lambda operand_1, operand_2: operand_1 != operand_2,
            "and": lambda **kw: all(kw.values()),
            "or": lambda **kw: any(kw.values()),
            "greater_than": lambda operand_1, operand_2: operand_1 > operand_2,
            "greater_than_or_equals": lambda operand_1, operand_2: operand_1 >= operand_2,
            "less_than": lambda operand_1, operand_2: operand_1 < operand_2,
            "less_than_or_equals": lambda operand_1, operand_2: operand_1 <= operand_2,
            "add": lambda operand_1, operand_2: operand_1 + operand_2,
            "minus": lambda operand: -operand,
        }
        if kind not in ops:
            return Unknown(f"operator {kind}")
        return ops[kind](**values)

    def _access(self, base: Any, path: Any, scope: Mapping[str, Any]) -> Any:
        """``base.a.b``: pycep nests the right-hand side (``a`` then ``b``) as accessors too."""
        names: list[Any] = []
        node = path
        while (isinstance(node, Mapping) and set(node) == {"operator"}
               and node["operator"]["type"] == "property_accessor"):
            names.append(node["operator"]["operands"]["operand_1"])
            node = node["operator"]["operands"]["operand_2"]
        if isinstance(node, str) and "." in node:
            names.extend(node.split("."))
        else:
            names.append(node)
        value = base
        for name in names:
            if isinstance(value, Unknown):
                return value
            if isinstance(name, Mapping):  # e.g. a function call on the right: give up honestly
                return Unknown("accessor")
            if isinstance(value, Mapping) and name in value:
                value = value[name]
            elif isinstance(value, Mapping) and "id" in value and "type" in value:
                value = Unknown(f"{value.get('name')}.{name}")  # a runtime property of a resource
            else:
                return Unknown(f".{name}")
        return value

    def _function(self, fn: Mapping[str, Any], scope: Mapping[str, Any]) -> Any:
        name = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), fn["type"])  # pycep: unique_string
        raw = fn.get("parameters") or {}
        if name == "filter":
            items = self.eval(raw["input_array"], scope)
            var, body = raw["input_element"], raw["expression"]
            if isinstance(items, Unknown):
                return items
            kept = []
            for item in items:
                verdict = self.eval(body, {**scope, var: item})
                if isinstance(verdict, Unknown):
                    return Unknown("filter")
                if verdict:
                    kept.append(item)
            return kept
        args = {k: self.eval(v, scope) for k, v in raw.items()}
        if name == "resourceGroup":
            return {"id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}", "name": RESOURCE_GROUP,
                    "location": LOCATION}
        if name == "subscription":
            return {"id": f"/subscriptions/{SUBSCRIPTION}", "subscriptionId": SUBSCRIPTION, "tenantId": TENANT}
        if name == "environment":
            return ENVIRONMENT
        if any(isinstance(v, Unknown) for v in _flatten(args)):
            return Unknown(f"{name}()")
        values = [v for v in args.values() if v is not None]
        if name == "uniqueString":
            return hashlib.sha256("|".join(map(_text, values)).encode()).hexdigest()[:13]
        if name == "guid":
            h = hashlib.sha256("|".join(map(_text, values)).encode()).hexdigest()
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        if name == "take":
            return values[0][: values[1]]
        if name == "concat":
            if values and isinstance(values[0], list):
                return [x for v in values for x in v]
            return "".join(map(_text, values))
        if name == "replace":
            return str(values[0]).replace(str(values[1]), str(values[2]))
        if name == "empty":
            return not values[0]
        if name == "trim":
            return str(values[0]).strip()
        if name == "split":
            return str(values[0]).split(str(values[1]))
        if name == "join":
            return str(values[1]).join(map(_text, values[0]))
        if name == "string":
            return _text(values[0])
        if name == "toLower":
            return str(values[0]).lower()
        if name == "items":
            return [{"key": k, "value": v} for k, v in sorted(values[0].items(), key=lambda kv: kv[0].lower())]
        if name == "subscriptionResourceId":
            *types, last = values
            return f"/subscriptions/{SUBSCRIPTION}/providers/{types[0]}/{last}"
        if name == "resourceId":
            rtype, *names = values
            segments = rtype.split("/")
            path = segments[0] + "/" + segments[1] + "/" + names[0]
            for seg, n in zip(segments[2:], names[1:], strict=True):
                path += f"/{seg}/{n}"
            return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{path}"
        return Unknown(f"{name}()")


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _flatten(v)
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def literals(node: Any) -> Iterator[str]:
    """Every plain string in a parsed template (what could be a literal or an identifier)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for n in node:
            yield from literals(n)
    elif isinstance(node, Mapping):
        for k, v in node.items():
            if k in ("decorators", "type", "api_version", "loop_type"):
                continue
            yield from literals(v)
