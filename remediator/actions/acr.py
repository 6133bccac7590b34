"""Container registry actions, on the ``CONTAINER_REGISTRY`` profile.

``acr.disable-admin-user`` and ``acr.disable-anonymous-pull`` (declarations)
    ``adminUserEnabled: false`` (Azure Policy dc921057-6b28-4fbe-9b83-f7bec05db6c2, "Container
    registries should have local admin account disabled") and ``anonymousPullEnabled: false``
    (Azure Policy 9f2dea28-e834-476c-99c5-3507b4728395). Reversible.
``acr.restrict-network-access`` (the firewall family, ``remediator.actions.firewall``)
    Network rule set default Deny or public network access Disabled behind private endpoints, Premium
    only (Azure Policy d0793b48-0edc-4296-a390-4c75d1bdfd71). Reversible.
``acr.rotate-credentials`` (special case)
    Regenerates the admin user's ``password2`` then ``password`` (two ``invoke`` Changes on
    ``<registry>/regenerateCredential``), and optionally stores the new ``password`` in a Key Vault
    secret (a third Change). A registry whose admin user is disabled has no credentials to rotate:
    no changes. Not reversible (old passwords are gone by design).

SKUs (MicrosoftDocs/azure-docs ``articles/container-registry/``): network rules ("Configure public IP
network rules", ``container-registry-access-selected-networks.md``) and disabling public network access
behind private endpoints (``container-registry-private-link.md``) are Premium features; anonymous pull
(``anonymous-pull-access.md``) exists in Standard and Premium, and a Basic registry cannot have it on,
so turning it off needs no SKU check.

Secrets. No password is ever put in a Change, an ``ApplyResult``, a log record or an exception
message. The plan never reads credentials; a Change's ``after`` for the Key Vault write shows
``<new password from regenerateCredential (redacted)>``. ``apply`` receives passwords from the SDK,
keeps them in local variables only, passes the value to Key Vault and reports only a short
fingerprint (the first 12 hex digits of its SHA-256: 48 bits of a hash of a ~190-bit random value,
which identifies a password without revealing anything usable about it).

Verifying a rotation soundly. A rotation is only checkable against the value it replaced, and
that value is a secret that the read-only plan never sees. So ``apply`` reads ``listCredentials``
just before the POST, and keeps a *receipt* (registry, password name, fingerprint before,
fingerprint after) in process memory. ``verify`` (run by the engine in the same process right after
``apply``) reads ``listCredentials`` again through the live reader's clients and passes when the
current fingerprint differs from the one before the rotation. Without a receipt (another process,
or saved offline state) it reports that the rotation cannot be verified rather than passing. The
Key Vault Change is verified by reading the secret back and comparing its fingerprint with the
registry's current ``password`` fingerprint (stateless).

Roles. The profile's role (``remediator.actions.profiles``) also holds
``registries/listCredentials/action`` and ``registries/regenerateCredential/action``. Writing the Key
Vault secret is a data action (``Microsoft.KeyVault/vaults/secrets/setSecret/action``, and
``getSecret/action`` to verify) on a different resource, the vault: it needs Key Vault Secrets Officer
(b86a8fe4-44ce-4948-aee5-eccb2c155cd7) on that vault (or that secret), which a per-registry grant
cannot provide; the deployment grants it separately.

Why the data plane for Key Vault: the management-plane ``Microsoft.KeyVault/vaults/secrets`` PUT is
documented as "intended for internal use in ARM deployments. Users should use the data-plane REST
service for interaction with vault secrets" (Azure SDK docs for the KeyVault management Secrets
operations), and it would need another SDK. ``SecretClient`` is used through
``ArmClients.secrets(vault_url)``; tests reach FakeArm's vault through ``RedirectTransport``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import field_validator

from remediator import ids
from remediator.actions.base import Action, ApplyResult, Example, Params, PlanContext, register
from remediator.actions.change import Change
from remediator.actions.firewall import Firewall, FirewallAction, TrustedServicesParams
from remediator.actions.profiles import CONTAINER_REGISTRY
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.azure.state import StateReader
from remediator.checks import params as checks
from remediator.errors import ActionError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

REGISTRY_TYPE = CONTAINER_REGISTRY.type
REGENERATE = "regenerateCredential"
REDACTED = "<new password from regenerateCredential (redacted)>"
PasswordName = Literal["password", "password2"]
ROTATION_ORDER: tuple[PasswordName, ...] = ("password2", "password")


def fingerprint(secret: str) -> str:
    """``sha256:<12 hex>`` of a secret: enough to tell two passwords apart, useless to an attacker."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def _registry_parts(resource_id: str) -> tuple[str, str, str]:
    rid = ids.parse(resource_id)
    if ids.type_key(rid.type) != ids.type_key(REGISTRY_TYPE) or not rid.subscription_id or \
            not rid.resource_group or len(rid.names) != 1:
        raise ActionError(f"{resource_id}: not a container registry id")
    return rid.subscription_id, rid.resource_group, rid.names[0]


def _arm_error(action: str, what: str, resource_id: str, exc: BaseException) -> ActionError:
    from remediator.azure.reader import http_error_line  # noqa: PLC0415

    return ActionError(f"{what} failed: {http_error_line(exc)}", action=action, resource_id=resource_id)


def _current_passwords(clients: ArmClients, registry_id: str) -> dict[str, str]:
    """``{name: value}`` from listCredentials. The caller must never log or return the values."""
    sub, rg, name = _registry_parts(registry_id)
    result = clients.containerregistry(sub).registries.list_credentials(rg, name)
    return _passwords_of(result)


def _passwords_of(result: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in getattr(result, "passwords", None) or []:
        pname, value = getattr(item, "name", None), getattr(item, "value", None)
        pname = getattr(pname, "value", pname)  # a PasswordName enum member or a plain string
        if isinstance(pname, str) and isinstance(value, str):
            out[pname] = value
    return out


# --- declarations: acr.disable-admin-user, acr.disable-anonymous-pull, acr.restrict-network-access ---


@register
class DisableAdminUser(PropertyAction[NoParams]):
    """Set adminUserEnabled to false: no shared admin account (two passwords) on the registry."""

    name = "acr.disable-admin-user"
    profile = CONTAINER_REGISTRY
    settings = (Setting("properties.adminUserEnabled", False, absent=False),)
    breaks = "the admin user's two passwords stop working (docker login with them, pull secrets that hold them)"
    example = Example("Registries must not have the shared admin account enabled; use Entra identities.",
                      why="Container registries should have local admin account disabled",
                      policies=("dc921057-6b28-4fbe-9b83-f7bec05db6c2",))


@register
class DisableAnonymousPull(PropertyAction[NoParams]):
    """Set anonymousPullEnabled to false: no image pulls without a login."""

    name = "acr.disable-anonymous-pull"
    profile = CONTAINER_REGISTRY
    settings = (Setting("properties.anonymousPullEnabled", False, absent=False),)
    breaks = ("pulls without docker login (public consumers, clusters without a pull secret or identity) fail "
              "with 401 unauthorized")
    example = Example("Registries serving model images must not serve them to anyone without a login.",
                      policies=("9f2dea28-e834-476c-99c5-3507b4728395",))


class RestrictNetworkAccessParams(TrustedServicesParams):
    # A registry's NetworkRuleSet has defaultAction and ipRules only (azure-mgmt-containerregistry 15,
    # 2025-11-01: models.NetworkRuleSet; RegistryGet.json), rules {"action": "Allow", "value"}; the bypass is
    # the registry's networkRuleBypassOptions (AzureServices | None). /31: not documented here, refused as on
    # Storage (see remediator.actions.firewall). Premium only (container-registry-access-selected-networks.md).
    firewall: ClassVar[Firewall] = Firewall(
        rules="properties.networkRuleSet", open={"defaultAction": "Allow", "ipRules": []},
        bypass="properties.networkRuleBypassOptions", rule_action="Allow", subnet_rules=False, sku="Premium")


@register
class RestrictNetworkAccess(FirewallAction[RestrictNetworkAccessParams]):
    """Close a Premium registry: networkRuleSet default Deny (IP rules kept, added), or private endpoints only."""

    name = "acr.restrict-network-access"
    profile = CONTAINER_REGISTRY
    breaks = ("docker pull/push from outside the allowed networks (or, with public access disabled, outside "
              "the private endpoints) fails with 403: CI runners, clusters and developers elsewhere")
    example = Example("Registries serving model images must not accept pulls from any network.",
                      recommendations=("9b828565-a0ed-61c2-6bf3-1afc99a9b2ca",),
                      policies=("d0793b48-0edc-4296-a390-4c75d1bdfd71",),
                      params="{mode: auto, allowed_ip_ranges: [203.0.113.0/24]}")


# --- acr.rotate-credentials ------------------------------------------------------------------------


class KeyVaultTarget(Params):
    vault_url: str
    """The vault's URL, e.g. https://kv-ops.vault.azure.net"""
    secret_name: str
    """The secret to store the new admin 'password' in (a new version)."""

    _valid_url = field_validator("vault_url")(checks.vault_url)
    _valid_name = field_validator("secret_name")(checks.secret_name)


class RotateCredentialsParams(Params):
    key_vault: KeyVaultTarget | None = None
    """Where to store the new admin 'password' (Key Vault data plane; the executor needs Key Vault Secrets Officer on
    that vault). Omit to only rotate."""


@dataclass(frozen=True, slots=True)
class _Receipt:
    before: str  # fingerprint before the rotation
    after: str  # fingerprint returned by regenerateCredential


_RECEIPTS: dict[tuple[str, str], _Receipt] = {}
_RECEIPTS_LOCK = threading.Lock()
_MAX_RECEIPTS = 1024


def _remember(registry_id: str, password: str, receipt: _Receipt) -> None:
    with _RECEIPTS_LOCK:
        if len(_RECEIPTS) >= _MAX_RECEIPTS:
            _RECEIPTS.pop(next(iter(_RECEIPTS)))
        _RECEIPTS[(ids.key(registry_id), password)] = receipt


def _receipt(registry_id: str, password: str) -> _Receipt | None:
    with _RECEIPTS_LOCK:
        return _RECEIPTS.get((ids.key(registry_id), password))


@register
class RotateCredentials(Action[RotateCredentialsParams]):
    """Regenerate both admin passwords of a registry (password2, then password); optionally store
    the new password in Key Vault.

    ```yaml
    name: acr-rotate-admin-credentials
    description: After suspicious credential access, rotate the registry admin passwords.
    match:
      alerts: [ARM_AnomalousOperation.CredentialAccess]
      resource_types: [Microsoft.ContainerRegistry/registries]
    risk: high
    approval: {mode: slack, approvers: [security-oncall], quorum: 2, expires_after: 4h}
    steps:
      - action: acr.rotate-credentials
        params:
          key_vault: {vault_url: https://kv-ops.vault.azure.net, secret_name: acr-admin}
    ```
    """

    name = "acr.rotate-credentials"
    summary = "Regenerate the admin user's password2 and password; optionally store the new one in Key Vault"
    profile = CONTAINER_REGISTRY
    permissions = (
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/listCredentials/action",
        "Microsoft.ContainerRegistry/registries/regenerateCredential/action",
        # only with key_vault, granted on the vault (Key Vault Secrets Officer; see the module docstring)
        "Microsoft.KeyVault/vaults/secrets/setSecret/action",
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    )
    reversible = False
    verify_under_grant = True  # listCredentials needs the grant's role

    def plan(self, ctx: PlanContext, params: RotateCredentialsParams) -> list[Change]:
        registry_id, doc = self.document(ctx, ctx.finding.resource_id)
        if get_path(doc, "properties.adminUserEnabled") is not True:
            return []  # no admin user, no admin passwords: nothing to rotate
        name = ids.parse(registry_id).name
        changes = [
            Change(action=self.name, resource_id=f"{registry_id}/{REGENERATE}", operation="invoke",
                   before=None, after={"name": which}, note=f"regenerate admin {which} of registry {name}")
            for which in ROTATION_ORDER
        ]
        if params.key_vault is not None:
            kv = params.key_vault
            changes.append(Change(
                action=self.name, resource_id=f"{kv.vault_url}/secrets/{kv.secret_name}", operation="update",
                before=None,
                after={"value": REDACTED, "contentType": "text/plain",
                       "source": {"registry": registry_id, "credential": "password"},
                       "tags": {"acr-registry": name, "acr-credential": "password", "set-by": "remediator"}},
                note=f"store the new admin password of {name} as secret {kv.secret_name} (new version)"))
        return changes

    def grant_scope(self, change: Change) -> str:
        """The Key Vault write reads the new password with ``listCredentials`` on the registry: its
        grant is this action's role on the registry (the vault write itself is the deployment's role
        on the vault)."""
        if change.resource_id.lower().startswith("https://"):
            return self._registry_of(change)
        return super().grant_scope(change)

    # -- apply --------------------------------------------------------------------------------------
    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        if change.resource_id.lower().startswith("https://"):
            return self._store(clients, change)
        return self._regenerate(clients, change)

    def _regenerate(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415
        from azure.mgmt.containerregistry.models import RegenerateCredentialParameters  # noqa: PLC0415

        registry_id, which = self._target(change)
        sub, rg, name = _registry_parts(registry_id)
        try:
            before = _current_passwords(clients, registry_id).get(which)
            result = clients.containerregistry(sub).registries.regenerate_credential(
                rg, name, RegenerateCredentialParameters(name=which))
        except HttpResponseError as e:
            raise _arm_error(self.name, f"regenerating {which} of registry {name}", change.resource_id,
                             e) from None
        after = _passwords_of(result).get(which)
        del result
        if after is None:
            raise ActionError(f"regenerateCredential returned no {which}", action=self.name,
                              resource_id=change.resource_id)
        receipt = _Receipt(before=fingerprint(before) if before is not None else "", after=fingerprint(after))
        del before, after
        _remember(registry_id, which, receipt)
        log.info("regenerated %s of registry %s (%s -> %s)", which, name, receipt.before or "?",
                 receipt.after)
        return ApplyResult(
            change=change,
            response={"name": which, "fingerprint_before": receipt.before,
                      "fingerprint_after": receipt.after},
            detail=f"registry {name}: {which} regenerated ({receipt.before or '?'} -> {receipt.after})")

    def _store(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        vault_url, secret_name = self._secret_target(change)
        registry_id = self._registry_of(change)
        registry = ids.parse(registry_id).name
        try:
            value = _current_passwords(clients, registry_id).get("password")
        except AzureError as e:
            raise _arm_error(self.name, f"listing credentials of registry {registry}", registry_id,
                             e) from None
        if value is None:
            raise ActionError("listCredentials returned no 'password'", action=self.name,
                              resource_id=registry_id)
        tags = {str(k): str(v) for k, v in ((change.after or {}).get("tags") or {}).items()}
        failure: BaseException | None = None
        version: str = "?"
        try:
            stored = clients.secrets(vault_url).set_secret(secret_name, value, content_type="text/plain",
                                                           tags=tags)
            version = str(getattr(getattr(stored, "properties", None), "version", None) or "?")
            del stored  # the response echoes the value
        except AzureError as e:
            failure = e
        fp = fingerprint(value)
        del value
        if failure is not None:
            # raised outside the except block: no __context__ chain back to the request that carried the
            # password, and the password is no longer a local of this frame
            error = _arm_error(self.name, f"setting secret {secret_name} in {vault_url}", change.resource_id,
                               failure)
            del failure
            raise error
        log.info("stored the admin password of registry %s in %s/secrets/%s (version %s, %s)", registry,
                 vault_url, secret_name, version, fp)
        return ApplyResult(change=change,
                           response={"secret": secret_name, "version": version, "fingerprint": fp},
                           detail=f"secret {secret_name} in {vault_url}: new version {version} ({fp})")

    # -- verify -------------------------------------------------------------------------------------
    def verify(self, state: StateReader, change: Change) -> str | None:
        from remediator.azure.reader import LiveState  # noqa: PLC0415

        if not isinstance(state, LiveState):
            return "a credential rotation can only be verified against live Azure (listCredentials)"
        if change.resource_id.lower().startswith("https://"):
            return self._verify_store(state, change)
        registry_id, which = self._target(change)
        doc = state.get(registry_id)
        if doc is None:
            return "the registry no longer exists"
        if get_path(doc, "properties.adminUserEnabled") is not True:
            return "the registry's admin user is disabled; its passwords no longer exist"
        receipt = _receipt(registry_id, which)
        if receipt is None:
            return f"no rotation receipt for {which} in this process: apply and verify must run together"
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        try:
            current = _current_passwords(state.clients, registry_id).get(which)
        except AzureError as e:
            raise _arm_error(self.name, "listCredentials", registry_id, e) from None
        now = fingerprint(current) if current is not None else ""
        del current
        if not now:
            return f"listCredentials shows no {which}"
        if not receipt.before:
            return f"listCredentials did not show {which} before the rotation: cannot verify it"
        if now == receipt.before:
            return f"{which} still has the value it had before the rotation ({now})"
        return None

    def _verify_store(self, state: Any, change: Change) -> str | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError  # noqa: PLC0415

        vault_url, secret_name = self._secret_target(change)
        registry_id = self._registry_of(change)
        failure: BaseException | None = None
        same = False
        try:
            password = _current_passwords(state.clients, registry_id).get("password")
            stored = state.clients.secrets(vault_url).get_secret(secret_name).value
            same = None not in (password, stored) and fingerprint(password or "") == fingerprint(stored or "")
            del password, stored
        except ResourceNotFoundError:
            return f"secret {secret_name} does not exist in {vault_url}"
        except AzureError as e:
            failure = e
        if failure is not None:
            error = _arm_error(self.name, f"reading back secret {secret_name}", change.resource_id, failure)
            del failure
            raise error
        return None if same else f"secret {secret_name} does not hold the registry's current admin password"

    # -- helpers ------------------------------------------------------------------------------------
    def _target(self, change: Change) -> tuple[str, PasswordName]:
        registry_id, _, verb = change.resource_id.rstrip("/").rpartition("/")
        which = (change.after or {}).get("name")
        for name in ROTATION_ORDER:
            if verb.lower() == REGENERATE.lower() and which == name:
                return registry_id, name
        raise ActionError("not a regenerateCredential change", action=self.name,
                          resource_id=change.resource_id)

    def _secret_target(self, change: Change) -> tuple[str, str]:
        parts = urlsplit(change.resource_id)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or len(segments) != 2 or segments[0] != "secrets":
            raise ActionError("not a Key Vault secret change", action=self.name,
                              resource_id=change.resource_id)
        return f"https://{parts.netloc}", segments[1]

    def _registry_of(self, change: Change) -> str:
        """The registry whose password a Key Vault change stores (``after.source.registry``)."""
        source = (change.after or {}).get("source")
        rid = source.get("registry") if isinstance(source, Mapping) else None
        if isinstance(rid, str) and ids.type_key(ids.resource_type(rid)) == ids.type_key(REGISTRY_TYPE):
            return rid
        raise ActionError("the Key Vault change does not name the registry it stores a password of",
                          action=self.name, resource_id=change.resource_id)
