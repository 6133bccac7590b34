"""``DirectoryClient`` (Microsoft Graph getByIds over azure-core) against ``FakeMsGraph``: real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from remediator.azure.directory import (
    DOD_GRAPH,
    MAX_IDS,
    DirectoryClient,
    Principal,
    graph_endpoint_for,
    principal,
)
from remediator.errors import NamesUnavailable
from remediator.testing import FakeCredential, FakeMsGraph


@pytest.fixture
def graph() -> Iterator[FakeMsGraph]:
    with FakeMsGraph() as fake:
        yield fake


def test_users_groups_service_principals_and_managed_identities_by_id(graph: FakeMsGraph) -> None:
    alice = graph.add_user("Alice Example", upn="alice@contoso.example")
    team = graph.add_group("ML Training Engineers", mail="ml-training@contoso.example")
    app = graph.add_service_principal("pricing-model-ci", app_id="11111111-2222-3333-4444-555555555555")
    mi = graph.add_service_principal("id-train-westeu", managed_identity=True)
    unknown = str(uuid.uuid4())
    found = graph.client().get_by_ids([alice.upper(), team, app, mi, unknown, "not-a-guid"])
    assert set(found) == {alice, team, app, mi}  # lower-case keys; unknown ids and non-GUIDs absent
    assert found[alice] == Principal(id=alice, kind="user", display_name="Alice Example",
                                     user_principal_name="alice@contoso.example")
    assert found[alice].detail == "alice@contoso.example"
    assert (found[team].kind, found[team].detail) == ("group", "ml-training@contoso.example")
    assert (found[app].kind, found[app].detail) == ("servicePrincipal", "app 11111111-2222-3333-4444-555555555555")
    assert found[mi].kind == "managedIdentity"
    [request] = graph.requests
    assert request.path == "/v1.0/directoryObjects/getByIds"
    assert request.body["types"] == ["user", "group", "servicePrincipal"]
    assert unknown in request.body["ids"]
    assert "not-a-guid" not in request.body["ids"]  # never sent: Graph would refuse the whole batch


def test_more_than_1000_ids_take_two_calls(graph: FakeMsGraph) -> None:
    seeded = [graph.add_user(f"User {i}") for i in range(3)]
    wanted = [*seeded, *(str(uuid.uuid4()) for _ in range(MAX_IDS))]  # 1,003 ids
    found = graph.client().get_by_ids(wanted)
    assert set(found) == set(seeded)
    assert [len(r.body["ids"]) for r in graph.requests] == [MAX_IDS, 3]
    assert all(r.status == 200 for r in graph.requests)


def test_the_token_is_asked_for_the_graph_scope_and_checked(graph: FakeMsGraph) -> None:
    credential = FakeCredential()
    graph.client(credential=credential).get_by_ids([graph.add_user("Bob")])
    assert credential.scopes == ["https://graph.microsoft.com/.default"]
    stranger = FakeCredential("someone-elses-token")
    with pytest.raises(NamesUnavailable, match=r"answered 401 InvalidAuthenticationToken: Access token validation"):
        graph.client(credential=stranger).get_by_ids([str(uuid.uuid4())])


def test_a_missing_permission_says_which_one(graph: FakeMsGraph) -> None:
    graph.deny()
    with pytest.raises(NamesUnavailable) as e:
        graph.client().get_by_ids([str(uuid.uuid4())])
    assert "403 Authorization_RequestDenied" in str(e.value)
    assert "Directory.Read.All" in str(e.value)
    assert "\n" not in str(e.value)


def test_unreachable_slow_and_failing_graph_raise_one_line(graph: FakeMsGraph) -> None:
    client = graph.client(timeout=0.2)
    graph.fail_next(500, code="InternalServerError")
    with pytest.raises(NamesUnavailable, match="answered 500 InternalServerError"):
        client.get_by_ids([str(uuid.uuid4())])
    graph.latency = 1.0
    with pytest.raises(NamesUnavailable, match="cannot be reached"):
        client.get_by_ids([str(uuid.uuid4())])
    graph.latency = 0.0
    graph.unreachable()
    with pytest.raises(NamesUnavailable, match="cannot be reached") as e:
        client.get_by_ids([str(uuid.uuid4())])
    assert "\n" not in str(e.value)
    graph.reachable()
    assert client.get_by_ids([graph.add_user("Carol")])


def test_a_throttled_call_is_retried_after_retry_after(graph: FakeMsGraph) -> None:
    carol = graph.add_user("Carol")
    graph.fail_next(429, code="TooManyRequests", retry_after=0)
    assert set(graph.client(retry_total=1).get_by_ids([carol])) == {carol}
    assert [r.status for r in graph.requests] == [429, 200]


def test_no_ids_no_call(graph: FakeMsGraph) -> None:
    client = graph.client()
    assert client.get_by_ids([]) == {}
    assert client.calls == 0
    assert graph.requests == []


def test_sovereign_cloud_endpoints_follow_the_arm_endpoint() -> None:
    assert graph_endpoint_for("https://management.azure.com/") == "https://graph.microsoft.com"
    assert graph_endpoint_for("https://management.usgovcloudapi.net") == "https://graph.microsoft.us"
    assert graph_endpoint_for("https://management.chinacloudapi.cn") == "https://microsoftgraph.chinacloudapi.cn"
    assert graph_endpoint_for("http://127.0.0.1:1234") is None
    assert DirectoryClient(FakeCredential(), endpoint="https://graph.microsoft.us/").scope == \
        "https://graph.microsoft.us/.default"
    assert DirectoryClient(FakeCredential(), endpoint=DOD_GRAPH).describe() == {
        "endpoint": DOD_GRAPH, "scopes": [DOD_GRAPH + "/.default"]}


def test_objects_of_other_types_or_without_an_id_are_not_principals() -> None:
    assert principal({"@odata.type": "#microsoft.graph.device", "id": str(uuid.uuid4())}) is None
    assert principal({"@odata.type": "#microsoft.graph.user", "id": "x"}) is None
    limited = principal({"@odata.type": "#microsoft.graph.user", "id": "9D2C5E7F-0000-4000-8000-000000000001"})
    assert limited is not None
    assert (limited.id, limited.display_name, limited.detail) == ("9d2c5e7f-0000-4000-8000-000000000001", "", None)
