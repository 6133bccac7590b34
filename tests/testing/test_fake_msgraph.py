"""FakeMsGraph's own contract: Graph's answers and errors, a route table others extend."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from remediator.testing import FAKE_TOKEN, FakeMsGraph
from remediator.testing.fake_msgraph import Call, Reply, error


@pytest.fixture
def graph() -> Iterator[FakeMsGraph]:
    with FakeMsGraph() as fake:
        yield fake


def _call(graph: FakeMsGraph, method: str, path: str, body: Any = None,
          token: str | None = FAKE_TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(graph.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_no_token_is_401_as_graph_answers(graph: FakeMsGraph) -> None:
    status, body = _call(graph, "POST", "/v1.0/directoryObjects/getByIds", {"ids": []}, token=None)
    assert status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"
    assert body["error"]["message"] == "Access token is empty."


def test_get_by_ids_validates_like_graph(graph: FakeMsGraph) -> None:
    status, body = _call(graph, "POST", "/v1.0/directoryObjects/getByIds", {"ids": ["nope"]})
    assert (status, body["error"]["code"]) == (400, "Request_BadRequest")
    assert "Invalid object identifier 'nope'" in body["error"]["message"]
    status, body = _call(graph, "POST", "/v1.0/directoryObjects/getByIds",
                         {"ids": [str(uuid.uuid4()) for _ in range(1001)]})
    assert status == 400
    assert "at most 1000" in body["error"]["message"]


def test_types_filter_and_single_object_reads(graph: FakeMsGraph) -> None:
    user = graph.add_user("Dana")
    group = graph.add_group("Readers")
    status, body = _call(graph, "POST", "/v1.0/directoryObjects/getByIds", {"ids": [user, group], "types": ["Group"]})
    assert status == 200
    assert [o["id"] for o in body["value"]] == [group]
    assert body["value"][0]["@odata.type"] == "#microsoft.graph.group"
    assert _call(graph, "GET", f"/v1.0/users/{user}")[1]["displayName"] == "Dana"
    assert _call(graph, "GET", f"/v1.0/groups/{user}")[0] == 404


def test_another_route_can_be_added(graph: FakeMsGraph) -> None:
    sp = graph.add_service_principal("pricing-model-ci")

    def assignments(fake: FakeMsGraph, call: Call) -> Reply:
        if call.match.group("id") not in fake.objects():
            raise error(404, "Request_ResourceNotFound", "no such service principal")
        return Reply(200, {"value": [{"appRoleId": "01d4889c-1287-42c6-ac1f-5d1e02578ef6"}]})

    graph.route("GET", r"/v1\.0/servicePrincipals/(?P<id>[^/]+)/appRoleAssignments", assignments)
    status, body = _call(graph, "GET", f"/v1.0/servicePrincipals/{sp}/appRoleAssignments")
    assert (status, body["value"][0]["appRoleId"]) == (200, "01d4889c-1287-42c6-ac1f-5d1e02578ef6")
    assert graph.calls("appRoleAssignments") == 1
    assert _call(graph, "DELETE", f"/v1.0/servicePrincipals/{sp}/appRoleAssignments")[0] == 405
