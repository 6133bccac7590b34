"""Azure File Sync (``Microsoft.StorageSync/storageSyncServices``): the service that syncs file shares to
on-premises servers, a path for training data and model files to leave the estate.

``storagesync.disable-public-network-access``
    ``incomingTrafficPolicy: AllowVirtualNetworksOnly`` (Azure Policy 21a8cd35-125e-4d13-b82d-2e19b7208bb7,
    Modify 0e07b2e9-6cd9-4c40-9ccb-52817b95133b, which sets exactly this): the service's public endpoint
    refuses registered servers, which then sync only through its private endpoints. A PATCH
    (StorageSyncServices_Update, storagesync/…/stable/2022-09-01) under remediator's custom role ``remediator
    Storage Sync Network Writer`` (``remediator.actions.custom_roles``: Azure File Sync Administrator also
    assigns roles and reads storage account keys). Reversible.
"""

from __future__ import annotations

from remediator.actions.base import Example, register
from remediator.actions.custom_roles import NeedsCustomRole
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams
from remediator.actions.profiles import STORAGE_SYNC_SERVICE
from remediator.actions.properties import Setting


@register
class DisablePublicNetworkAccess(NeedsCustomRole, PrivateEndpointsOnly[PublicAccessParams]):
    """Restrict an Azure File Sync service's incoming traffic to virtual networks (private endpoints)."""

    name = "storagesync.disable-public-network-access"
    profile = STORAGE_SYNC_SERVICE
    settings = (Setting("properties.incomingTrafficPolicy", "AllowVirtualNetworksOnly", absent="AllowAllTraffic"),)
    breaks = ("registered servers (Azure File Sync agents) that reach the service over the Internet stop syncing; "
              "they need a private endpoint of the service in a network they reach")
    example = Example("Azure File Sync services take traffic from private endpoints only.",
                      why="Public network access should be disabled for Azure File Sync",
                      policies=("21a8cd35-125e-4d13-b82d-2e19b7208bb7", "0e07b2e9-6cd9-4c40-9ccb-52817b95133b"),
                      params="{refuse_if_everyone_cut_off: true}")
