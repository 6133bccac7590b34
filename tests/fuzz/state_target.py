"""Fuzz target: the saved-state loader (``remediator plan --resources PATH``), through real files.

An example is one to three files (a lone file is passed as ``--resources FILE``, several as a
folder, one of them in a subfolder): the sample state and the ARM documents of the REST spec
examples in ``tests/fixtures/arm``, with the edits that hurt (the same document again, re-cased,
with a trailing ``/``, or changed; a ``type`` that disagrees with the id; ``properties: null`` or
``"{}"``; odd ids), random structural edits, hostile tokens (lone surrogates, 5,000-digit
integers, NaN, ``1e999``, deep nesting), BOMs and UTF-16, damaged bytes, and whole hostile files.

Contract: ``SavedState.from_path`` raises only ``StateError``, one line naming one of the files
(or the folder); what loads holds only checked documents (canonical ids, ``properties`` objects,
types that agree with the ids, strict-JSON values) and plans the sample findings into one strict
JSON document and a text plan.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from remediator import ids
from remediator.errors import RemediatorError, StateError
from tests.fuzz.contract import Violation, one_line_error, strict_json, tidy
from tests.fuzz.strategies import HOSTILE_TOKENS, Seeds, encoded, hostile_bytes, mutated, serialise

NAME = "state"
ROOT = Path(__file__).resolve().parents[2]
Files = tuple[tuple[tuple[str, bytes], ...], bool]
"""((relative name, content), ...), and whether to pass the folder even for one file."""


def _seed_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "remediator" / "samples" / "state").glob("*.json")):
        value = json.loads(path.read_text(encoding="utf-8"))
        docs += value if isinstance(value, list) else [value]
    for path in sorted((ROOT / "tests" / "fixtures" / "arm").glob("*.json")):
        for response in json.loads(path.read_text(encoding="utf-8")).get("responses", {}).values():
            body = (response or {}).get("body")
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                docs.append(body)
            elif isinstance(body, dict) and isinstance(body.get("value"), list):
                docs += [d for d in body["value"] if isinstance(d, dict) and isinstance(d.get("id"), str)]
    return docs


DOCS = Seeds(_seed_documents())
_TYPES = sorted({d["type"] for d in DOCS if isinstance(d.get("type"), str)})


@st.composite
def _hurt(draw: st.DrawFn, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The edits the loader must catch or normalise, applied to a list of documents."""
    docs = copy.deepcopy(docs)
    for _ in range(draw(st.integers(0, 3))):
        if not docs:
            break
        i = draw(st.integers(0, len(docs) - 1))
        doc = docs[i]
        op = draw(st.sampled_from(["same", "recased", "slash", "changed", "type", "props-null", "props-text",
                                   "props-gone", "id-ws", "id-bad", "tags", "reorder"]))
        rid = doc.get("id") if isinstance(doc.get("id"), str) else "/subscriptions/s"
        if op in ("same", "recased", "slash", "changed"):
            twin = copy.deepcopy(doc)
            twin["id"] = {"same": rid, "recased": rid.swapcase(), "slash": rid + "/", "changed": rid}[op]
            if op == "changed":
                twin.setdefault("properties", {})
                if isinstance(twin["properties"], dict):
                    twin["properties"]["fuzzChanged"] = draw(st.integers())
            docs.insert(draw(st.integers(0, len(docs))), twin)
        elif op == "type":
            doc["type"] = draw(st.sampled_from([*_TYPES, "", "Microsoft.Resources/resourceGroups", "x", "/"]))
        elif op == "props-null":
            doc["properties"] = None
        elif op == "props-text":
            doc["properties"] = json.dumps(doc.get("properties"))
        elif op == "props-gone":
            doc.pop("properties", None)
        elif op == "id-ws":
            doc["id"] = draw(st.sampled_from(["  ", "/", "//", "\t"])) + rid.replace("/", draw(
                st.sampled_from(["/", "//"])), 2) + draw(st.sampled_from(["", "/", "//", " "]))
        elif op == "id-bad":
            doc["id"] = draw(st.sampled_from(["", "x", "/", "/subscriptions", rid.rsplit("/", 1)[0],
                                              "https://management.azure.com" + rid, rid + "/\u2028", None, 7]))
        elif op == "tags":
            doc["tags"] = draw(st.sampled_from(["remediation-exempt", [], 1, None, {"remediation-exempt": None}]))
        else:
            docs.reverse()
    return docs


@st.composite
def _file(draw: st.DrawFn, docs: list[Any]) -> bytes:
    shape = draw(st.sampled_from(["array", "value", "single", "ndjson"]))
    if shape == "value":
        value: Any = {"value": docs, "nextLink": None}
    elif shape == "single" and len(docs) == 1:
        value = docs[0]
    else:
        value = docs
    if shape == "ndjson":
        text = "\n".join(json.dumps(d) for d in docs)
        return draw(encoded(text))
    return draw(serialise(value))


@st.composite
def _example(draw: st.DrawFn) -> Files:
    picked = [DOCS[i] for i in draw(st.lists(st.integers(0, len(DOCS) - 1), min_size=1, max_size=6))]
    docs = draw(_hurt(picked))
    if draw(st.integers(0, 2)) == 0:
        docs = draw(mutated(Seeds((docs,)), max_mutations=3))
    if not isinstance(docs, list):
        docs = [docs]
    count = draw(st.integers(1, 3))
    names = ["state.json", "sub/more.json", "z.json"][:count]
    parts: list[list[Any]] = [[] for _ in names]
    for doc in docs:
        parts[draw(st.integers(0, count - 1))].append(doc)
    files = []
    for name, part in zip(names, parts, strict=True):
        if draw(st.integers(0, 9)) == 0:
            files.append((name, draw(hostile_bytes())))
        else:
            files.append((name, draw(_file(part))))
    if draw(st.integers(0, 9)) == 0:
        files.append(("notes.txt", b"not state"))
    return tuple(files), draw(st.booleans())


STRATEGY = st.one_of(
    _example(),
    st.tuples(st.tuples(st.tuples(st.just("state.json"), hostile_bytes())), st.booleans()),
    st.tuples(st.tuples(st.tuples(st.just("state.json"), st.sampled_from(HOSTILE_TOKENS).map(
        lambda t: json.dumps([DOCS[0]]).replace('"Succeeded"', t).encode()))), st.just(False)),
)


@functools.cache
def _planner_parts() -> tuple[Any, list[Any]]:
    from remediator.app.paths import SAMPLES, SHIPPED_PLAYBOOKS
    from remediator.findings.parse import parse_file
    from remediator.playbooks import load_playbooks

    records = [r for p in sorted((SAMPLES / "findings").glob("*.json")) for r in parse_file(p)]
    return load_playbooks(SHIPPED_PLAYBOOKS), records


def _check_loaded(state: Any) -> None:
    for doc in state.documents():
        rid = doc["id"]
        if rid != ids.canonical(rid):
            raise Violation(f"document kept a non-canonical id: {rid!r}")
        if not isinstance(doc.get("properties"), dict):
            raise Violation(f"document {rid} kept properties of type {type(doc.get('properties')).__name__}")
        declared, expected = doc.get("type"), ids.document_type(rid)
        if declared and expected and ids.type_key(declared) != ids.type_key(expected):
            raise Violation(f"document {rid} kept type {declared!r}")
        json.dumps(doc, allow_nan=False)


def run(example: Files) -> str | None:
    from remediator.app.cli.output import print_results
    from remediator.azure.state import SavedState
    from remediator.planning.planner import Planner

    files, as_folder = example
    with tempfile.TemporaryDirectory(prefix="fuzz-state-") as tmp:
        root = Path(tmp)
        for name, content in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        target = root if as_folder or len(files) > 1 else root / files[0][0]
        try:
            state = SavedState.from_path(target)
        except StateError as exc:
            return tidy(one_line_error(str(exc), names=[tmp]), tmp)
        _check_loaded(state)
        playbooks, records = _planner_parts()
        results = Planner(playbooks=playbooks, state=state).plan(records)
        for result in results:
            one_line_error(result.reason, what=f"{result.outcome} reason")
        for output in ("json", "text"):
            out = io.StringIO()
            try:
                print_results(results, output, out)
            except RemediatorError as exc:
                if out.getvalue():
                    raise Violation("output written before the error") from None
                return tidy(one_line_error(str(exc)), tmp)
            if output == "json":
                strict_json(out.getvalue())
    return None
