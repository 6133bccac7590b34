"""Managed disks and snapshots: Microsoft Entra ID for export and upload (``MANAGED_DISK``, ``SNAPSHOT``).

``disks.require-entra-data-access`` and ``snapshots.require-entra-data-access``
    ``dataAccessAuthMode: AzureActiveDirectory`` (Azure Policy Modify c3921d55-b741-4d16-8d56-7f16e99e6892
    sets that value on disks; ``DiskUpdateProperties`` / ``SnapshotUpdateProperties`` of disk.json and
    snapshot.json, DiskRP stable 2024-03-02, take it; an absent value means ``None``, a SAS URL alone
    suffices). A SAS from ``grant-access`` then also needs an Entra token with the Data Operator for Managed
    Disks role (disks-enable-azure-ad-auth.md). Disks_Update / Snapshots_Update, long-running PATCHes.

Both reversible.
"""

from __future__ import annotations

from remediator.actions.base import Example, register
from remediator.actions.profiles import MANAGED_DISK, SNAPSHOT
from remediator.actions.properties import NoParams, PropertyAction, Setting

_MODE = (Setting("properties.dataAccessAuthMode", "AzureActiveDirectory", absent="None"),)
_BREAKS = ("downloads and uploads with a grant-access SAS URL alone fail (azcopy, scripts, Storage Explorer "
           "without sign-in); they also need a Microsoft Entra token with Data Operator for Managed Disks")


@register
class RequireEntraDiskDataAccess(PropertyAction[NoParams]):
    """Set dataAccessAuthMode to AzureActiveDirectory: exporting or uploading the disk needs Entra ID too."""

    name = "disks.require-entra-data-access"
    profile = MANAGED_DISK
    settings = _MODE
    breaks = _BREAKS
    example = Example("Model-weight disks can be exported or uploaded only with Microsoft Entra ID.",
                      why="Protect your data with authentication requirements when exporting or uploading to a disk "
                          "or snapshot.",
                      policies=("c3921d55-b741-4d16-8d56-7f16e99e6892",))


@register
class RequireEntraSnapshotDataAccess(PropertyAction[NoParams]):
    """Set a snapshot's dataAccessAuthMode to AzureActiveDirectory: exporting it needs Entra ID too."""

    name = "snapshots.require-entra-data-access"
    profile = SNAPSHOT
    settings = _MODE
    breaks = _BREAKS
    example = Example("Snapshots of model weights can be exported only with Microsoft Entra ID.",
                      why="a custom definition (Azure Policy's c3921d55 covers disks only)",
                      policies=("/providers/Microsoft.Management/managementGroups/contoso/providers/"
                                "Microsoft.Authorization/policyDefinitions/snapshot-entra-data-access",))
