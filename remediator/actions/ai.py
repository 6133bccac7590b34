"""Answers to Defender's AI services alerts, on an AI services account's model deployments, content filters and keys.

The alert's evidence (the account, the deployment, the key that was used) is read by
``remediator.findings.ai.evidence``, one place for every alert shape; an alert that names the deployment
as its resource works the same.

``cognitive.block-prompt-attacks`` (a jailbreak that Prompt Shields detected but did not block)
    The deployment's content filter (``properties.raiPolicyName``; a deployment without one uses the
    account's default, ``default_policy``) gets the ``jailbreak`` and ``indirect_attack`` filters on the
    prompt enabled and blocking, every other filter kept as it is. A custom (``UserManaged``) policy is
    updated in place; a built-in one (``Microsoft.Default``, ``Microsoft.DefaultV2``: ``SystemManaged``,
    which no one can edit) is copied into a new custom policy ``<prefix><deployment>`` (its filters, mode
    and blocklists, based on the built-in one) with the two filters blocking, and the deployment is then
    pointed at it. The plan's note is the filter diff. Undo restores the deployment's policy, then
    deletes the policy it created (or restores the filters it changed).
``cognitive.regenerate-key`` (credential theft, a key used from a suspicious place)
    ``POST <account>/regenerateKey {"keyName": "Key1"|"Key2"}``: the key the alert names (``key: used``),
    both, or a fixed one. **Irreversible**: the old key stops working at once and every client that
    still holds it fails with 401. The new key goes nowhere unless ``key_vault`` names a secret
    (a new version of it, through Key Vault's data plane, as ``acr.rotate-credentials`` does). No key is
    ever put in a change, a log line or an error: ``apply`` keeps keys in local variables and reports a
    fingerprint (``remediator.actions.acr.fingerprint``); verify compares fingerprints from ``listKeys``.
    An account with key access disabled (``disableLocalAuth``) accepts no key: nothing to regenerate.
``cognitive.limit-deployment-capacity`` (wallet attacks: volume anomaly, duplicate requests)
    The deployment's ``sku.capacity`` lowered to the playbook's ``max_capacity`` (a deployment at or below
    it is left alone), by Deployments_Update (a PATCH of ``sku``). Capacity is the deployment's rate
    limit: for Standard deployments one unit is 1,000 tokens per minute (Azure OpenAI quota, MicrosoftDocs
    azure-ai-docs ``articles/ai-services/openai/how-to/quota.md``). Reversible: undo puts the capacity back.

API version 2024-10-01 (``cognitiveservices/…/stable/2024-10-01``: examples GetDeployment.json,
UpdateDeployment.json, GetRaiPolicy.json/PutRaiPolicy.json, RegenerateKey.json; the filter names
``jailbreak`` and ``indirect_attack`` and their ``source`` ``Prompt`` are the spec's ``RaiPolicyContentFilter``).
Role: Cognitive Services Contributor (``Microsoft.CognitiveServices/*``) at the one resource each write needs.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.acr import REDACTED, KeyVaultTarget, fingerprint
from remediator.actions.base import Action, ApplyResult, Example, Params, PlanContext, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.profiles import COGNITIVE_ACCOUNT, COGNITIVE_DEPLOYMENT, RAI_POLICY
from remediator.actions.properties import PropertyAction, Setting, get_path, with_paths
from remediator.azure.lro import write
from remediator.azure.reader import register_api_version
from remediator.azure.state import StateReader
from remediator.errors import ActionError
from remediator.findings import ai

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

API_VERSION = COGNITIVE_ACCOUNT.api_version
PROMPT_ATTACK_FILTERS = ("jailbreak", "indirect_attack")
"""The Prompt Shields filters on the prompt: direct (jailbreak) and indirect (documents, tool output) attacks."""
_POLICY_NAME = re.compile(r"[^A-Za-z0-9_-]")
_DEPLOYMENT_WRITABLE = ("model", "raiPolicyName", "versionUpgradeOption", "scaleSettings", "parentDeploymentName",
                        "dynamicThrottlingEnabled", "spilloverDeploymentName")
_POLICY_WRITABLE = ("basePolicyName", "mode", "contentFilters", "customBlocklists")
KeyChoice = Literal["used", "both", "Key1", "Key2"]
register_api_version(RAI_POLICY.type, RAI_POLICY.api_version)  # the plan reads content filters by id


def alert_evidence(ctx: PlanContext) -> ai.AiEvidence:
    """The finding's AI evidence (account, deployment, caller, key), from ``remediator.findings.ai``."""
    f = ctx.finding
    return ai.evidence(resource_id=f.resource_id, extended_properties=f.extended_properties, entities=f.entities,
                       alert_id=f.id)


def deployment_of(ctx: PlanContext, action: str) -> str:
    """The model deployment the finding is about: its resource when that is a deployment, else the one the
    alert names on the account; an ``ActionError`` saying so when it names none."""
    ev = alert_evidence(ctx)
    if ids.type_key(ids.resource_type(ctx.finding.resource_id)) == ai.DEPLOYMENT_TYPE:
        return ctx.finding.resource_id
    if ev.deployment_id:
        return ev.deployment_id
    raise ActionError("refused: the alert names no model deployment (no deployment resource, no \"Model deployment "
                      "name\" extended property); find it on the alert in Defender for Cloud and act on it there",
                      action=action, resource_id=ctx.finding.resource_id)


# --- cognitive.limit-deployment-capacity ---------------------------------------------------------------


class LimitCapacityParams(Params):
    max_capacity: int = Field(ge=1)
    """The ceiling for the deployment's sku.capacity (its rate limit; Standard: 1 unit = 1,000 tokens per minute)."""


@register
class LimitDeploymentCapacity(PropertyAction[LimitCapacityParams]):
    """Lower a model deployment's capacity (its rate limit) to a ceiling during a wallet attack."""

    name = "cognitive.limit-deployment-capacity"
    profile = COGNITIVE_DEPLOYMENT
    resource_types = (COGNITIVE_ACCOUNT.type, COGNITIVE_DEPLOYMENT.type)
    settings = (Setting("sku.capacity", None),)
    whole = ("sku",)  # Deployments_Update requires sku.name with the capacity
    breaks = ("requests above the lower rate limit get 429 Too Many Requests, legitimate peak traffic "
              "included, until the capacity is raised again (undo)")
    example = Example("During a wallet attack, cap the attacked deployment's capacity.",
                      why="Suspected wallet attack (Alerts for AI services)",
                      alerts=("AI.Azure_DOWVolumeAnomaly", "AI.Azure_DOWDuplicateRequests"),
                      params="{max_capacity: 10}")

    def target_id(self, ctx: PlanContext) -> str:
        return deployment_of(ctx, self.name)

    def values(self, ctx: PlanContext, params: LimitCapacityParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        have = get_path(doc, "sku.capacity")
        if isinstance(have, int) and not isinstance(have, bool) and have <= params.max_capacity:
            return {"sku.capacity": have}  # at or below the ceiling already: nothing to lower
        return {"sku.capacity": params.max_capacity}

    def notes(self, ctx: PlanContext, params: LimitCapacityParams, doc: Mapping[str, Any]) -> list[str]:
        return [f"deployment {ids.parse(str(doc.get('id', ''))).name} ({get_path(doc, 'sku.name') or 'no sku'}, "
                f"model {get_path(doc, 'properties.model.name') or '?'})"]


# --- cognitive.block-prompt-attacks ---------------------------------------------------------------------


class BlockPromptAttacksParams(Params):
    default_policy: str = "Microsoft.DefaultV2"
    """The content filter a deployment without raiPolicyName uses (the account's default)."""
    policy_prefix: str = "remediator-"
    """A built-in filter is copied into a new custom policy named <prefix><deployment>."""

    @field_validator("policy_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if _POLICY_NAME.search(value) or len(value) > 40:
            raise ValueError(f"{value!r}: a policy name prefix is at most 40 letters, digits, '-' or '_'")
        return value


def _filter_state(f: Mapping[str, Any] | None) -> str:
    if f is None or f.get("enabled") is False:
        return "off"
    return "block" if f.get("blocking") is True else "detect only"


def _prompt_filter(filters: list[Any], name: str) -> Mapping[str, Any] | None:
    return next((f for f in filters if isinstance(f, Mapping) and str(f.get("name", "")).lower() == name
                 and str(f.get("source", "Prompt")).lower() == "prompt"), None)


def _blocking(filters: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """``filters`` with every prompt-attack filter enabled and blocking (others as they are), and the diff."""
    out = [json_copy(dict(f)) for f in filters if isinstance(f, Mapping)]
    diff = []
    for name in PROMPT_ATTACK_FILTERS:
        have = _prompt_filter(out, name)
        if _filter_state(have) == "block":
            continue
        diff.append(f"{name} (Prompt): {_filter_state(have)} -> block")
        if have is None:
            out.append({"name": name, "blocking": True, "enabled": True, "source": "Prompt"})
        else:
            index = next(i for i, f in enumerate(out) if f is have)
            out[index] = {**have, "blocking": True, "enabled": True}
    return out, diff


def _system_managed(name: str, policy: Mapping[str, Any]) -> bool:
    return str(props(policy).get("type", "")).lower() == "systemmanaged" or name.lower().startswith("microsoft.")


@register
class BlockPromptAttacks(ChildResourceAction[BlockPromptAttacksParams]):
    """Make the attacked deployment's content filter block jailbreak and indirect prompt attacks."""

    name = "cognitive.block-prompt-attacks"
    profile = RAI_POLICY
    resource_types = (COGNITIVE_ACCOUNT.type, COGNITIVE_DEPLOYMENT.type)
    permissions = (*RAI_POLICY.permissions, "Microsoft.CognitiveServices/accounts/deployments/read",
                   "Microsoft.CognitiveServices/accounts/deployments/write")
    summary = "Prompt Shields on the deployment's content filter: jailbreak and indirect attacks blocked"
    id_hint = "<account>/raiPolicies/<name> or <account>/deployments/<name>"
    example = Example("A jailbreak was detected but not blocked; make the deployment's content filter block it.",
                      why="A Jailbreak attempt on an Azure AI model deployment was detected (not blocked)",
                      alerts=("AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt",))

    def plan(self, ctx: PlanContext, params: BlockPromptAttacksParams) -> list[Change]:
        dep_id, dep = self.document(ctx, deployment_of(ctx, self.name))
        account = ids.parse(dep_id).parent()
        if account is None:
            raise ActionError("a deployment id without its account", action=self.name, resource_id=dep_id)
        deployment = ids.parse(dep_id).name
        current = str(get_path(dep, "properties.raiPolicyName") or params.default_policy)
        policy_id = f"{account.id}/raiPolicies/{current}"
        policy = ctx.state.get(policy_id)
        if policy is None:
            raise ActionError(f"refused: content filter {current} of deployment {deployment} is not in the resource "
                              f"state, so its other filters cannot be kept; add it with `az resource show --ids "
                              f"{policy_id} --api-version {API_VERSION}` to the --resources folder",
                              action=self.name, resource_id=dep_id)
        filters, diff = _blocking(list(props(policy).get("contentFilters") or []))
        if not diff:
            return []  # its filter blocks both already
        kept = len(filters) - len(diff)
        shown = f"{'; '.join(diff)}; {kept} other filter{'s' if kept != 1 else ''} kept as they are"
        if not _system_managed(current, policy):
            after = with_paths(policy, {"properties.contentFilters": filters})
            return [Change(action=self.name, resource_id=str(policy.get("id") or policy_id), operation="update",
                           before=policy, after=after,
                           note=f"content filter {current} of deployment {deployment}: {shown}; it applies to every "
                                "deployment that uses it")]
        new_name = f"{params.policy_prefix}{_POLICY_NAME.sub('-', deployment)}"[:64]
        new_id = f"{account.id}/raiPolicies/{new_name}"
        have = props(policy)
        body = {"basePolicyName": current, "mode": have.get("mode"), "contentFilters": filters,
                "customBlocklists": have.get("customBlocklists")}
        new_doc = {"properties": {k: v for k, v in body.items() if v is not None}}
        existing = ctx.state.get(new_id)
        changes = []
        if existing is None:
            changes.append(Change(action=self.name, resource_id=new_id, operation="create", before=None, after=new_doc,
                                  note=f"new content filter {new_name}: a copy of the built-in {current} (which cannot "
                                       f"be edited) with {shown}"))
        elif _blocking(list(props(existing).get("contentFilters") or []))[1]:
            changes.append(Change(action=self.name, resource_id=str(existing.get("id") or new_id), operation="update",
                                  before=existing, after={**existing, "properties": new_doc["properties"]},
                                  note=f"content filter {new_name} (made for this deployment): {shown}"))
        changes.append(Change(action=self.name, resource_id=dep_id, operation="update", before=dep,
                              after=with_paths(dep, {"properties.raiPolicyName": new_name}),
                              note=f"deployment {deployment}: raiPolicyName {current} -> {new_name}; can break: "
                                   "prompts that Prompt Shields flags as attacks are refused with 400 content_filter "
                                   "(false positives included), where they were only annotated before"))
        return changes

    def check_id(self, resource_id: str) -> None:
        if ids.type_key(ids.resource_type(resource_id)) not in (ids.type_key(RAI_POLICY.type), ai.DEPLOYMENT_TYPE):
            super().check_id(resource_id)

    def body(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        have = props(doc)
        if ids.type_key(ids.resource_type(str(doc.get("id", "")))) == ai.DEPLOYMENT_TYPE:
            out: dict[str, Any] = {"properties": {k: json_copy(have[k]) for k in _DEPLOYMENT_WRITABLE
                                                  if have.get(k) is not None}}
            for top in ("sku", "tags"):
                if doc.get(top) is not None:
                    out[top] = json_copy(doc[top])
            return out
        return {"properties": {k: json_copy(have[k]) for k in _POLICY_WRITABLE if have.get(k) is not None}}

    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        w, h = props(want), props(have)
        if "contentFilters" in w:
            return [f"{name} is {_filter_state(_prompt_filter(list(h.get('contentFilters') or []), name))}, expected "
                    f"{_filter_state(_prompt_filter(list(w.get('contentFilters') or []), name))}"
                    for name in PROMPT_ATTACK_FILTERS
                    if _filter_state(_prompt_filter(list(h.get("contentFilters") or []), name))
                    != _filter_state(_prompt_filter(list(w.get("contentFilters") or []), name))]
        if w.get("raiPolicyName") != h.get("raiPolicyName"):
            return [f"raiPolicyName is {h.get('raiPolicyName') or '(not set)'}, expected "
                    f"{w.get('raiPolicyName') or '(not set)'}"]
        return []

    def undo_note(self, change: Change) -> str:
        if ids.type_key(ids.resource_type(change.resource_id)) == ai.DEPLOYMENT_TYPE:
            before = get_path(change.before, "properties.raiPolicyName")
            return f"raiPolicyName back to {before or '(not set: the account default)'}"
        return ""


# --- cognitive.regenerate-key ---------------------------------------------------------------------------


class RegenerateKeyParams(Params):
    key: KeyChoice = "used"
    """used: the key the alert names (then if_unknown decides when it names none); both: Key1 then Key2; or Key1 /
    Key2."""
    if_unknown: Literal["refuse", "both", "skip"] = "refuse"
    """With key: used, when the alert names no key: refuse (the plan fails, loudly), both (regenerate both keys) or
    skip (regenerate nothing: another step answers the alert)."""
    key_vault: KeyVaultTarget | None = None
    """Where to store the new key (Key Vault data plane; the executor needs Key Vault Secrets Officer on the vault).
    Omit to regenerate only: the new key then goes nowhere, read it with listKeys when a client needs it."""


@dataclass(frozen=True, slots=True)
class _Receipt:
    before: str
    after: str


_RECEIPTS: dict[tuple[str, str], _Receipt] = {}
_RECEIPTS_LOCK = threading.Lock()
_MAX_RECEIPTS = 1024


def _remember(account: str, key: str, receipt: _Receipt) -> None:
    with _RECEIPTS_LOCK:
        if len(_RECEIPTS) >= _MAX_RECEIPTS:
            _RECEIPTS.pop(next(iter(_RECEIPTS)))
        _RECEIPTS[(ids.key(account), key)] = receipt


def _receipt(account: str, key: str) -> _Receipt | None:
    with _RECEIPTS_LOCK:
        return _RECEIPTS.get((ids.key(account), key))


def _keys(clients: ArmClients, account: str) -> dict[str, str]:
    """``{"Key1": …, "Key2": …}`` from listKeys. The caller must never log or return the values."""
    out = write(clients, "POST", account, API_VERSION, action="listKeys")
    return _key_values(out)


def _key_values(out: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    if isinstance(out, Mapping):
        for name, field in (("Key1", "key1"), ("Key2", "key2")):
            value = out.get(field)
            if isinstance(value, str):
                found[name] = value
    return found


_KEY_NAMES: tuple[Literal["Key1", "Key2"], ...] = ("Key1", "Key2")


@register
class RegenerateKey(Action[RegenerateKeyParams]):
    """Regenerate the AI services account key an attacker used (irreversible); optionally store it in Key Vault."""

    name = "cognitive.regenerate-key"
    summary = "Regenerate the account key the alert names (or both); optionally store the new one in Key Vault"
    profile = COGNITIVE_ACCOUNT
    resource_types = (COGNITIVE_ACCOUNT.type, COGNITIVE_DEPLOYMENT.type)  # an alert on a deployment: its account
    permissions = (
        "Microsoft.CognitiveServices/accounts/read",
        "Microsoft.CognitiveServices/accounts/listKeys/action",
        "Microsoft.CognitiveServices/accounts/regenerateKey/action",
        # only with key_vault, granted on the vault (Key Vault Secrets Officer; see remediator.actions.acr)
        "Microsoft.KeyVault/vaults/secrets/setSecret/action",
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    )
    reversible = False
    verify_under_grant = True  # listKeys needs the grant's role
    example = Example("A model response leaked a credential, or a key was used from a suspicious place; "
                      "regenerate that key.",
                      why="Detected credential theft attempts on an Azure AI model deployment",
                      alerts=("AI.Azure_CredentialTheftAttempt",), risk="high",
                      approval="{mode: slack, approvers: [security-oncall], quorum: 2, expires_after: 4h}",
                      params="{key: used}")

    def plan(self, ctx: PlanContext, params: RegenerateKeyParams) -> list[Change]:
        ev = alert_evidence(ctx)
        account_id, doc = self.document(ctx, ev.account or ctx.finding.resource_id)
        name = ids.parse(account_id).name
        if get_path(doc, "properties.disableLocalAuth") is True:
            return []  # key access is off: no key works, nothing to regenerate
        keys: tuple[Literal["Key1", "Key2"], ...]
        if params.key == "used" and ev.key is None:
            if params.if_unknown == "skip":
                return []
            if params.if_unknown == "refuse":
                raise ActionError("refused: the alert does not say which key was used (no \"Key name\" extended "
                                  "property); set if_unknown: both in the playbook to regenerate both",
                                  action=self.name, resource_id=account_id)
            keys = _KEY_NAMES
        elif params.key == "used" and ev.key is not None:
            keys = (ev.key,)
        elif params.key in ("Key1", "Key2"):
            keys = ("Key1",) if params.key == "Key1" else ("Key2",)
        else:
            keys = _KEY_NAMES
        where = (f"stored as a new version of secret {params.key_vault.secret_name} in {params.key_vault.vault_url}"
                 if params.key_vault else "stored nowhere (read it with listKeys for the clients that need it)")
        changes = [Change(action=self.name, resource_id=f"{account_id}/regenerateKey", operation="invoke",
                          before=None, after={"keyName": k},
                          note=f"regenerate {k} of AI services account {name}; IRREVERSIBLE: the old {k} stops "
                               f"working at once, every client still using it gets 401; the new key is {where}")
                   for k in keys]
        if params.key_vault is not None:
            kv = params.key_vault
            changes.append(Change(
                action=self.name, resource_id=f"{kv.vault_url}/secrets/{kv.secret_name}", operation="update",
                before=None,
                after={"value": REDACTED.replace("regenerateCredential", "regenerateKey"), "contentType": "text/plain",
                       "source": {"account": account_id, "key": keys[-1]},
                       "tags": {"ai-account": name, "ai-key": keys[-1], "set-by": "remediator"}},
                note=f"store the new {keys[-1]} of {name} as secret {kv.secret_name} (new version)"))
        return changes

    def grant_scope(self, change: Change) -> str:
        if change.resource_id.lower().startswith("https://"):
            return self._account_of(change)  # the vault write reads the new key with listKeys on the account
        return super().grant_scope(change)

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        if change.resource_id.lower().startswith("https://"):
            return self._store(clients, change)
        account, key = self._target(change)
        name = ids.parse(account).name
        try:
            before = _keys(clients, account).get(key)
            out = write(clients, "POST", account, API_VERSION, action="regenerateKey", body={"keyName": key})
        except AzureError as e:
            raise ActionError(f"regenerating {key} of account {name} failed: {http_error_line(e)}", action=self.name,
                              resource_id=change.resource_id) from None
        after = _key_values(out).get(key)
        del out
        if after is None:
            raise ActionError(f"regenerateKey returned no {key}", action=self.name, resource_id=change.resource_id)
        receipt = _Receipt(before=fingerprint(before) if before else "", after=fingerprint(after))
        del before, after
        _remember(account, key, receipt)
        log.info("regenerated %s of AI services account %s (%s -> %s)", key, name, receipt.before or "?", receipt.after)
        return ApplyResult(change=change, response={"keyName": key, "fingerprint_before": receipt.before,
                                                    "fingerprint_after": receipt.after},
                           detail=f"account {name}: {key} regenerated ({receipt.before or '?'} -> {receipt.after})")

    def _store(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        vault_url, secret = self._secret_target(change)
        account = self._account_of(change)
        key = str(get_path(change.after, "source.key") or "")
        try:
            value = _keys(clients, account).get(key)
        except AzureError as e:
            raise ActionError(f"listing the keys of {ids.parse(account).name} failed: {http_error_line(e)}",
                              action=self.name, resource_id=account) from None
        if value is None:
            raise ActionError(f"listKeys returned no {key}", action=self.name, resource_id=account)
        tags = {str(k): str(v) for k, v in ((change.after or {}).get("tags") or {}).items()}
        failure: BaseException | None = None
        version = "?"
        try:
            stored = clients.secrets(vault_url).set_secret(secret, value, content_type="text/plain", tags=tags)
            version = str(getattr(getattr(stored, "properties", None), "version", None) or "?")
            del stored
        except AzureError as e:
            failure = e
        fp = fingerprint(value)
        del value
        if failure is not None:
            error = ActionError(f"setting secret {secret} in {vault_url} failed: {http_error_line(failure)}",
                                action=self.name, resource_id=change.resource_id)
            del failure
            raise error
        return ApplyResult(change=change, response={"secret": secret, "version": version, "fingerprint": fp},
                           detail=f"secret {secret} in {vault_url}: new version {version} ({fp})")

    def verify(self, state: StateReader, change: Change) -> str | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError  # noqa: PLC0415

        from remediator.azure.reader import LiveState  # noqa: PLC0415

        if not isinstance(state, LiveState):
            return "a key regeneration can only be verified against live Azure (listKeys)"
        if change.resource_id.lower().startswith("https://"):
            vault_url, secret = self._secret_target(change)
            account = self._account_of(change)
            key = str(get_path(change.after, "source.key") or "")
            try:
                current = _keys(state.clients, account).get(key)
                stored = state.clients.secrets(vault_url).get_secret(secret).value
                same = None not in (current, stored) and fingerprint(current or "") == fingerprint(stored or "")
                del current, stored
            except ResourceNotFoundError:
                return f"secret {secret} does not exist in {vault_url}"
            except AzureError:
                return f"secret {secret} could not be read back"
            return None if same else f"secret {secret} does not hold the account's current {key}"
        account, key = self._target(change)
        receipt = _receipt(account, key)
        if receipt is None:
            return f"no regeneration receipt for {key} in this process: apply and verify must run together"
        try:
            now = _keys(state.clients, account).get(key)
        except AzureError:
            return f"listKeys of {ids.parse(account).name} failed"
        current = fingerprint(now) if now else ""
        del now
        if not receipt.before:
            return f"listKeys did not show {key} before the regeneration: cannot verify it"
        if current == receipt.before:
            return f"{key} still has the value it had before ({current})"
        return None

    def _target(self, change: Change) -> tuple[str, Literal["Key1", "Key2"]]:
        account, _, verb = change.resource_id.rstrip("/").rpartition("/")
        key = (change.after or {}).get("keyName")
        if verb.lower() == "regeneratekey":
            for k in _KEY_NAMES:
                if key == k:
                    return account, k
        raise ActionError("not a regenerateKey change", action=self.name, resource_id=change.resource_id)

    def _secret_target(self, change: Change) -> tuple[str, str]:
        vault, _, secret = change.resource_id.partition("/secrets/")
        if not vault.startswith("https://") or not secret or "/" in secret:
            raise ActionError("not a Key Vault secret change", action=self.name, resource_id=change.resource_id)
        return vault, secret

    def _account_of(self, change: Change) -> str:
        account = get_path(change.after, "source.account")
        if isinstance(account, str) and ids.type_key(ids.resource_type(account)) == ai.ACCOUNT_TYPE:
            return account
        raise ActionError("the Key Vault change does not name the account whose key it stores", action=self.name,
                          resource_id=change.resource_id)


__all__ = ["BlockPromptAttacks", "LimitDeploymentCapacity", "RegenerateKey", "alert_evidence", "deployment_of"]
