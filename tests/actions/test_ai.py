"""The answers to Defender's AI services alerts: every alert type of the reference, in each shape Azure
sends, planned by the shipped playbooks on FakeArm; then each action's own cases (content filters
built-in and custom, capacity ceilings, which key, Key Vault) and what must never leak."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator.actions import REGISTRY
from remediator.actions.acr import fingerprint
from remediator.actions.ai import PROMPT_ATTACK_FILTERS
from remediator.azure.reader import LiveState
from remediator.findings.model import Finding
from remediator.findings.parse import parse_value
from remediator.planning.planner import Planner
from remediator.planning.result import Result
from remediator.playbooks import PlaybookSet, load_playbooks
from remediator.testing import FakeArm
from tests.actions.test_private_link import settings
from tests.conftest import ROOT
from tests.findings.test_ai import AI_ALERTS, ARM, CANARIES, EXPORT, LA
from tests.support.builders import arm_fixture
from tests.support.pim import pim_apply

SUB = "3f2b1c4e-8d7a-4e21-9b6f-0c5d2e7a9f13"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/oai-contoso"
DEPLOYMENT = f"{ACCOUNT}/deployments/gpt-4o-chat"
BUILTIN = f"{ACCOUNT}/raiPolicies/Microsoft.DefaultV2"
VAULT = "https://kv-ai-ops.vault.azure.net"
SHIPPED = load_playbooks(ROOT / "playbooks")
SHAPES = {"export": EXPORT, "arm": ARM, "log-analytics": LA}


def account(**props: Any) -> dict[str, Any]:
    doc = arm_fixture("cognitiveservices__2024-10-01__GetAccount.json")
    doc.update(id=ACCOUNT, name="oai-contoso", kind="OpenAI")
    # an office range already allowed: closing the account leaves someone with access
    doc["properties"].update({"networkAcls": {"defaultAction": "Allow", "ipRules": [{"value": "198.51.100.0/24"}],
                                              "virtualNetworkRules": []}, **props})
    return doc


def deployment(capacity: int = 120, **props: Any) -> dict[str, Any]:
    doc = arm_fixture("cognitiveservices__2024-10-01__GetDeployment.json")
    doc.update(id=DEPLOYMENT, name="gpt-4o-chat")
    doc["sku"]["capacity"] = capacity
    doc["properties"].update(props)
    return doc


def rai_policy(name: str = "Microsoft.DefaultV2", *, kind: str = "SystemManaged", jailbreak: str = "detect",
               indirect: bool = False) -> dict[str, Any]:
    doc = arm_fixture("cognitiveservices__2024-10-01__GetRaiPolicy.json")
    doc.update(id=f"{ACCOUNT}/raiPolicies/{name}", name=name, type="Microsoft.CognitiveServices/accounts/raiPolicies")
    doc["properties"]["type"] = kind
    for f in doc["properties"]["contentFilters"]:
        if f["name"] == "jailbreak":
            f.update(blocking=jailbreak == "block", enabled=jailbreak != "off")
    if indirect:
        doc["properties"]["contentFilters"].append({"name": "indirect_attack", "blocking": True, "enabled": True,
                                                    "source": "Prompt"})
    return doc


def estate() -> list[dict[str, Any]]:
    return [account(), deployment(), rai_policy()]


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load(estate())
        yield fake


def alert(shape: str, alert_type: str | None = None, **ext: str) -> Finding:
    """The crafted AI alert of ``shape`` as ``alert_type``, extended properties added or replaced."""
    doc = json.loads(SHAPES[shape].read_text(encoding="utf-8"))
    props = doc.get("properties", doc)
    key = "alertType" if "properties" in doc else "AlertType"
    if alert_type:
        props[key] = alert_type
    if ext:
        name = "extendedProperties" if "properties" in doc else "ExtendedProperties"
        current = props[name] if isinstance(props[name], dict) else json.loads(props[name])
        current.update(ext)
        props[name] = current if isinstance(props[name], dict) else json.dumps(current)
    (f,) = parse_value(doc, source=shape)
    assert isinstance(f, Finding)
    return f


def plan(arm: FakeArm, finding: Finding, playbooks: PlaybookSet = SHIPPED) -> Result:
    return Planner(playbooks=playbooks, state=LiveState(arm.clients())).plan_one(finding)


def ops(result: Result) -> list[tuple[str, str, str]]:
    return [(c.action, c.operation, c.resource_id.rsplit("/", 1)[-1]) for c in result.changes]


BLOCK = [("cognitive.block-prompt-attacks", "create", "remediator-gpt-4o-chat"),
         ("cognitive.block-prompt-attacks", "update", "gpt-4o-chat")]
CLOSE = [("cognitive.restrict-network-access", "update", "oai-contoso")]
REGEN_1 = [("cognitive.regenerate-key", "invoke", "regenerateKey")]
CAPACITY = [("cognitive.limit-deployment-capacity", "update", "gpt-4o-chat")]
# alert type -> playbook, and per shape what it plans (the ARM shape names Key1, the others no key)
ANSWERS: dict[str, tuple[str, dict[str, list[tuple[str, str, str]]] | None]] = {
    "AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt": ("ai-alert-block-prompt-attacks",
                                                            dict.fromkeys(SHAPES, BLOCK)),
    "AI.Azure_CredentialTheftAttempt": ("ai-alert-regenerate-key",
                                        {"export": REGEN_1 * 2, "arm": REGEN_1, "log-analytics": REGEN_1 * 2}),
    **{t: ("ai-alert-close-network-access", {"export": CLOSE, "arm": CLOSE + REGEN_1, "log-analytics": CLOSE})
       for t in ("AI.Azure_AccessFromSuspiciousIP", "AI.Azure_AccessFromAnonymizedIP",
                 "AI.Azure_AccessFromSuspiciousUserAgent")},
    **{t: ("ai-alert-limit-capacity", dict.fromkeys(SHAPES, CAPACITY))
       for t in ("AI.Azure_DOWVolumeAnomaly", "AI.Azure_DOWDuplicateRequests")},
    "AI.Azure_SensitiveDataAnomaly": ("ai-alert-advise-data-exposure", None),
    **dict.fromkeys((
        "AI.Azure_MaliciousUrl.ModelResponse",
        "AI.Azure_MaliciousUrl.UnknownSource",
        "AI.Azure_MaliciousUrl.UserPrompt",
    ), ("ai-alert-advise-phishing", None)),
    **dict.fromkeys((
        "AI.Azure_Jailbreak.ContentFiltering.BlockedAttempt",
        "AI.Azure_ASCIISmuggling",
    ), ("ai-alert-advise-prompt-attacks", None)),
    **dict.fromkeys((
        "AI.Azure_AccessAnomaly",
        "AI.Azure_AnomalousOperation.InitialAccess",
        "AI.Azure_AnomalousToolInvocation",
    ), ("ai-alert-advise-access-anomaly", None)),
}


def test_every_alert_of_the_reference_has_an_answer() -> None:
    assert sorted(ANSWERS) == sorted(AI_ALERTS)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("alert_type", sorted(ANSWERS))
def test_each_alert_in_each_shape_plans_its_change_or_its_message(arm: FakeArm, alert_type: str, shape: str) -> None:
    result = plan(arm, alert(shape, alert_type))
    playbook, planned = ANSWERS[alert_type]
    assert result.playbook == playbook, result.reason
    if planned is None:  # a message, no change
        assert (result.outcome, result.changes) == ("no_changes", ()), result.reason
        said = "\n".join(result.advice)
        assert "evidence: deployment: gpt-4o-chat" in said
        assert "step 1: " in said
    else:
        assert result.outcome == "changes", result.reason
        assert ops(result) == planned[shape]
        assert not result.advice
    assert arm.writes == []
    shown = json.dumps([result.to_json(), result.advice, result.reason])
    assert not any(c in shown for c in CANARIES)


def test_the_content_filter_diff_and_what_the_new_policy_keeps(arm: FakeArm) -> None:
    result = plan(arm, alert("export"))
    create, point = result.changes
    assert "jailbreak (Prompt): detect only -> block; indirect_attack (Prompt): off -> block; 11 other filters kept" \
        in create.note
    assert "copy of the built-in Microsoft.DefaultV2 (which cannot be edited)" in create.note
    builtin = rai_policy()["properties"]
    new = dict(create.after or {})["properties"]
    assert new["basePolicyName"] == "Microsoft.DefaultV2"
    assert new["mode"] == builtin["mode"]
    others = [f for f in new["contentFilters"] if f["name"] not in PROMPT_ATTACK_FILTERS]
    assert others == [f for f in builtin["contentFilters"] if f["name"] not in PROMPT_ATTACK_FILTERS]
    assert "raiPolicyName Microsoft.DefaultV2 -> remediator-gpt-4o-chat" in point.note


def test_a_deployment_on_a_custom_filter_has_that_filter_updated_in_place() -> None:
    with FakeArm() as arm:
        arm.load([account(), deployment(raiPolicyName="chat-strict"), rai_policy("chat-strict", kind="UserManaged")])
        jailbreak = alert("arm", "AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt")
        result = plan(arm, jailbreak)
        (change,) = result.changes
        assert (change.operation, change.resource_id) == ("update", f"{ACCOUNT}/raiPolicies/chat-strict")
        assert "every deployment that uses it" in change.note
        action = REGISTRY["cognitive.block-prompt-attacks"]
        pim_apply(arm, action, change, refused_first=True)
        filters = (arm.get(change.resource_id) or {})["properties"]["contentFilters"]
        assert {f["name"]: (f["enabled"], f["blocking"]) for f in filters if f["name"] in PROMPT_ATTACK_FILTERS} == \
            {"jailbreak": (True, True), "indirect_attack": (True, True)}
        assert plan(arm, jailbreak).outcome == "no_changes"
        undo = action.undo(change)
        pim_apply(arm, action, undo)
        assert (arm.get(change.resource_id) or {})["properties"]["contentFilters"] == \
            rai_policy("chat-strict", kind="UserManaged")["properties"]["contentFilters"]


def test_a_filter_that_blocks_both_already_changes_nothing() -> None:
    with FakeArm() as arm:
        arm.load([account(), deployment(), rai_policy(jailbreak="block", indirect=True)])
        assert plan(arm, alert("export")).outcome == "no_changes"


def test_the_apply_writes_the_policy_before_the_deployment_and_undo_the_other_way(arm: FakeArm) -> None:
    action = REGISTRY["cognitive.block-prompt-attacks"]
    changes = plan(arm, alert("export")).changes
    for change in changes:
        pim_apply(arm, action, change, refused_first=True)
    writes = [(w.method, w.path.rsplit("/", 1)[-1]) for w in arm.resource_writes if w.status < 300]
    assert writes == [("PUT", "remediator-gpt-4o-chat"), ("PUT", "gpt-4o-chat")]
    assert (arm.get(DEPLOYMENT) or {})["properties"]["raiPolicyName"] == "remediator-gpt-4o-chat"
    assert (arm.get(BUILTIN) or {})["properties"] == rai_policy()["properties"]  # the built-in one untouched
    arm.reset_log()
    for change in reversed(changes):
        pim_apply(arm, action, action.undo(change))
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in arm.resource_writes if w.status < 300] == \
        [("PUT", "gpt-4o-chat"), ("DELETE", "remediator-gpt-4o-chat")]
    assert "raiPolicyName" not in (arm.get(DEPLOYMENT) or {})["properties"]
    assert arm.get(f"{ACCOUNT}/raiPolicies/remediator-gpt-4o-chat") is None


def test_fake_arm_refuses_edits_of_a_built_in_filter_and_properties_in_a_deployment_patch(arm: FakeArm) -> None:
    from remediator.azure.lro import write

    clients = arm.clients()
    with pytest.raises(Exception, match="system-managed"):
        write(clients, "PUT", BUILTIN, "2024-10-01", body={"properties": {"contentFilters": []}})
    with pytest.raises(Exception, match="only 'sku' and 'tags'"):
        write(clients, "PATCH", DEPLOYMENT, "2024-10-01", body={"properties": {"raiPolicyName": "x"}})


def test_an_alert_that_names_no_deployment_is_refused_in_one_line(arm: FakeArm) -> None:
    doc = json.loads(EXPORT.read_text(encoding="utf-8"))
    del doc["ExtendedProperties"]["Model deployment name"]
    (f,) = parse_value(doc, source="x")
    assert isinstance(f, Finding)
    result = plan(arm, f)
    assert result.outcome == "error"
    assert "the alert names no model deployment" in result.reason
    assert "\n" not in result.reason


def test_a_filter_missing_from_saved_state_is_named_with_how_to_save_it(arm: FakeArm) -> None:
    arm_docs = [account(), deployment()]
    with FakeArm() as bare:
        bare.load(arm_docs)
        result = plan(bare, alert("export"))
    assert result.outcome == "error"
    assert f"az resource show --ids {BUILTIN} --api-version 2024-10-01" in result.reason


# --- capacity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("capacity", "planned"), [(120, 10), (11, 10), (10, None), (3, None)])
def test_capacity_is_lowered_to_the_ceiling_never_raised(capacity: int, planned: int | None) -> None:
    with FakeArm() as arm:
        arm.load([account(), deployment(capacity), rai_policy()])
        result = plan(arm, alert("export", "AI.Azure_DOWVolumeAnomaly"))
        if planned is None:
            assert result.outcome == "no_changes", result.reason
            return
        (change,) = result.changes
        assert dict(change.after or {})["sku"] == {"name": "Standard", "capacity": planned}
        assert f"sku.capacity: {capacity} -> {planned}" in change.note
        action = REGISTRY["cognitive.limit-deployment-capacity"]
        pim_apply(arm, action, change, refused_first=True)
        (patch,) = [w for w in arm.resource_writes if w.method == "PATCH" and w.status < 300]
        assert patch.body == {"sku": {"name": "Standard", "capacity": planned}}  # sku.name with it, as the API needs
        assert (arm.get(DEPLOYMENT) or {})["sku"]["capacity"] == planned
        pim_apply(arm, action, action.undo(change))
        assert (arm.get(DEPLOYMENT) or {})["sku"]["capacity"] == capacity


# --- keys ----------------------------------------------------------------------------------------------


def _key_playbook(tmp_path: Path, params: str) -> PlaybookSet:
    (tmp_path / "p.yaml").write_text(
        "name: regen\ndescription: test\nmatch:\n  alerts: [AI.Azure_CredentialTheftAttempt]\n"
        "  resource_types: [Microsoft.CognitiveServices/accounts]\nrisk: high\napproval: {mode: slack, approvers: "
        "[security-oncall], quorum: 2}\nsteps:\n  - action: cognitive.regenerate-key\n"
        f"    params: {params}\n  - action: cognitive.disable-local-auth\n", encoding="utf-8")
    return PlaybookSet(load_playbooks(tmp_path))


@pytest.mark.parametrize(("shape", "params", "planned"), [
    ("arm", "{key: used}", ["Key1"]),
    ("export", "{key: used, if_unknown: both}", ["Key1", "Key2"]),
    ("export", "{key: used, if_unknown: skip}", []),
    ("export", "{key: Key2}", ["Key2"]),
    ("arm", "{key: both}", ["Key1", "Key2"]),
])
def test_which_key_is_regenerated_and_key_access_turned_off_where_the_playbook_says(
        arm: FakeArm, tmp_path: Path, shape: str, params: str, planned: list[str]) -> None:
    result = plan(arm, alert(shape, "AI.Azure_CredentialTheftAttempt"), _key_playbook(tmp_path, params))
    keys = [dict(c.after or {})["keyName"] for c in result.changes if c.operation == "invoke"]
    assert keys == planned
    assert [c.action for c in result.changes if c.operation == "update"] == ["cognitive.disable-local-auth"]
    for change in result.changes:
        if change.operation == "invoke":
            assert "IRREVERSIBLE" in change.note
            assert "the new key is stored nowhere" in change.note


def test_an_unknown_key_is_refused_when_the_playbook_says_so(arm: FakeArm, tmp_path: Path) -> None:
    result = plan(arm, alert("export", "AI.Azure_CredentialTheftAttempt"), _key_playbook(tmp_path, "{key: used}"))
    assert result.outcome == "error"
    assert "does not say which key was used" in result.reason


def test_no_key_to_regenerate_when_key_access_is_off() -> None:
    with FakeArm() as arm:
        arm.load([account(disableLocalAuth=True), deployment(), rai_policy()])
        assert plan(arm, alert("arm", "AI.Azure_CredentialTheftAttempt")).outcome == "no_changes"


def test_regenerate_under_pim_into_key_vault_without_leaking_a_key(arm: FakeArm, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    playbooks = _key_playbook(tmp_path, f"{{key: used, key_vault: {{vault_url: {VAULT}, secret_name: oai-key}}}}")
    result = plan(arm, alert("arm", "AI.Azure_CredentialTheftAttempt"), playbooks)
    regen, store, _disable = result.changes
    assert "stored as a new version of secret oai-key" in regen.note
    old = arm.account_keys(ACCOUNT)
    action = REGISTRY["cognitive.regenerate-key"]
    applied = [pim_apply(arm, action, regen, refused_first=True), pim_apply(arm, action, store)]
    new = arm.account_keys(ACCOUNT)
    assert new["key1"] != old["key1"]
    assert new["key2"] == old["key2"]  # only the key that was used
    assert arm.secret(VAULT, "oai-key") == new["key1"]
    assert applied[0].response == {"keyName": "Key1", "fingerprint_before": fingerprint(old["key1"]),
                                   "fingerprint_after": fingerprint(new["key1"])}
    arm.enforce_grants(None)  # verify reads listKeys: the worker does it under the grant (verify_under_grant)
    live = LiveState(arm.clients())
    assert [action.verify(live, c) for c in (regen, store)] == [None, None]
    texts = [repr(a) for a in applied] + [json.dumps([c.to_json() for c in result.changes]), caplog.text]
    for key in (*old.values(), *new.values()):
        assert not any(key in t for t in texts)
    with pytest.raises(Exception, match="cannot be undone"):
        action.undo(regen)


def test_verify_catches_a_key_that_was_not_regenerated(arm: FakeArm) -> None:
    from remediator.actions import ai as ai_actions

    action = REGISTRY["cognitive.regenerate-key"]
    (regen,) = plan(arm, alert("arm", "AI.Azure_CredentialTheftAttempt")).changes
    pim_apply(arm, action, regen)
    arm.enforce_grants(None)
    live = LiveState(arm.clients())
    assert action.verify(live, regen) is None
    current = fingerprint(arm.account_keys(ACCOUNT)["key1"])  # as if the regeneration had not happened
    ai_actions._remember(ACCOUNT, "Key1", ai_actions._Receipt(before=current, after=current))
    assert "still has the value it had before" in (action.verify(live, regen) or "")


def test_access_from_a_suspicious_ip_takes_the_private_link_path_when_it_is_configured() -> None:
    """Closing an account that allows every network and has no rule would cut everyone off: without the
    Private Link settings the plan refuses naming them; with them it builds the private endpoint first."""
    with FakeArm() as arm:
        open_to_all = account(networkAcls={"defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []})
        arm.load([open_to_all, deployment(), rai_policy()])
        finding = alert("log-analytics")  # AI.Azure_AccessFromSuspiciousIP
        refused = plan(arm, finding)
        assert refused.outcome == "error"
        assert "private_link_subnets" in refused.reason
        planner = Planner(playbooks=SHIPPED, state=LiveState(arm.clients()), private_link=settings())
        result = planner.plan_one(finding)
        assert result.outcome == "changes", result.reason
        types = [(c.operation, c.resource_id.split("/providers/")[-1].split("/")[1]) for c in result.changes]
        assert ("create", "privateEndpoints") in types
        assert result.changes[-1].resource_id == ACCOUNT
        assert dict(result.changes[-1].after or {})["properties"]["publicNetworkAccess"] == "Disabled"
