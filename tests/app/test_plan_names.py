"""``remediator plan`` names what it shows: one Graph batch for the whole plan, ``name (id)`` in the
text, ``names`` beside the ids in JSON, and with Graph down the ids and one warning on stderr."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from remediator.app.cli import build_parser, plan
from remediator.app.cli.output import warn
from remediator.app.paths import SAMPLES
from remediator.azure.state import SavedState
from remediator.planning.names import NameResolver
from remediator.testing import FakeMsGraph

OWNER = str(SAMPLES / "findings" / "03-blocked-owner-subassessment.json")
KEYVAULT = str(SAMPLES / "findings" / "10-keyvault-purge-protection-policy-event.json")
CASEY = "9d2c5e7f-1a3b-4c6d-8e0f-2b4d6f8a0c1e"


@pytest.fixture
def graph() -> Iterator[FakeMsGraph]:
    with FakeMsGraph() as fake:
        fake.load(json.loads((SAMPLES / "directory.json").read_text(encoding="utf-8")))
        yield fake


def _plan(graph: FakeMsGraph, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    args = build_parser().parse_args(["plan", OWNER, KEYVAULT, *argv])
    names = NameResolver(directory=graph.client(timeout=0.5), report=warn)  # as plan._names builds it
    code = plan.run(args, out, io.StringIO(""), state=SavedState.from_path(SAMPLES / "state"), names=names)
    return code, out.getvalue()


@pytest.mark.slow(reason="the first plan in a worker loads and validates every shipped playbook (about 2 s)")
def test_the_text_plan_names_principals_and_policies(graph: FakeMsGraph) -> None:
    code, text = _plan(graph)
    assert code == 2
    assert f"# revoke Owner of Casey Morgan (left 2026-10) · casey.morgan@contoso.com ({CASEY}) at" in text
    assert f'- properties.principalId: "Casey Morgan (left 2026-10) · casey.morgan@contoso.com ({CASEY})"' in text
    assert "sp-landing-zone-deploy · app 2b8f4e6a-0c1d-4e3f-9a5b-7c6d8e0f1a2b (6a1d0c2e-" in text  # createdBy
    assert "Azure Policy non-compliance: Key vaults should have deletion protection enabled (0b60c0b2-" in text
    assert graph.calls("getByIds") == 1


def test_json_keeps_the_ids_and_adds_names(graph: FakeMsGraph) -> None:
    _, text = _plan(graph, "--output", "json")
    owner = next(r for r in json.loads(text)["results"] if r["playbook"] == "rbac-revoke-excess-permissions")
    assert owner["changes"][0]["before"]["properties"]["principalId"] == CASEY
    assert owner["names"][CASEY] == {"kind": "user", "displayName": "Casey Morgan (left 2026-10)",
                                     "detail": "casey.morgan@contoso.com"}


def test_graph_down_shows_ids_and_one_warning(graph: FakeMsGraph, capsys: pytest.CaptureFixture[str]) -> None:
    graph.unreachable()
    code, text = _plan(graph)
    assert code == 2
    assert f"# revoke Owner of {CASEY} at" in text
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("warning: principal names not read (Microsoft Graph at http://127.0.0.1:")
    assert "Key vaults should have deletion protection enabled (0b60c0b2-" in text  # the catalog is offline
