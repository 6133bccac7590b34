"""YAML text → plain Python values, with the line of every value and key.

Built on PyYAML's reader, scanner, parser and composer; the constructor is ours, so that:

* scalars follow the YAML 1.2 core schema (``yes``/``no``/``on``/``off`` stay strings, no
  sexagesimal ``4:30`` integers, no implicit timestamps);
* only plain tags (str, int, float, bool, null, seq, map) are accepted; ``!!python/…`` and local
  tags are refused;
* a key repeated in one mapping is an issue (PyYAML keeps the last one silently);
* anchors and aliases work, but every expanded node is counted: past ``MAX_NODES`` the load stops
  (a "billion laughs" file fails in microseconds), and nesting deeper than ``MAX_DEPTH`` is refused
  before PyYAML's recursive composer can hit Python's recursion limit;
* merge keys (``<<``) are refused: YAML 1.2 dropped them, and they hide keys from the reader.

``load(text)`` returns a ``Document``: ``value`` plus ``line(path)`` for error messages. Problems
that stop the load raise ``YamlProblem(line, message)``; problems that do not (duplicate keys)
are collected in ``Document.problems``.

Speed: where PyYAML was built with libyaml (``yaml.__with_libyaml__``), libyaml reads, scans,
parses and composes (``yaml._yaml.CParser``: the 21 shipped playbooks in ~4 ms instead of ~45 ms)
with the same resolver; every node keeps its ``start_mark``, and our builder applies every rule
above. A file that fails on that path (a syntax error, or nesting the pure composer would refuse)
is read again by the pure-Python parser, so a problem is worded exactly as before; libyaml puts
syntax errors on the same line (``tests/playbooks/test_yamlload.py``). Without libyaml the
pure-Python parser does it all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.events import Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

try:  # libyaml's reader, scanner and parser, when PyYAML was built with it
    from yaml import _yaml as _libyaml
except ImportError:  # pragma: no cover - every PyYAML wheel we install ships it
    _libyaml = None  # type: ignore[assignment]

LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False)) and _libyaml is not None
"""True when ``load`` parses with libyaml (the default then); False: the pure-Python parser."""

MAX_BYTES = 1_000_000
MAX_NODES = 10_000
MAX_DEPTH = 40

Path = tuple[str | int, ...]

_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
_SEQ, _MAP = _T + "seq", _T + "map"
_MAX_INT_BITS = 256
_SURROGATE = re.compile("[\ud800-\udfff]")
_FLOW_NESTING = re.compile(r"[\[{](?:\s*[\[{]){" + str(MAX_DEPTH) + "}")


class YamlProblem(Exception):
    """The file cannot be read as YAML; ``line`` is 1-based (None when unknown)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem that does not stop the load (a duplicate key)."""

    path: Path
    line: int
    message: str


@dataclass(slots=True)
class Document:
    """A loaded YAML document: the value, and where each part of it was written."""

    value: Any
    value_lines: dict[Path, int] = field(default_factory=dict)
    key_lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: Path) -> int | None:
        """The line of ``path``: its key's line if it is a mapping entry, else its value's line;
        for a path that does not exist (a missing key), the line of the nearest ancestor."""
        for end in range(len(path), -1, -1):
            sub = path[:end]
            if sub in self.key_lines:
                return self.key_lines[sub]
            if sub in self.value_lines:
                return self.value_lines[sub]
        return None


class _CoreResolver(BaseResolver):
    """Implicit scalar types of the YAML 1.2 core schema (PyYAML ships only YAML 1.1)."""


_CoreResolver.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_CoreResolver.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_CoreResolver.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreResolver.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


class _Composer(Composer):
    """PyYAML's (recursive) composer with a nesting limit; the events come from either parser."""

    _depth = 0

    if TYPE_CHECKING:  # supplied by the parser it is mixed with

        def peek_event(self) -> Event: ...

        def dispose(self) -> None: ...

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlProblem(None if mark is None else mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Loader(Reader, Scanner, Parser, _Composer, _CoreResolver):
    """The pure-Python front half: PyYAML's reader, scanner and parser."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _CoreResolver.__init__(self)


class _NodeSource(Protocol):
    def get_single_node(self) -> Node | None: ...

    def dispose(self) -> None: ...


_CLoader: Callable[[str], _NodeSource] = _Loader
if _libyaml is not None:

    class _LibyamlLoader(_libyaml.CParser, _CoreResolver):
        """libyaml's reader, scanner, parser and composer, with the same resolver. Its composer has
        libyaml's nesting limit (1,000), not ours: ``load`` relies on the builder's limit (the same
        40) and reads any file that fails again with the pure-Python parser."""

        def __init__(self, text: str) -> None:
            _libyaml.CParser.__init__(self, text)
            _CoreResolver.__init__(self)

    _CLoader = _LibyamlLoader


def decode(data: bytes) -> str:
    """UTF-8 (a BOM is allowed) → text; a size or encoding problem raises ``YamlProblem``."""
    if len(data) > MAX_BYTES:
        raise YamlProblem(None, f"file is larger than {MAX_BYTES:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise YamlProblem(line, f"not UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}") from None


def load(text: str, *, libyaml: bool | None = None) -> Document:
    """Parse one YAML document. Empty input gives ``Document(None)``.

    With libyaml (``None``: where PyYAML has it, ``LIBYAML``), a file that fails to parse is read
    again by the pure-Python parser, so a problem is worded exactly as before; ``libyaml=False``
    uses only that one."""
    fast = LIBYAML if libyaml is None else libyaml and LIBYAML
    if len(text) > MAX_BYTES:
        raise YamlProblem(None, f"file is larger than {MAX_BYTES:,} characters")
    deep = _FLOW_NESTING.search(text)
    if deep is not None:  # PyYAML's scanner is quadratic in the flow brackets it looks ahead over
        raise YamlProblem(text.count("\n", 0, deep.start()) + 1, f"nesting deeper than {MAX_DEPTH} levels")
    if fast:
        try:  # libyaml's composer has no nesting limit of ours: the builder stops one level early,
            return _document(compose(text, libyaml=True), max_depth=MAX_DEPTH - 1)  # where ours would
        except YamlProblem:
            pass  # rare (the file is wrong): the pure parser says it in PyYAML's words, as before
    return _document(compose(text, libyaml=False), max_depth=MAX_DEPTH)


def _document(node: Node | None, *, max_depth: int) -> Document:
    doc = Document(None)
    if node is not None:
        doc.value = _Builder(doc, max_depth).build(node, (), 0)
    return doc


def compose(text: str, *, libyaml: bool | None = None) -> Node | None:
    """``text``'s node tree, each node with its ``start_mark``, from libyaml's parser (where PyYAML
    has it) or the pure-Python one; any problem as a ``YamlProblem`` on the line each parser gives
    (the same line: ``tests/playbooks/test_yamlload.py``). No size or flow-nesting pre-checks: ``load``
    makes those."""
    fast = LIBYAML if libyaml is None else libyaml and LIBYAML
    parser: Callable[[str], _NodeSource] = _CLoader if fast else _Loader
    try:
        loader = parser(text)  # the pure Reader checks a str for unprintable characters right here
    except yaml.reader.ReaderError as err:
        raise _unprintable(text, err) from None
    except UnicodeEncodeError:  # libyaml reads UTF-8; a lone surrogate has no UTF-8 form
        bad = _SURROGATE.search(text)
        raise YamlProblem(None if bad is None else text.count("\n", 0, bad.start()) + 1,
                          "a lone surrogate (\\ud800-\\udfff) is not valid Unicode") from None
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlProblem(line, _yaml_message(err)) from None
    except yaml.reader.ReaderError as err:
        raise _unprintable(text, err, utf8=parser is not _Loader) from None
    except (ValueError, OverflowError):  # PyYAML's chr() of a "\U…" escape past U+10FFFF (libyaml
        line = getattr(loader, "line", None)  # refuses such an escape with a marked error)
        raise YamlProblem(None if line is None else line + 1,
                          "a \\U escape beyond U+10FFFF is not a character") from None
    except yaml.YAMLError as err:  # pragma: no cover - every PyYAML error above is marked or a ReaderError
        raise YamlProblem(None, str(err).splitlines()[0]) from None
    finally:
        loader.dispose()


def _unprintable(text: str, err: yaml.reader.ReaderError, *, utf8: bool = False) -> YamlProblem:
    """``err.position`` counts characters (the pure Reader) or, from libyaml, bytes of the UTF-8 text."""
    line = text.encode("utf-8")[: err.position].count(b"\n") + 1 if utf8 else text.count("\n", 0, err.position) + 1
    return YamlProblem(line, f"character {chr(err.character) if isinstance(err.character, int) else err.character!r}"
                             " is not allowed in YAML")


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (err.context, err.problem) if p]
    text = ": ".join(parts) if parts else "invalid YAML"
    return " ".join(text.split())


class _Builder:
    """Nodes → values. Counts every node it builds (aliases included) and records lines."""

    def __init__(self, doc: Document, max_depth: int = MAX_DEPTH) -> None:
        self.doc = doc
        self.count = 0
        self.max_depth = max_depth

    def build(self, node: Node, path: Path, depth: int) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_NODES:
            raise YamlProblem(line, f"more than {MAX_NODES:,} values (aliases expand to too much data)")
        if depth > self.max_depth:
            raise YamlProblem(line, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
        self.doc.value_lines.setdefault(path, line)
        if isinstance(node, ScalarNode):
            return _scalar(node, line)
        if isinstance(node, SequenceNode):
            _check_tag(node, _SEQ, line)
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            _check_tag(node, _MAP, line)
            return self._mapping(node, path, depth)
        raise YamlProblem(line, "unsupported YAML node")  # pragma: no cover - composer makes only these three

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            self.count += 1
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem(key_line, "a mapping key must be a plain string, not a list or mapping")
            if key_node.tag == _T + "merge" or (key_node.value == "<<" and not key_node.style):
                raise YamlProblem(key_line, "merge keys (<<) are not supported; write the keys out")
            key = _scalar(key_node, key_line)
            if not isinstance(key, str):
                raise YamlProblem(key_line, f"a mapping key must be a string, got {key_node.value!r}")
            sub = (*path, key)
            if key in out:
                first = self.doc.key_lines[sub]
                self.doc.problems.append(Problem(sub, key_line, f"duplicate key (first defined on line {first})"))
                continue
            self.doc.key_lines[sub] = key_line
            out[key] = self.build(value_node, sub, depth + 1)
        return out


def _check_tag(node: Node, expected: str, line: int) -> None:
    if node.tag != expected:
        raise YamlProblem(line, f"tag {_short(node.tag)} is not allowed; use plain YAML values")


def _short(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


def _scalar(node: ScalarNode, line: int) -> Any:
    tag, text = node.tag, node.value
    if _SURROGATE.search(text) is not None:  # only a "\ud800" escape makes one: not valid Unicode
        raise YamlProblem(line, "a lone surrogate escape (\\ud800-\\udfff) is not valid Unicode")
    if tag == _STR:
        return text
    if tag == _NULL:
        if text not in ("", "~", "null", "Null", "NULL"):
            raise YamlProblem(line, f"{text!r} is not a null value")
        return None
    if tag == _BOOL:
        if text.lower() not in ("true", "false"):
            raise YamlProblem(line, f"{text!r} is not a boolean (true or false)")
        return text.lower() == "true"
    if tag == _INT:
        try:
            number = int(text.replace("_", ""), 0) if text.lower().startswith(("0x", "0o")) else int(text)
        except ValueError:
            raise YamlProblem(line, f"{text[:40]!r} is not a usable integer") from None
        if number.bit_length() > _MAX_INT_BITS:  # a 5,000-digit hex number: str() of it would raise later
            raise YamlProblem(line, f"{text[:40]!r}… is not a usable integer (too large)")
        return number
    if tag == _FLOAT:
        try:
            value = float(text)
        except ValueError:
            raise YamlProblem(line, f"{text[:40]!r} is not a usable number") from None
        if math.isnan(value) or math.isinf(value):
            raise YamlProblem(line, f"{text[:40]!r} is not a usable number")
        return value
    raise YamlProblem(line, f"tag {_short(tag)} is not allowed; use plain YAML values")
