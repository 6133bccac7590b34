"""The saved-state loader (``remediator plan --resources``) under hostile input, as a user runs it.

Every refusal is one line on stderr naming the file (and the document), exit code 1, and nothing
on stdout; what is accepted plans exactly as the clean UTF-8 file does.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediator import _json, ids
from remediator.app.cli import main
from remediator.azure.state import SavedState
from remediator.errors import RemediatorError, StateError
from tests.conftest import ROOT

SAMPLES = ROOT / "remediator" / "samples"
STORAGE_ALERT = str(SAMPLES / "findings" / "01-storage-open-container-alert.json")
STORAGE_STATE = SAMPLES / "state" / "storage.json"
ACCOUNT = ("/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-prod-web/providers/"
           "Microsoft.Storage/storageAccounts/contosoweb")


def storage_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads(STORAGE_STATE.read_text(encoding="utf-8"))
    return docs


def plan(resources: Path | str, capsys: pytest.CaptureFixture[str], *extra: str,
         output: str = "json") -> tuple[int, str, str]:
    """``remediator plan <storage alert> --resources PATH --output json`` through the CLI entry."""
    out = io.StringIO()
    code = main(["plan", STORAGE_ALERT, *extra, "--resources", str(resources), "--output", output], out=out,
                stdin=io.StringIO(""))
    err = capsys.readouterr().err
    return code, out.getvalue(), err


def refused(resources: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = plan(resources, capsys)
    assert code == 1, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "internal error" not in err
    assert "Traceback" not in err
    assert str(resources) in err or resources.name in err
    return err.strip()


def _refused_docs(path: Path, docs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """``docs`` saved at ``path`` and planned against: the one-line refusal."""
    path.write_text(json.dumps(docs), encoding="utf-8")
    return path, refused(path, capsys)


def clean_plan(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = plan(STORAGE_STATE, capsys)
    assert code == 2
    doc: dict[str, Any] = json.loads(out)
    return doc


# --------------------------------------------------------------------------- hostile JSON


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        # a lone surrogate: json.loads accepted it and the output then broke half-way
        (b'[{"id": "/subscriptions/s/resourceGroups/r/providers/A.B/c/d", "properties": {"x": "\\ud800"}}]',
         "surrogate"),
        (b'[{"id": "/subscriptions/s/resourceGroups/r/providers/A.B/c/d", "properties": {"n": ' + b"9" * 5000
         + b"}}]", "number out of range"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"id": "/subscriptions/s/resourceGroups/r/providers/A.B/c/d", "properties": {"x": NaN}}',
         "NaN is not JSON"),
        (b'{"id": "/subscriptions/s/resourceGroups/r/providers/A.B/c/d", "properties": {"x": -Infinity}}',
         "Infinity is not JSON"),
        (b'{"id": "/subscriptions/s/resourceGroups/r/providers/A.B/c/d", "properties": {"x": 1e999}}',
         "number out of range at properties.x"),
        (b"", "empty file"),
        (b"\xff\xfe\x00\xd8", "not valid UTF-16"),
        (b'{"id": "/subscriptions/s"', "not JSON"),
    ],
    ids=["lone-surrogate", "int-5000-digits", "nesting-100000", "nan", "infinity", "overflow", "empty",
         "bad-utf16", "truncated"],
)
def test_hostile_json_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes,
                                          expect: str) -> None:
    bad = tmp_path / "state.json"
    bad.write_bytes(content)
    err = refused(bad, capsys)
    assert expect in err


def test_lone_surrogate_subprocess_leaves_stdout_empty(tmp_path: Path) -> None:
    docs = storage_docs()
    docs[0]["properties"]["note"] = "x\ud800y"
    bad = tmp_path / "state.json"
    bad.write_text(json.dumps(docs), encoding="utf-8")  # json.dumps escapes it as \ud800
    proc = subprocess.run([sys.executable, "-m", "remediator", "plan", STORAGE_ALERT, "--resources", str(bad),
                           "--output", "json"], capture_output=True, timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert err.startswith(f"error: {bad}:1: not JSON: lone surrogate in a \\u escape")
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(("bom", "codec"), [(b"\xef\xbb\xbf", "utf-8"), (b"", "utf-16"),
                                            (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_bom_and_utf16_files_plan_like_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str], bom: bytes,
                                            codec: str) -> None:
    # PowerShell 5's `az resource show ... > file` writes UTF-16 LE with a BOM; the other forms are
    # what editors and PowerShell 7's Out-File -Encoding write.
    text = STORAGE_STATE.read_text(encoding="utf-8").replace('"web-team"', '"wéb-tëam ü"')
    assert "wéb" in text
    (tmp_path / "utf8.json").write_text(text, encoding="utf-8")
    saved = tmp_path / "saved.json"
    saved.write_bytes(bom + text.encode(codec))
    want = plan(tmp_path / "utf8.json", capsys)
    got = plan(saved, capsys)
    assert got == want
    assert want[0] == 2
    assert "wéb-tëam ü" in got[1]


def test_utf16_state_plans_the_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "saved.json"
    saved.write_bytes(STORAGE_STATE.read_text(encoding="utf-8").encode("utf-16"))
    code, out, err = plan(saved, capsys)
    assert (code, err) == (2, "")
    assert json.loads(out) == clean_plan(capsys)


# --------------------------------------------------------------------------- documents


@pytest.mark.parametrize(("value", "found"), [(None, "properties is null"), ("{}", "properties is a string"),
                                              ([], "properties is an array"), (7, "properties is a number")])
def test_properties_not_an_object_is_refused_naming_file_and_id(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               value: object, found: str) -> None:
    docs = storage_docs()
    docs[0]["properties"] = value
    bad, err = _refused_docs(tmp_path / "az-resource-list.json", docs, capsys)
    assert f"{bad}[0]: {ACCOUNT}: {found}, expected an object" in err


def test_properties_missing_and_tags_not_an_object_are_refused(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    docs = storage_docs()
    del docs[1]["properties"]
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps(docs), encoding="utf-8")
    assert "s.json[1]: " in refused(bad, capsys)
    assert "properties is missing" in refused(bad, capsys)
    docs = storage_docs()
    docs[0]["tags"] = "remediation-exempt"  # an exemption tag that would silently not count
    bad.write_text(json.dumps(docs), encoding="utf-8")
    assert f"s.json[0]: {ACCOUNT}: tags is a string, expected an object or null" in refused(bad, capsys)


def test_conflicting_duplicate_in_one_file_names_both_places(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    docs = storage_docs()
    compliant = copy.deepcopy(docs[0])
    compliant["id"] = compliant["id"].upper() + "/"  # the same resource, as another tool spelt it
    compliant["properties"]["allowBlobPublicAccess"] = False  # would turn "needs fixing" into "compliant"
    bad = tmp_path / "state.json"
    bad.write_text(json.dumps({"value": [*docs, compliant]}), encoding="utf-8")
    err = refused(bad, capsys)
    assert f"{bad}.value[4]: conflicts with {bad}.value[0]: two different documents for" in err


def test_conflicting_duplicate_across_files_of_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = storage_docs()
    (tmp_path / "a.json").write_text(json.dumps(docs), encoding="utf-8")
    later = copy.deepcopy(docs[0])
    later["properties"]["allowBlobPublicAccess"] = False
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text(json.dumps(later), encoding="utf-8")
    err = refused(tmp_path, capsys)
    assert f"{tmp_path / 'sub' / 'b.json'}: conflicts with {tmp_path / 'a.json'}[0]" in err


def test_identical_duplicates_fold_silently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = storage_docs()
    again = copy.deepcopy(docs[0])
    again["id"] = again["id"].lower() + "/"
    (tmp_path / "a.json").write_text(json.dumps([*docs, again]), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"value": docs[:2]}), encoding="utf-8")
    code, out, err = plan(tmp_path, capsys)
    assert (code, err) == (2, "")
    assert json.loads(out) == clean_plan(capsys)
    state = SavedState.from_path(tmp_path)
    assert (len(state), state.folded) == (4, 3)


def test_true_and_one_are_not_the_same_document(tmp_path: Path) -> None:
    docs = storage_docs()
    other = copy.deepcopy(docs[0])
    docs[0]["properties"]["allowBlobPublicAccess"] = 1
    other["properties"]["allowBlobPublicAccess"] = True
    (tmp_path / "a.json").write_text(json.dumps([docs[0], other]), encoding="utf-8")
    with pytest.raises(StateError, match=r"a\.json\[1\]: conflicts with .*a\.json\[0\]"):
        SavedState.from_path(tmp_path)


def test_type_that_disagrees_with_the_id_is_refused_with_both(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    docs = storage_docs()
    docs[0]["type"] = "Microsoft.Network/networkSecurityGroups"
    bad = tmp_path / "state.json"
    bad.write_text(json.dumps(docs), encoding="utf-8")
    err = refused(bad, capsys)
    assert (f"{bad}[0]: type 'Microsoft.Network/networkSecurityGroups' disagrees with its id '{ACCOUNT}', "
            "whose type is 'Microsoft.Storage/storageAccounts'") in err


def test_type_compares_case_insensitively_and_scopes_have_their_types(tmp_path: Path) -> None:
    docs = storage_docs()
    docs[0]["type"] = "microsoft.storage/STORAGEACCOUNTS"
    docs.append({"id": "/subscriptions/s/resourceGroups/rg", "type": "Microsoft.Resources/resourceGroups",
                 "properties": {"provisioningState": "Succeeded"}})
    (tmp_path / "a.json").write_text(json.dumps(docs), encoding="utf-8")
    assert len(SavedState.from_path(tmp_path)) == 5
    docs[-1]["type"] = "Microsoft.Storage/storageAccounts"
    (tmp_path / "a.json").write_text(json.dumps(docs), encoding="utf-8")
    with pytest.raises(StateError, match=r"whose type is 'Microsoft\.Resources/resourceGroups'"):
        SavedState.from_path(tmp_path)


@pytest.mark.parametrize("spelling", [ACCOUNT + "/", "  " + ACCOUNT + "//",
                                      ACCOUNT.replace("/providers", "//providers"), ACCOUNT.lstrip("/")])
def test_non_canonical_ids_are_normalised_in_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      spelling: str) -> None:
    docs = storage_docs()
    docs[0]["id"] = spelling
    saved = tmp_path / "state.json"
    saved.write_text(json.dumps(docs), encoding="utf-8")
    code, out, err = plan(saved, capsys)
    assert (code, err) == (2, "")
    account = next(c for c in json.loads(out)["results"][0]["changes"] if c["resource_id"].endswith("contosoweb"))
    assert account["before"]["id"] == account["after"]["id"] == ACCOUNT
    assert account["resource_id"] == ACCOUNT
    assert json.loads(out) == clean_plan(capsys)


@pytest.mark.parametrize(("rid", "expect"), [
    ("contoso", "is not an ARM resource id"),
    ("https://management.azure.com" + ACCOUNT, "is not an ARM resource id"),
    (ACCOUNT.rsplit("/", 1)[0], "ends in the type 'storageAccounts' without a name"),
    (None, "id is null"),
    (42, "id is a number"),
])
def test_ids_that_name_no_resource_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], rid: object,
                                               expect: str) -> None:
    docs = storage_docs()
    docs[2]["id"] = rid
    bad, err = _refused_docs(tmp_path / "state.json", docs, capsys)
    assert f"{bad}[2]: " in err
    assert expect in err


def test_no_id_message_shows_the_envelope_with_single_braces(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "state.json"
    bad.write_text('[{"name": "x", "properties": {}}]', encoding="utf-8")
    err = refused(bad, capsys)
    assert '{"value": [...]}' in err
    assert "{{" not in err
    assert "found keys: name, properties" in err


def test_envelopes_nested_too_deep_and_non_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "state.json"
    bad.write_text("[[[[[{}]]]]]", encoding="utf-8")
    assert "nested more than 3 deep" in refused(bad, capsys)
    bad.write_text('[1, "x"]', encoding="utf-8")
    assert f"{bad}[0]: expected an ARM document (a JSON object with 'id'), found a number" in refused(bad, capsys)


def test_empty_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not state", encoding="utf-8")
    assert "no *.json files in this folder" in refused(tmp_path, capsys)


def test_ndjson_state_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = storage_docs()
    saved = tmp_path / "state.json"
    saved.write_text("\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    assert plan(saved, capsys)[0] == 2
    docs[3]["properties"] = None
    saved.write_text("\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    assert f"{saved}:4: " in refused(saved, capsys)


# --------------------------------------------------------------------------- output


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "remediator", *args], capture_output=True, timeout=60,
                          check=False, cwd=ROOT, env={**_no_settings(os.environ), **(env or {})})


def _no_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without ``REMEDIATOR_*`` (the test harness's own, such as ``REMEDIATOR_REQUIRE_AZURITE``,
    are unknown settings to the CLI, which says so on stderr)."""
    return {k: v for k, v in environ.items() if not k.startswith("REMEDIATOR_")}


def _plan_samples(encoding: str, *output: str) -> subprocess.CompletedProcess[bytes]:
    findings = sorted(str(p) for p in (SAMPLES / "findings").glob("*.json"))
    return _cli("plan", *findings, "--resources", str(SAMPLES / "state"), *output, env={"PYTHONIOENCODING": encoding})


@functools.cache
def _wide(*output: str) -> subprocess.CompletedProcess[bytes]:
    """The UTF-8 run each narrow one is compared with (the same for every encoding: run once)."""
    return _plan_samples("utf-8", *output)


@pytest.mark.slow(reason="two `remediator plan` processes per encoding, each an interpreter start (about 1 s)")
@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252"])
def test_narrow_output_encoding_is_never_fatal(encoding: str) -> None:
    wide = _wide("--output", "json")
    narrow = _plan_samples(encoding, "--output", "json")
    assert (wide.returncode, narrow.returncode) == (2, 2), narrow.stderr
    assert narrow.stderr == b""
    assert json.loads(narrow.stdout.decode(encoding)) == json.loads(wide.stdout.decode("utf-8"))
    text = _plan_samples(encoding)
    assert text.returncode == 2, text.stderr
    assert text.stderr == b""
    lines = text.stdout.decode(encoding).splitlines()
    assert lines[-2].startswith("Plan: ")
    wide_text = _wide().stdout
    assert len(lines) == len(wide_text.decode("utf-8").splitlines())


class _OddState:
    """A state reader (the port) that returns what a live read could: values JSON cannot carry."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.docs = {ids.key(d["id"]): d for d in storage_docs()}

    def get(self, resource_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(ids.key(resource_id))
        if doc is None:
            return None
        return {**doc, "properties": {**doc["properties"], "odd": self.value}}

    def list(self, resource_type: str, scope: str) -> list[dict[str, Any]]:
        return []

    def role_assignments(self, scope: str, principal_id: str | None = None) -> list[dict[str, Any]]:
        return []


def _plan_with_state(value: object, raw: io.BytesIO) -> int:
    """``remediator plan --output json`` over a state reader that returns ``value``; output in ``raw``."""
    from remediator.app.cli import build_parser, plan

    out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    args = build_parser().parse_args(["plan", STORAGE_ALERT, "--output", "json"])
    try:
        return plan.run(args, out, io.StringIO(""), state=_OddState(value))
    finally:
        out.detach()  # leave ``raw`` open for the caller


def test_output_that_cannot_be_encoded_is_still_one_whole_document() -> None:
    # a lone surrogate from the state reader: UTF-8 cannot encode it; today the first results were
    # written and the document stopped half-way
    sink = io.BytesIO()
    assert _plan_with_state("x\ud800y", sink) == 2
    doc = json.loads(sink.getvalue().decode("ascii"))
    odd = [c["after"]["properties"]["odd"] for r in doc["results"] for c in r["changes"] if c["after"]
           and "odd" in c["after"].get("properties", {})]
    assert odd
    assert set(odd) == {"x\ud800y"}


def test_nan_from_a_state_reader_writes_nothing() -> None:
    raw = io.BytesIO()
    with pytest.raises(RemediatorError) as caught:  # ``main`` prints it as one ``error: …`` line, exit 1
        _plan_with_state(float("nan"), raw)
    assert raw.getvalue() == b""
    assert str(caught.value).startswith("cannot write JSON: Out of range float values are not JSON compliant")
    assert len(str(caught.value).splitlines()) == 1


def test_non_finite_walk_names_the_path() -> None:
    assert _json.non_finite({"a": [1.0, {"b": float("inf")}]}) == "a[1].b"
    assert _json.non_finite([1, "x", {"c": 2.5}]) is None
    with pytest.raises(_json.DecodeError, match=r"at \[1\]\.x"):
        _json.decode(b'[{}, {"x": -1e400}]', finite=True)
    assert _json.decode(b'[{}, {"x": -1e400}]')[0][1][1]["x"] == float("-inf")  # findings: not walked


def test_canonical_ids() -> None:
    assert ids.canonical(" /subscriptions/S//resourceGroups/RG/ ") == "/subscriptions/S/resourceGroups/RG"
    assert ids.canonical("subscriptions/s") == "/subscriptions/s"
    # found by the fuzz suite: blanks before a trailing slash survived one pass
    assert ids.canonical("\t//subscriptions//s/providers/A.B/c/d  /") == "/subscriptions/s/providers/A.B/c/d"
    assert ids.canonical(ids.canonical(" /a / b/ ")) == ids.canonical(" /a / b/ ") == "/a/b"
    assert ids.document_type("/subscriptions/s/resourceGroups/r") == "Microsoft.Resources/resourceGroups"
    assert ids.document_type("/subscriptions/s") == "Microsoft.Resources/subscriptions"
    assert ids.document_type(ACCOUNT + "/blobServices/default/containers/c") == \
        "Microsoft.Storage/storageAccounts/blobServices/containers"
