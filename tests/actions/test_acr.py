"""acr.disable-admin-user and acr.rotate-credentials against FakeArm, through the real SDK clients.

The rotation tests also prove that no password ever reaches a Change, the plan JSON, an
ApplyResult, a log record or an error message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from pydantic import ValidationError

from remediator.actions.acr import REDACTED, fingerprint
from remediator.actions.base import REGISTRY, ApplyResult, PlanContext
from remediator.actions.change import Change
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.testing import FakeArm
from tests.support.builders import apply_error, arm_fixture, make_finding, parse_one, plan_changes, policy_event

SUB = "00000000-0000-0000-0000-000000000000"
REGISTRY_ID = (f"/subscriptions/{SUB}/resourceGroups/myResourceGroup/providers/"
               "Microsoft.ContainerRegistry/registries/myRegistry")
ADMIN_POLICY = "dc921057-6b28-4fbe-9b83-f7bec05db6c2"
VAULT = "https://kv-ops.vault.azure.net"

disable = REGISTRY["acr.disable-admin-user"]
rotate = REGISTRY["acr.rotate-credentials"]


def _registry(*, admin: bool = True) -> dict[str, Any]:
    doc = arm_fixture("containerregistry__2017-10-01__RegistryUpdate_adminUserEnabled.json")
    doc["properties"]["adminUserEnabled"] = admin
    return doc


def _finding() -> Finding:
    return parse_one(policy_event(REGISTRY_ID, ADMIN_POLICY))


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.add(_registry())
        yield fake


def _plan(action: Any, state: StateReader, **params: Any) -> list[Change]:
    return plan_changes(action, state, _finding(), **params)


def _passwords(arm: FakeArm) -> list[str]:
    return list(arm.credentials(REGISTRY_ID).values())


# -- playbook examples and declarations -------------------------------------------------------------

def test_declarations() -> None:
    assert disable.role.id == rotate.role.id == "3bc748fc-213d-45c1-8d91-9da5725539b9"
    assert "Microsoft.ContainerRegistry/registries/write" in disable.permissions
    assert "Microsoft.ContainerRegistry/registries/regenerateCredential/action" in rotate.permissions
    assert disable.reversible
    assert not rotate.reversible


# -- acr.disable-admin-user ----------------------------------------------------------------------

def test_disable_plan_saved_equals_live_and_writes_nothing(arm: FakeArm) -> None:
    saved = _plan(disable, SavedState([_registry()]))
    live = _plan(disable, LiveState(arm.clients()))
    assert arm.writes == []
    assert [c.to_json() for c in saved] == [c.to_json() for c in live]
    (change,) = saved
    assert change.before == _registry()
    assert change.after == _registry(admin=False)


@pytest.mark.parametrize("async_update", [False, True])
def test_disable_apply_verify_undo(async_update: bool) -> None:
    with FakeArm(async_registry_update=async_update) as arm:
        arm.add(_registry())
        clients = arm.clients()
        live = LiveState(clients)
        (change,) = _plan(disable, live)
        assert disable.verify(live, change) == "adminUserEnabled is true, expected false"
        result = disable.apply(clients, change)
        (patch,) = arm.writes
        assert (patch.method, patch.path, patch.body) == ("PATCH", REGISTRY_ID,
                                                          {"properties": {"adminUserEnabled": False}})
        assert patch.status == (201 if async_update else 200)
        assert result.detail == "container registry myRegistry: adminUserEnabled false"
        assert disable.verify(live, change) is None
        assert _plan(disable, live) == []  # compliant now

        undo = disable.undo(change)
        disable.apply(clients, undo)
        assert arm.writes[-1].body == {"properties": {"adminUserEnabled": True}}
        assert disable.verify(live, undo) is None


def test_disable_error_is_one_line(arm: FakeArm) -> None:
    (change,) = _plan(disable, LiveState(arm.clients()))
    assert apply_error(arm, disable, change, ("PATCH", "myRegistry", 403)) == (
        "acr.disable-admin-user: PATCH of container registry myRegistry failed: "
        f"403 AuthorizationFailed: Injected failure: AuthorizationFailed. ({REGISTRY_ID})")


def test_disable_missing_registry_and_wrong_type() -> None:
    with pytest.raises(ActionError, match="container registry not found"):
        _plan(disable, SavedState([]))
    ctx = PlanContext(finding=make_finding("/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/"
                                           "storageAccounts/sa"), state=SavedState([]))
    with pytest.raises(ActionError, match=r"expected Microsoft\.ContainerRegistry/registries, got Microsoft\.Storage/"):
        disable.plan(ctx, disable.parse_params({}))


# -- acr.rotate-credentials -----------------------------------------------------------------------------

def test_rotate_plan_is_two_invokes_and_a_redacted_secret_write(arm: FakeArm) -> None:
    params = {"key_vault": {"vault_url": VAULT + "/", "secret_name": "acr-admin"}}
    saved = _plan(rotate, SavedState([_registry()]), **params)
    live = _plan(rotate, LiveState(arm.clients()), **params)
    assert arm.writes == []
    assert arm.sensitive == []  # planning never lists credentials
    assert [c.to_json() for c in saved] == [c.to_json() for c in live]
    first, second, store = saved
    assert (first.resource_id, first.operation, first.after) == (
        REGISTRY_ID + "/regenerateCredential", "invoke", {"name": "password2"})
    assert (second.resource_id, second.after) == (REGISTRY_ID + "/regenerateCredential", {"name": "password"})
    assert store.resource_id == VAULT + "/secrets/acr-admin"
    assert store.after is not None
    assert store.after["value"] == REDACTED == "<new password from regenerateCredential (redacted)>"
    plan_json = json.dumps([c.to_json() for c in saved])
    for password in _passwords(arm):
        assert password not in plan_json


def test_rotate_with_admin_disabled_plans_nothing() -> None:
    assert _plan(rotate, SavedState([_registry(admin=False)])) == []


def _secret_free(arm: FakeArm, *texts: str) -> None:
    secrets = [*_passwords(arm)]
    stored = arm.secret(VAULT, "acr-admin")
    if stored:
        secrets.append(stored)
    for text in texts:
        for secret in secrets:
            assert secret not in text


def _text(result: ApplyResult) -> str:
    return " ".join([repr(result), result.detail, json.dumps(result.response)])


def test_rotate_apply_verify_end_to_end_without_leaking(arm: FakeArm,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clients = arm.clients()
    live = LiveState(clients)
    old = arm.credentials(REGISTRY_ID)
    changes = _plan(rotate, live, key_vault={"vault_url": VAULT, "secret_name": "acr-admin"})
    arm.reset_log()
    results = [rotate.apply(clients, c) for c in changes]

    regen = [(r.method, r.path.rsplit("/", 1)[-1], r.body) for r in arm.requests if r.method == "POST"]
    assert regen == [("POST", "listCredentials", None),
                     ("POST", "regenerateCredential", {"name": "password2"}),
                     ("POST", "listCredentials", None),
                     ("POST", "regenerateCredential", {"name": "password"}),
                     ("POST", "listCredentials", None)]
    assert [w.path.rsplit("/", 1)[-1] for w in arm.writes] == ["regenerateCredential", "regenerateCredential",
                                                               "acr-admin"]
    new = arm.credentials(REGISTRY_ID)
    assert new["password"] != old["password"]
    assert new["password2"] != old["password2"]
    assert arm.secret(VAULT, "acr-admin") == new["password"]  # the vault holds the new password
    assert results[0].response == {"name": "password2", "fingerprint_before": fingerprint(old["password2"]),
                                   "fingerprint_after": fingerprint(new["password2"])}
    assert [rotate.verify(live, c) for c in changes] == [None, None, None]

    texts = [_text(r) for r in results] + [json.dumps([c.to_json() for c in changes]), caplog.text]
    for secret in (*old.values(), *new.values()):
        for text in texts:
            assert secret not in text
    assert "regenerated password2 of registry myRegistry" in caplog.text


def test_rotate_verify_catches_an_unrotated_password_and_needs_live_state(arm: FakeArm) -> None:
    clients = arm.clients()
    live = LiveState(clients)
    first, _second = _plan(rotate, live)
    old = arm.credentials(REGISTRY_ID)["password2"]
    rotate.apply(clients, first)
    assert rotate.verify(live, first) is None
    arm.set_credential(REGISTRY_ID, "password2", old)  # as if the rotation had not happened
    problem = rotate.verify(live, first)
    assert problem == f"password2 still has the value it had before the rotation ({fingerprint(old)})"
    assert old not in problem
    assert rotate.verify(SavedState([_registry()]), first) == (
        "a credential rotation can only be verified against live Azure (listCredentials)")


def test_rotate_verify_without_a_receipt_does_not_pass() -> None:
    with FakeArm() as arm:
        arm.add(_registry())
        other = REGISTRY_ID.replace("myRegistry", "otherRegistry")
        reg = _registry()
        reg["id"], reg["name"] = other, "otherRegistry"
        arm.add(reg)
        change = Change(action=rotate.name, resource_id=other + "/regenerateCredential", operation="invoke",
                        before=None, after={"name": "password"})
        problem = rotate.verify(LiveState(arm.clients()), change)
        assert problem == ("no rotation receipt for password in this process: "
                           "apply and verify must run together")


@pytest.mark.parametrize(("method", "where", "status", "expected"), [
    ("POST", "regenerateCredential", 403, "regenerating password2 of registry myRegistry failed: 403 "
                                          "AuthorizationFailed"),
    ("POST", "listCredentials", 409, "regenerating password2 of registry myRegistry failed: 409 Conflict"),
])
def test_rotate_errors_are_one_line_and_secret_free(arm: FakeArm, method: str, where: str, status: int,
                                                    expected: str) -> None:
    clients = arm.clients()
    first, _ = _plan(rotate, LiveState(clients))
    arm.fail_next(method, where, status)
    with pytest.raises(ActionError) as err:
        rotate.apply(clients, first)
    assert "\n" not in str(err.value)
    assert expected in str(err.value)
    _secret_free(arm, str(err.value))


def test_key_vault_failure_never_shows_the_password(arm: FakeArm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clients = arm.clients()
    *_, store = _plan(rotate, LiveState(clients), key_vault={"vault_url": VAULT, "secret_name": "acr-admin"})
    # the vault's auth challenge first (the SDK caches it per process): the failure below then meets the PUT
    # that carries the password, whichever test ran before in this process, not the body-less challenge probe
    with pytest.raises(ResourceNotFoundError):
        clients.secrets(VAULT).get_secret("acr-admin")
    message = ("Caller is not authorized to perform action on resource. "
               "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'")
    arm.fail_next("PUT", "/secrets/acr-admin", 403, body={"error": {"code": "Forbidden", "message": message}})
    with pytest.raises(ActionError) as err:
        rotate.apply(clients, store)
    text = str(err.value)
    assert "\n" not in text
    assert "setting secret acr-admin in https://kv-ops.vault.azure.net failed: 403 Forbidden" in text
    assert arm.secret(VAULT, "acr-admin") is None
    # the failed PUT carried the password; it must not surface anywhere
    sent = [r for r in arm.requests if r.method == "PUT" and r.body]
    assert sent
    assert sent[-1].body["value"] == arm.credentials(REGISTRY_ID)["password"]
    _secret_free(arm, text, caplog.text, repr(err.value))


def test_store_verify_compares_the_vault_with_the_registry(arm: FakeArm) -> None:
    clients = arm.clients()
    live = LiveState(clients)
    *_, store = _plan(rotate, live, key_vault={"vault_url": VAULT, "secret_name": "acr-admin"})
    assert rotate.verify(live, store) == "secret acr-admin does not exist in https://kv-ops.vault.azure.net"
    rotate.apply(clients, store)
    assert rotate.verify(live, store) is None
    arm.set_credential(REGISTRY_ID, "password", "changed-behind-our-back")
    assert rotate.verify(live, store) == (
        "secret acr-admin does not hold the registry's current admin password")


@pytest.mark.parametrize(("params", "message"), [
    ({"key_vault": {"vault_url": "http://kv.vault.azure.net", "secret_name": "a"}}, "not a vault URL"),
    ({"key_vault": {"vault_url": "https://kv.vault.azure.net/x", "secret_name": "a"}}, "not a vault URL"),
    ({"key_vault": {"vault_url": "https://kv.vault.azure.net", "secret_name": "bad_name"}}, "secret name"),
    ({"key_vault": {"vault_url": "https://kv.vault.azure.net"}}, "secret_name"),
    ({"passwords": ["password"]}, "Extra inputs"),
])
def test_rotate_params_are_validated(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rotate.parse_params(params)


def test_rotate_cannot_be_undone(arm: FakeArm) -> None:
    first, _ = _plan(rotate, LiveState(arm.clients()))
    with pytest.raises(ActionError, match="cannot be undone"):
        rotate.undo(first)


def test_the_shipped_rotation_playbook_plans_both_passwords() -> None:
    """Both regenerateCredential invokes reach the plan (the planner folded them into one, so the
    primary password was never rotated while the vault got it as if it had been)."""
    from remediator.planning.planner import Planner
    from remediator.playbooks import PlaybookSet, load_playbook_file
    from tests.conftest import ROOT

    playbook = load_playbook_file(ROOT / "playbooks" / "acr-rotate-credentials.yaml")
    finding = make_finding(REGISTRY_ID, kind="alert", type="ARM_AnomalousOperation.CredentialAccess")
    result = Planner(playbooks=PlaybookSet([playbook]), state=SavedState([_registry()])).plan_one(finding)
    assert result.outcome == "changes", result.reason
    # the shipped playbook stores no secret (no key_vault_secret param): the two invokes only
    assert [(c.operation, (c.after or {}).get("name")) for c in result.changes] == \
        [("invoke", "password2"), ("invoke", "password")]
