"""Managed disk and snapshot actions: model weights leave a subscription as a disk export (a SAS
URL on the disk or snapshot) long before anyone copies a blob.

``disks.revoke-export-access`` / ``snapshots.revoke-export-access`` (special case: a POST)
    A disk or snapshot whose ``properties.diskState`` is ``ActiveSAS`` or ``ActiveSASFrozen`` has an
    export URL handed out: a leak in progress. The plan is one ``invoke`` of
    ``POST …/endGetAccess`` (``Disks_RevokeAccess``/``Snapshots_RevokeAccess``: a long-running
    operation, 200 or 202 + ``Location``; DiskRP ``stable/2024-03-02/examples/diskExamples/
    Disk_EndGetAccess.json``), polled to completion. Afterwards ``diskState`` is no longer an
    ActiveSAS state (Unattached, Reserved or Frozen). **Irreversible**: the SAS URL is gone; a new
    export (``beginGetAccess``) would issue a different URL, and nobody should re-open it on purpose.
``disks.restrict-network-access`` / ``snapshots.restrict-network-access`` (declarations)
    ``networkAccessPolicy: DenyAll`` (or ``AllowPrivate`` with a ``diskAccessId``) and
    ``publicNetworkAccess: Disabled`` (Azure Policy 8405fdab-1faf-48aa-b702-999c9c172094, "Managed
    disks should disable public network access", is satisfied by either). ``Disks_Update`` is a
    long-running PATCH (202 + ``Location``, then 200; DiskRP ``Disk_Update_RemoveDiskAccess.json``)
    that the generic client polls. Reversible.
``disks.enable-customer-managed-key`` (declaration with a refusal)
    ``encryption.type: EncryptionAtRestWithCustomerKey`` (or ``…PlatformAndCustomerKeys``) with the
    given disk encryption set. Azure changes a disk's encryption only when the disk is unattached or
    its VM is deallocated ("you must deallocate the VM or detach the disk", MicrosoftDocs/azure-docs
    ``articles/virtual-machines/disks-enable-customer-managed-keys-portal.md``); otherwise the plan
    refuses with the reason and writes nothing. ``diskState`` decides (Attached = running VM,
    Reserved = deallocated VM, Unattached); when the owning VM's document is in the state with an
    ``instanceView``, its ``PowerState/*`` is checked too; when it is not, the note carries a
    warning naming what was not checked. Reversible (under the same conditions).

Profiles (``remediator.actions.profiles``): ``MANAGED_DISK`` (Virtual Machine Contributor) and
``SNAPSHOT`` (Disk Snapshot Contributor), DiskRP 2024-03-02 through azure-mgmt-resource's generic client
(azure-mgmt-compute is a very large package for three calls; see requirements.txt). Linking a disk
encryption set also needs ``Microsoft.Compute/diskEncryptionSets/read`` on the set, a different resource
that a per-disk grant cannot cover: the deployment grants Reader on the sets the playbooks name.
``disks/endGetAccess/action`` is in no narrow built-in role: the revoke action takes Avere Contributor
(``AVERE_CONTRIBUTOR``, see the profiles module for why).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator, model_validator

from remediator import ids
from remediator.actions.base import Action, ApplyResult, Example, Params, PlanContext, register, valid_id
from remediator.actions.change import Change
from remediator.actions.profiles import AVERE_CONTRIBUTOR, MANAGED_DISK, SNAPSHOT
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.azure.lro import post_action
from remediator.azure.state import StateReader
from remediator.errors import ActionError, StateError

VM_TYPE = "Microsoft.Compute/virtualMachines"

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

END_GET_ACCESS = "endGetAccess"
ACTIVE_SAS = frozenset({"ActiveSAS", "ActiveSASFrozen"})

_CUSTOM = "/subscriptions/1b2c3d4e/providers/Microsoft.Authorization/policyDefinitions"
_CUSTOM_POLICY = "no built-in policy or Defender recommendation covers snapshots: a custom definition of yours"
_TWO_APPROVERS = "{mode: slack, approvers: [security-oncall, security-leads], quorum: 2, expires_after: 2h}"
_IRREVERSIBLE_SAS = ("the export SAS URL is revoked for good; a new export (beginGetAccess) would issue a "
                     "different URL, and re-opening an export is not a fix anyone should automate")


def _kind(resource_id: str) -> str:
    return "snapshot" if ids.type_key(ids.resource_type(resource_id)) == ids.type_key(SNAPSHOT.type) else "disk"


# --- revoke export access (a POST action) ----------------------------------------------------------


class _RevokeExportAccess(Action[NoParams]):
    """Base of the two revoke actions (not registered)."""

    reversible = False

    def plan(self, ctx: PlanContext, params: NoParams) -> list[Change]:
        resource_id, doc = self.document(ctx, ctx.finding.resource_id)
        state = str(get_path(doc, "properties.diskState", ""))
        if state not in ACTIVE_SAS:
            return []
        kind = _kind(resource_id)
        note = (f"end the active export of {kind} {ids.parse(resource_id).name} (diskState {state}): its SAS URL "
                f"stops working; can break: a copy or download in progress through that URL fails; "
                f"IRREVERSIBLE: {_IRREVERSIBLE_SAS}")
        # ``after`` is the request body, and endGetAccess takes none; ``before`` is the export state the
        # approval binds to (another export state at apply time is a different plan)
        return [Change(action=self.name, resource_id=f"{resource_id}/{END_GET_ACCESS}", operation="invoke",
                       before={"properties": {"diskState": state}}, after={}, note=note)]

    def _target(self, change: Change) -> str:
        resource_id, _, verb = change.resource_id.rstrip("/").rpartition("/")
        if verb.lower() != END_GET_ACCESS.lower() or change.operation != "invoke":
            raise ActionError("not an endGetAccess change", action=self.name, resource_id=change.resource_id)
        return resource_id

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        resource_id = self._target(change)
        try:
            post_action(clients, resource_id, END_GET_ACCESS, self.api_version)
        except HttpResponseError as e:
            raise ActionError(f"POST endGetAccess failed: {http_error_line(e)}", action=self.name,
                              resource_id=resource_id) from None
        except ActionError as e:
            raise ActionError(str(e.args[0]) if e.args else "endGetAccess failed", action=self.name,
                              resource_id=resource_id) from None
        log.info("ended the export SAS of %s", resource_id)
        return ApplyResult(change=change, detail=f"{_kind(resource_id)} {ids.parse(resource_id).name}: export SAS "
                                                 "revoked")

    def verify(self, state: StateReader, change: Change) -> str | None:
        resource_id = self._target(change)
        doc = state.get(resource_id)
        if doc is None:
            return f"{ids.parse(resource_id).name} no longer exists"
        now = str(get_path(doc, "properties.diskState", ""))
        return f"diskState is still {now}" if now in ACTIVE_SAS else None

    def undo(self, change: Change) -> Change:
        raise ActionError(f"cannot be undone: {_IRREVERSIBLE_SAS}", action=self.name, resource_id=change.resource_id)

    def weighs(self, change: Change) -> str:
        return f"irreversible: {_IRREVERSIBLE_SAS}"


@register
class RevokeDiskExportAccess(_RevokeExportAccess):
    """End an active export of a managed disk: POST endGetAccess revokes its SAS URL (irreversible)."""

    name = "disks.revoke-export-access"
    profile = MANAGED_DISK
    permissions = ("Microsoft.Compute/disks/read", "Microsoft.Compute/disks/endGetAccess/action")
    role = AVERE_CONTRIBUTOR
    example = Example("A managed disk with an active export SAS is a leak in progress; end it.",
                      policies=("8405fdab-1faf-48aa-b702-999c9c172094",), name="disk-revoke-export", risk="high",
                      approval=_TWO_APPROVERS)


@register
class RevokeSnapshotExportAccess(_RevokeExportAccess):
    """End an active export of a snapshot: POST endGetAccess revokes its SAS URL (irreversible)."""

    name = "snapshots.revoke-export-access"
    profile = SNAPSHOT
    permissions = ("Microsoft.Compute/snapshots/read", "Microsoft.Compute/snapshots/endGetAccess/action")
    example = Example("A snapshot with an active export SAS is a leak in progress; end it.", why=_CUSTOM_POLICY,
                      policies=(f"{_CUSTOM}/snapshot-export",), name="snapshot-revoke-export", risk="high",
                      approval=_TWO_APPROVERS)


# --- restrict network access (declarations) --------------------------------------------------------


class RestrictNetworkAccessParams(Params):
    network_access_policy: Literal["DenyAll", "AllowPrivate"] = "DenyAll"
    """DenyAll: no export or import over SAS from any network. AllowPrivate: only through the private endpoints of
    disk_access_id."""
    disk_access_id: str | None = None
    """The Microsoft.Compute/diskAccesses resource (with a private endpoint) for AllowPrivate."""

    @field_validator("disk_access_id")
    @classmethod
    def _valid_access(cls, value: str | None) -> str | None:
        return None if value is None else valid_id(value, "Microsoft.Compute/diskAccesses", "disk access")

    @model_validator(mode="after")
    def _access_for_private(self) -> RestrictNetworkAccessParams:
        if self.network_access_policy == "AllowPrivate" and not self.disk_access_id:
            raise ValueError("network_access_policy AllowPrivate needs disk_access_id")
        if self.network_access_policy == "DenyAll" and self.disk_access_id:
            raise ValueError("disk_access_id is only used with network_access_policy AllowPrivate")
        return self


class _RestrictNetworkAccess(PropertyAction[RestrictNetworkAccessParams]):
    """Base of the two restrict-network actions (not registered)."""

    settings = (
        Setting("properties.networkAccessPolicy", "DenyAll", absent="AllowAll"),
        Setting("properties.diskAccessId", None, absent=None),
        Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),
    )
    breaks = ("exports and imports over a SAS URL (az disk grant-access, AzCopy of a disk, Backup copies) from "
              "the Internet stop; with DenyAll from every network; VMs using the disk are not affected")

    def values(self, ctx: PlanContext, params: RestrictNetworkAccessParams,
               doc: Mapping[str, Any]) -> Mapping[str, Any]:
        out: dict[str, Any] = {"properties.networkAccessPolicy": params.network_access_policy,
                               "properties.publicNetworkAccess": "Disabled"}
        if params.disk_access_id:
            current = get_path(doc, "properties.diskAccessId")
            same = isinstance(current, str) and ids.same(current, params.disk_access_id)
            out["properties.diskAccessId"] = current if same else params.disk_access_id
        return out

    def notes(self, ctx: PlanContext, params: RestrictNetworkAccessParams, doc: Mapping[str, Any]) -> Sequence[str]:
        state = str(get_path(doc, "properties.diskState", ""))
        if state in ACTIVE_SAS:
            return (f"diskState is {state}: an export URL is already out; end it too "
                    f"({'snapshots' if _kind(str(doc.get('id', ''))) == 'snapshot' else 'disks'}"
                    ".revoke-export-access)",)
        return ()


@register
class RestrictDiskNetworkAccess(_RestrictNetworkAccess):
    """Stop a managed disk's export and import over the Internet (networkAccessPolicy, publicNetworkAccess)."""

    name = "disks.restrict-network-access"
    profile = MANAGED_DISK
    example = Example("Managed disks holding model weights must not be exportable from any network.",
                      policies=("8405fdab-1faf-48aa-b702-999c9c172094",), name="disk-restrict-network-access",
                      params="{network_access_policy: DenyAll}")


@register
class RestrictSnapshotNetworkAccess(_RestrictNetworkAccess):
    """Stop a snapshot's export and import over the Internet (networkAccessPolicy, publicNetworkAccess)."""

    name = "snapshots.restrict-network-access"
    profile = SNAPSHOT
    example = Example("Snapshots of model disks must not be exportable from any network.", why=_CUSTOM_POLICY,
                      policies=(f"{_CUSTOM}/snapshot-network",), name="snapshot-restrict-network-access")


# --- customer-managed key encryption ------------------------------------------------------------------


class EnableCustomerManagedKeyParams(Params):
    disk_encryption_set_id: str
    """The Microsoft.Compute/diskEncryptionSets resource whose Key Vault key encrypts the disk."""
    encryption_type: Literal["EncryptionAtRestWithCustomerKey", "EncryptionAtRestWithPlatformAndCustomerKeys"] = \
        "EncryptionAtRestWithCustomerKey"
    """Customer key only, or double encryption (platform and customer keys); the set's encryptionType must match."""

    @field_validator("disk_encryption_set_id")
    @classmethod
    def _valid_set(cls, value: str) -> str:
        return valid_id(value, "Microsoft.Compute/diskEncryptionSets", "disk encryption set")


def _power_state(vm: Mapping[str, Any] | None) -> str | None:
    """``PowerState/<x>`` of a VM document with an instanceView (``$expand=instanceView`` or the
    instanceView call), else None."""
    view = get_path(vm, "properties.instanceView") or (vm or {}).get("instanceView")
    statuses = view.get("statuses") if isinstance(view, Mapping) else None
    for status in statuses if isinstance(statuses, list) else []:
        code = status.get("code") if isinstance(status, Mapping) else None
        if isinstance(code, str) and code.lower().startswith("powerstate/"):
            return code.split("/", 1)[1]
    return None


@register
class EnableCustomerManagedKey(PropertyAction[EnableCustomerManagedKeyParams]):
    """Encrypt an unattached (or deallocated VM's) managed disk with a customer-managed key."""

    name = "disks.enable-customer-managed-key"
    profile = MANAGED_DISK
    # Azure Policy 702dd420 also reports the VM: a VM finding plans each of its managed disks (refused, disk by
    # disk, while the VM is not deallocated). Scale sets and images are left out (a scale set's disks follow its
    # model and an instance reimage; an image is immutable and is re-created to change its encryption).
    resource_types = (MANAGED_DISK.type, VM_TYPE)
    finding_only = (VM_TYPE,)
    # on the disk encryption set, granted separately (see the module docstring)
    extra_permissions = ("Microsoft.Compute/diskEncryptionSets/read",)
    settings = (
        Setting("properties.encryption.type", "EncryptionAtRestWithCustomerKey",
                absent="EncryptionAtRestWithPlatformKey"),
        Setting("properties.encryption.diskEncryptionSetId", None, absent=None),
    )
    breaks = ("the disk becomes unreadable if the set's Key Vault key is disabled, deleted or its access "
              "revoked (the VM fails to start; keep purge protection on that vault)")
    example = Example("Disks holding model weights are encrypted with our key, not only the platform's.",
                      policies=("702dd420-7fcc-42c5-afe8-4026edd20fe0",), name="disk-enable-customer-managed-key",
                      params="{disk_encryption_set_id: /subscriptions/1b2c3d4e/resourceGroups/rg-keys/providers/"
                             "Microsoft.Compute/diskEncryptionSets/des-models}")

    def plan(self, ctx: PlanContext, params: EnableCustomerManagedKeyParams) -> list[Change]:
        if ids.type_key(ctx.finding.resource_type) != ids.type_key(VM_TYPE):
            return super().plan(ctx, params)
        vm = ctx.state.get(ctx.finding.resource_id)
        if vm is None:
            raise ActionError("VM not found", action=self.name, resource_id=ctx.finding.resource_id)
        storage = get_path(vm, "properties.storageProfile", {})
        disks = [get_path(storage, "osDisk.managedDisk.id")]
        data = storage.get("dataDisks") if isinstance(storage, Mapping) else None
        disks += [get_path(d, "managedDisk.id") for d in data if isinstance(d, Mapping)] if isinstance(data, list) \
            else []
        changes: list[Change] = []
        for disk in (d for d in disks if isinstance(d, str) and d):
            changes += self.plan_for(ctx, params, disk)
        return changes

    def values(self, ctx: PlanContext, params: EnableCustomerManagedKeyParams,
               doc: Mapping[str, Any]) -> Mapping[str, Any]:
        current = get_path(doc, "properties.encryption.diskEncryptionSetId")
        same = isinstance(current, str) and ids.same(current, params.disk_encryption_set_id)
        return {"properties.encryption.type": params.encryption_type,
                "properties.encryption.diskEncryptionSetId": current if same else params.disk_encryption_set_id}

    def _owner(self, doc: Mapping[str, Any]) -> str:
        owner = doc.get("managedBy")
        return owner if isinstance(owner, str) else ""

    def refusal(self, ctx: PlanContext, params: EnableCustomerManagedKeyParams, doc: Mapping[str, Any]) -> str | None:
        state = str(get_path(doc, "properties.diskState", ""))
        owner = self._owner(doc)
        vm_name = ids.parse(owner).name if owner else ""
        if state in ACTIVE_SAS:
            return f"the disk has an active export (diskState {state}); end it first (disks.revoke-export-access)"
        if state in ("ActiveUpload", "ReadyToUpload"):
            return f"the disk is being uploaded (diskState {state})"
        if state == "Attached":
            return (f"the disk is attached to running VM {vm_name or '(unknown)'}; Azure changes a disk's "
                    "encryption only when it is unattached or its VM is deallocated")
        if owner:
            power = _power_state(self._vm(ctx, owner))
            if power is not None and power.lower() != "deallocated":
                return (f"VM {vm_name} is {power}, not deallocated; Azure changes a disk's encryption only when it "
                        "is unattached or its VM is deallocated")
            if power is None and state not in ("Reserved", "Unattached"):
                return (f"the disk belongs to VM {vm_name} and neither its diskState nor the VM's power state "
                        "says it is deallocated (supply the VM with its instanceView in the state)")
        return None

    @staticmethod
    def _vm(ctx: PlanContext, vm_id: str) -> Mapping[str, Any] | None:
        try:
            return ctx.state.get(vm_id)
        except StateError:  # an unreadable VM is "not checked", said in the note
            return None

    def notes(self, ctx: PlanContext, params: EnableCustomerManagedKeyParams, doc: Mapping[str, Any]) -> Sequence[str]:
        owner = self._owner(doc)
        if owner and _power_state(self._vm(ctx, owner)) is None:
            return (f"warning: VM {ids.parse(owner).name} power state not checked (the state holds no instanceView "
                    f"of {owner}; supply it with GET …?$expand=instanceView); the disk's diskState "
                    f"{get_path(doc, 'properties.diskState', '(not set)')} was used",)
        return ()
