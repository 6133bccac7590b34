"""App Service Environments' cluster settings (``HOSTING_ENVIRONMENT``) and Azure File Sync (``STORAGE_SYNC``).

An App Service Environment keeps its hardening in ``clusterSettings``, a list of ``{name, value}``
(AppServiceEnvironments_Get.json shows ``clusterSettings: null``); AppServiceEnvironments_Update (PATCH) writes the
whole list, the other settings kept:

``ase.disable-tls10``  ``DisableTls1.0: 1`` (Azure Policy d6545c6b-dd9d-4265-91e6-0b451e2f1c50).
``ase.enable-internal-encryption``  ``InternalEncryption: true`` (fb74e86f-d351-4b8d-b034-93da7391c01f).
``ase.set-strongest-ciphers``  ``FrontEndSSLCipherSuiteOrder`` of the two suites 817dcf37-e83d-4999-a472-
    644eada2ea1e asks for, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 and TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.

Changing cluster settings makes the environment apply them to every front end (hours, with restarts).

``storagesync.restrict-to-private-endpoints``  ``incomingTrafficPolicy: AllowVirtualNetworksOnly`` on a Storage Sync
    Service (21a8cd35-125e-4d13-b82d-2e19b7208bb7, Modify 0e07b2e9-6cd9-4c40-9ccb-52817b95133b's value).

All reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.firewall import PublicAccessParams
from remediator.actions.private_endpoints import cut_off
from remediator.actions.profiles import HOSTING_ENVIRONMENT, STORAGE_SYNC
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

SETTINGS = "properties.clusterSettings"
_RESTART = ("the environment rolls the setting out to every front end and worker (hours; instances restart, "
            "in-flight requests can fail)")


class _ClusterSetting(PropertyAction[NoParams]):
    """One ``clusterSettings`` entry set to ``value`` (added when missing), the others kept."""

    setting: ClassVar[str]
    value: ClassVar[str]
    profile = HOSTING_ENVIRONMENT
    settings = (Setting(SETTINGS, None),)

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        have = get_path(doc, SETTINGS, [])
        entries = [dict(e) for e in have if isinstance(e, Mapping)] if isinstance(have, list) else []
        for entry in entries:
            if str(entry.get("name", "")).lower() == self.setting.lower():
                entry["value"] = self.value
                break
        else:
            entries.append({"name": self.setting, "value": self.value})
        return {SETTINGS: entries}


@register
class DisableTls10(_ClusterSetting):
    """Set the cluster setting DisableTls1.0 to 1: the environment's front ends refuse TLS 1.0 and 1.1."""

    name = "ase.disable-tls10"
    setting, value = "DisableTls1.0", "1"
    breaks = f"clients that negotiate only TLS 1.0 or 1.1 cannot connect to the environment's apps; {_RESTART}"
    example = Example("App Service Environments refuse TLS 1.0 and 1.1.",
                      why="App Service Environment should have TLS 1.0 and 1.1 disabled",
                      policies=("d6545c6b-dd9d-4265-91e6-0b451e2f1c50",))


@register
class EnableInternalEncryption(_ClusterSetting):
    """Set the cluster setting InternalEncryption to true: traffic and temp files inside the environment are
    encrypted."""

    name = "ase.enable-internal-encryption"
    setting, value = "InternalEncryption", "true"
    breaks = f"nothing for clients; {_RESTART}"
    example = Example("App Service Environments encrypt their internal traffic.",
                      why="App Service Environment should have internal encryption enabled",
                      policies=("fb74e86f-d351-4b8d-b034-93da7391c01f",))


@register
class SetStrongestCiphers(_ClusterSetting):
    """Set the cluster setting FrontEndSSLCipherSuiteOrder to the two strongest suites."""

    name = "ase.set-strongest-ciphers"
    setting, value = ("FrontEndSSLCipherSuiteOrder",
                      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    breaks = f"clients that support neither ECDHE-RSA AES-GCM suite cannot connect; {_RESTART}"
    example = Example("App Service Environments offer the strongest TLS cipher suites only.",
                      why="App Service Environment should be configured with strongest TLS Cipher suites",
                      policies=("817dcf37-e83d-4999-a472-644eada2ea1e",))


@register
class RestrictSyncToPrivateEndpoints(PropertyAction[PublicAccessParams]):
    """Set incomingTrafficPolicy to AllowVirtualNetworksOnly: servers sync over private endpoints only."""

    name = "storagesync.restrict-to-private-endpoints"
    profile = STORAGE_SYNC
    settings = (Setting("properties.incomingTrafficPolicy", "AllowVirtualNetworksOnly", absent="AllowAllTraffic"),)
    breaks = "registered servers that reach the service over the Internet (not a private endpoint) stop syncing"
    example = Example("Azure File Sync takes traffic from private endpoints only.",
                      why="Public network access should be disabled for Azure File Sync",
                      policies=("21a8cd35-125e-4d13-b82d-2e19b7208bb7",), params="{refuse_if_everyone_cut_off: true}")

    def refusal(self, ctx: PlanContext, params: PublicAccessParams, doc: Mapping[str, Any]) -> str | None:
        return cut_off(doc, closing="public").refusal(params.refuse_if_everyone_cut_off)

    def notes(self, ctx: PlanContext, params: PublicAccessParams, doc: Mapping[str, Any]) -> list[str]:
        return [cut_off(doc, closing="public").sentence]
