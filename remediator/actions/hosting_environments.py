"""App Service Environments (``Microsoft.Web/hostingEnvironments``): the isolated hosts of inference apps. Their
TLS and encryption are *cluster settings*, a ``clusterSettings`` list of ``{name, value}`` on the environment,
written by a PATCH (AppServiceEnvironments_Update, web/…/stable/2024-11-01) under remediator's custom role
``remediator App Service Environment Settings Writer`` (``remediator.actions.custom_roles``: Website Contributor
covers sites only). The list is written whole, the other settings kept as they are.

``ase.disable-legacy-tls``
    ``DisableTls1.0 = 1``, which turns off TLS 1.0 and 1.1 on the front ends (Azure Policy
    d6545c6b-dd9d-4265-91e6-0b451e2f1c50 counts exactly that entry).
``ase.restrict-cipher-suites``
    ``FrontEndSSLCipherSuiteOrder`` = the two ECDHE-RSA AES-GCM suites the definition requires (Azure Policy
    817dcf37-e83d-4999-a472-644eada2ea1e: the value contains TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 and
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 and is under 80 characters). An order that already satisfies it is
    kept.
``ase.enable-internal-encryption``
    ``InternalEncryption = true``: traffic and temporary files between the environment's front ends and
    workers are encrypted (Azure Policy fb74e86f-d351-4b8d-b034-93da7391c01f).

The definitions apply to ``kind`` ``ASE*`` only. A cluster setting change rolls through the environment's
instances (front ends and workers restart), so each is asked for with approval; each is reversible (undo puts
the previous list back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.custom_roles import NeedsCustomRole
from remediator.actions.profiles import HOSTING_ENVIRONMENT
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

PATH = "properties.clusterSettings"
STRONG_SUITES = ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
ROLLS = ("the environment applies a cluster setting by restarting its front ends and workers in turn: apps see "
         "instance restarts while it rolls")


def entries(value: Any) -> dict[str, str]:
    """``clusterSettings`` as name (lower case) → value."""
    out: dict[str, str] = {}
    for item in value if isinstance(value, list) else ():
        if isinstance(item, Mapping) and item.get("name") is not None:
            out[str(item["name"]).lower()] = str(item.get("value") if item.get("value") is not None else "")
    return out


class ClusterSettingAction(PropertyAction[NoParams]):
    """Base: one cluster setting (``setting`` = ``value``) kept or put in the environment's list."""

    profile = HOSTING_ENVIRONMENT
    setting: ClassVar[str]
    value: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.settings = (Setting(PATH, [], absent=[]),)

    def satisfied(self, have: Mapping[str, str]) -> bool:
        return have.get(self.setting.lower(), "").lower() == self.value.lower()

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        current = get_path(doc, PATH, [])
        current = list(current) if isinstance(current, list) else []
        if self.satisfied(entries(current)):
            return {PATH: current}
        kept = [dict(i) for i in current if not (isinstance(i, Mapping)
                                                  and str(i.get("name", "")).lower() == self.setting.lower())]
        return {PATH: [*kept, {"name": self.setting, "value": self.value}]}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if path == PATH:
            return entries(have) == entries(want)
        return super().same(path, have, want)

    def describe(self, doc: Mapping[str, Any], changed: Mapping[str, Any]) -> list[str]:
        before = entries(get_path(doc, PATH, [])).get(self.setting.lower())
        return [f"clusterSettings {self.setting}: {before if before is not None else '(not set)'} -> {self.value}"]

    def notes(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Sequence[str]:
        return [ROLLS]


@register
class DisableLegacyTls(NeedsCustomRole, ClusterSettingAction):
    """Turn off TLS 1.0 and 1.1 on an App Service Environment's front ends (cluster setting DisableTls1.0)."""

    name = "ase.disable-legacy-tls"
    setting = "DisableTls1.0"
    value = "1"
    breaks = "clients of the environment's apps that speak only TLS 1.0 or 1.1 can no longer connect"
    example = Example("App Service Environments refuse TLS 1.0 and 1.1.",
                      why="App Service Environment should have TLS 1.0 and 1.1 disabled",
                      policies=("d6545c6b-dd9d-4265-91e6-0b451e2f1c50",))


@register
class RestrictCipherSuites(NeedsCustomRole, ClusterSettingAction):
    """Limit an App Service Environment's front ends to the strongest TLS cipher suites."""

    name = "ase.restrict-cipher-suites"
    setting = "FrontEndSSLCipherSuiteOrder"
    value = ",".join(STRONG_SUITES)
    breaks = "clients of the environment's apps that negotiate no ECDHE-RSA AES-GCM suite can no longer connect"
    example = Example("App Service Environments negotiate only the strongest TLS cipher suites.",
                      why="App Service Environment should be configured with strongest TLS Cipher suites",
                      policies=("817dcf37-e83d-4999-a472-644eada2ea1e",))

    def satisfied(self, have: Mapping[str, str]) -> bool:
        order = have.get(self.setting.lower(), "")
        return all(s.lower() in order.lower() for s in STRONG_SUITES) and len(order) < 80


@register
class EnableInternalEncryption(NeedsCustomRole, ClusterSettingAction):
    """Encrypt the traffic between an App Service Environment's front ends and workers (InternalEncryption)."""

    name = "ase.enable-internal-encryption"
    setting = "InternalEncryption"
    value = "true"
    breaks = "nothing for clients; the environment's instances restart while the setting rolls out"
    example = Example("App Service Environments encrypt their internal traffic and temporary files.",
                      why="App Service Environment should have internal encryption enabled",
                      policies=("fb74e86f-d351-4b8d-b034-93da7391c01f",))
