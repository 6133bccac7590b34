"""Names beside ids: one batch per text set, Graph and ARM behind a cache, ids and one warning when down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from remediator.azure.directory import MAX_IDS
from remediator.azure.reader import LiveState
from remediator.planning.names import NAME_MAX, Name, NameResolver, Names, label, wanted
from remediator.testing import FakeArm, FakeMsGraph
from tests.support.clock import VirtualTime

BUILT_IN = "34c877ad-507e-4c82-993e-3452a6e0ad3c"  # "Storage accounts should restrict network access" (catalog)
SUB = "9b5c2a1e-0d7c-4b5e-9f3c-2a1d4e6f8a0b"
CUSTOM = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/deny-public-ml"


@pytest.fixture
def graph() -> Iterator[FakeMsGraph]:
    with FakeMsGraph() as fake:
        yield fake


def test_only_standalone_guids_and_definition_ids_are_wanted() -> None:
    principal = str(uuid.uuid4())
    text = (f"revoke Owner of {principal} at /subscriptions/{SUB}/resourceGroups/rg/providers/"
            f"Microsoft.Authorization/roleAssignments/{uuid.uuid4()}; policy {CUSTOM}, \"{BUILT_IN.upper()}\"")
    want = wanted([text, None])
    assert want.guids == {principal, BUILT_IN}  # the subscription and the assignment name are parts of ids
    assert want.definitions == {CUSTOM.lower()}


def test_annotate_puts_the_name_before_the_id_once() -> None:
    oid = str(uuid.uuid4())
    names = Names(by_id={oid: Name(id=oid, kind="user", display_name="Alice Example", detail="alice@contoso.example")})
    text = f"- properties.principalId: \"{oid.upper()}\" and {uuid.uuid4()}"
    once = names.annotate(text)
    assert once == text.replace(oid.upper(), f"Alice Example · alice@contoso.example ({oid.upper()})")
    assert names.annotate(once) == once
    assert names.to_json([text]) == {oid: {"kind": "user", "displayName": "Alice Example",
                                           "detail": "alice@contoso.example"}}


def test_display_names_are_one_capped_line_without_format_characters() -> None:
    shown = label("Mallory\u202e\ngnp.exe <!channel> " + "x" * 200, "m@contoso.example")
    assert "\u202e" not in shown
    assert "\n" not in shown
    assert len(shown) <= NAME_MAX
    assert shown.endswith("…")


def test_principals_policies_built_in_and_custom_in_one_batch(graph: FakeMsGraph) -> None:
    alice = graph.add_user("Alice Example", upn="alice@contoso.example")
    mi = graph.add_service_principal("id-train-westeu", managed_identity=True)
    with FakeArm() as arm:
        arm.add({"id": CUSTOM, "name": "deny-public-ml", "type": "Microsoft.Authorization/policyDefinitions",
                 "properties": {"displayName": "ML workspaces must not be public", "policyRule": {}}})
        resolver = NameResolver(directory=graph.client(), definitions=LiveState(arm.clients()))
        names = resolver.resolve([f"revoke Owner of {alice}", f"Azure Policy non-compliance: {BUILT_IN}",
                                  f"Azure Policy non-compliance: deny-public-ml {CUSTOM}"], ids=[mi])
    assert names.problems == ()
    assert names.get(alice) == Name(id=alice, kind="user", display_name="Alice Example",
                                    detail="alice@contoso.example")
    assert names.get(mi).kind == "managedIdentity"  # type: ignore[union-attr]
    assert names.get(BUILT_IN).display_name == "Storage accounts should restrict network access"  # type: ignore[union-attr]
    assert names.annotate(CUSTOM) == f"ML workspaces must not be public ({CUSTOM})"
    assert graph.calls("getByIds") == 1  # one call for the batch, built-in GUID not sent
    assert BUILT_IN not in graph.requests[0].body["ids"]


def test_more_than_1000_ids_are_two_calls_then_none_within_the_ttl(graph: FakeMsGraph) -> None:
    clock = VirtualTime()
    ids = [graph.add_user(f"User {i}") for i in range(MAX_IDS + 1)]
    resolver = NameResolver(directory=graph.client(), ttl=timedelta(minutes=30), clock=clock.monotonic)
    names = resolver.resolve([" ".join(ids)])
    assert len(names.by_id) == MAX_IDS + 1
    assert graph.calls("getByIds") == 2
    clock.sleep(29 * 60)
    assert resolver.resolve([ids[0], str(uuid.uuid4())]).get(ids[0]) is not None
    assert graph.calls("getByIds") == 3  # only the unknown id was asked for
    assert len(graph.requests[-1].body["ids"]) == 1
    clock.sleep(2 * 60)  # past the TTL: asked again (a renamed user shows the new name)
    graph.add_user("Renamed", object_id=ids[0])
    assert resolver.resolve([ids[0]]).get(ids[0]).display_name == "Renamed"  # type: ignore[union-attr]
    assert graph.calls("getByIds") == 4


def test_graph_down_shows_ids_and_one_warning_then_waits_before_asking_again(graph: FakeMsGraph) -> None:
    clock = VirtualTime()
    ids = [graph.add_user(f"User {i}") for i in range(5)]
    resolver = NameResolver(directory=graph.client(timeout=0.5), clock=clock.monotonic, pause=60)
    graph.unreachable()
    text = "\n".join(f"revoke Owner of {i}" for i in ids)
    names = resolver.resolve([text, f"Azure Policy non-compliance: {BUILT_IN}"])
    assert len(names.problems) == 1
    assert names.problems[0].startswith("principal names not read (Microsoft Graph at http://127.0.0.1:")
    assert names.problems[0].endswith("; ids shown")
    assert names.annotate(text) == text  # ids as they were
    assert names.get(BUILT_IN) is not None  # the catalog needs no network
    graph.reachable()
    again = resolver.resolve([text])
    assert len(again.problems) == 1
    assert graph.requests == []  # within the pause: not asked (a message does not wait for a timeout)
    clock.sleep(61)
    assert len(resolver.resolve([text]).by_id) == 5


def test_no_directory_no_reader_still_names_built_in_policies() -> None:
    names = NameResolver().resolve([f"policy /providers/Microsoft.Authorization/policyDefinitions/{BUILT_IN}",
                                    str(uuid.uuid4())])
    assert names.problems == ()
    assert set(names.by_id) == {f"/providers/microsoft.authorization/policydefinitions/{BUILT_IN}"}


def test_arm_down_is_one_warning_for_every_definition() -> None:
    with FakeArm() as arm:
        reader = LiveState(arm.clients())
        arm.fail_next("GET", "policyDefinitions", 503, times=10)
        names = NameResolver(definitions=reader).resolve(
            [f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/p{i}" for i in range(3)])
    assert len(names.problems) == 1
    assert names.problems[0].startswith("policy names not read (")


def test_the_cache_stays_bounded_dropping_the_expired_first(graph: FakeMsGraph,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import remediator.planning.names as names_module

    monkeypatch.setattr(names_module, "CACHE_MAX", 20)
    clock = VirtualTime()
    resolver = NameResolver(directory=graph.client(), ttl=timedelta(minutes=5), clock=clock.monotonic)
    old = [str(uuid.uuid4()) for _ in range(15)]
    resolver.resolve([" ".join(old)])
    clock.sleep(6 * 60)  # the first 15 expired
    fresh = [str(uuid.uuid4()) for _ in range(10)]
    resolver.resolve([" ".join(fresh)])
    assert len(resolver._cache) == 10  # the expired were dropped when the cache filled
    more = [str(uuid.uuid4()) for _ in range(30)]
    resolver.resolve([" ".join(more)])
    assert len(resolver._cache) <= 20
    assert all(k in resolver._cache for k in sorted(more)[-5:])  # the newest kept (a batch is kept in id order)
