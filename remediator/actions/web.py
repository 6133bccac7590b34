"""App Service and Function apps (``Microsoft.Web/sites``) and their deployment slots
(``Microsoft.Web/sites/slots``): the apps that serve inference. Every action takes a finding on an app or a
slot; Azure Policy has one definition per kind (web app or function app) and per level (app or slot), and the
playbooks list them all.

On the app or slot itself (WebApps_Update / WebApps_UpdateSlot, a PATCH; ``SiteProperties``, web.json stable
2024-11-01; GetWebApp.json has ``httpsOnly: false``, ``clientCertEnabled: false``, ``vnetRouteAllEnabled:
false`` and no ``publicNetworkAccess``, which then means enabled):

``web.disable-public-network-access``  ``publicNetworkAccess: Disabled`` (not for apps in an App Service
    Environment, which every definition leaves out: ``hostingEnvironmentProfile.id`` exists false).
``web.require-https``  ``httpsOnly: true``.
``web.enable-end-to-end-encryption``  ``endToEndEncryptionEnabled: true`` (front ends to workers over TLS).
``web.disable-ssh``  ``sshEnabled: false`` (the SCM site's SSH into the container).
``web.require-client-certificates``  ``clientCertEnabled: true`` with ``clientCertMode: Required``.
``web.route-outbound-through-vnet``  ``vnetRouteAllEnabled: true``, and
``web.route-configuration-through-vnet``  ``vnetImagePullEnabled``, ``vnetContentShareEnabled`` and
    ``vnetBackupRestoreEnabled`` true: both refused for an app without virtual network integration
    (``virtualNetworkSubnetId``), where there is no network to route through.

On the fixed-name configuration ``<app>/config/web`` (WebApps_UpdateConfiguration(Slot), a PATCH;
GetSiteConfig.json):

``web.disable-remote-debugging``  ``remoteDebuggingEnabled: false``.
``web.set-minimum-tls``  ``minTlsVersion: 1.2`` (a newer version, 1.3, is kept: the definitions ask
    ``greaterOrEquals 1.2``).
``web.require-ftps``  ``ftpsState: FtpsOnly`` (``Disabled`` is kept: both comply).
``web.restrict-cors``  ``*`` removed from ``cors.allowedOrigins``.

On the publishing-credential policies ``<app>/basicPublishingCredentialsPolicies/ftp|scm``
(WebApps_UpdateFtpAllowed / WebApps_UpdateScmAllowed, a PUT; GetPublishingCredentialsPolicy.json):

``web.disable-ftp-basic-auth`` and ``web.disable-scm-basic-auth``  ``allow: false``.

All reversible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from remediator import ids
from remediator.actions.base import Example, PlanContext, register
from remediator.actions.profiles import (
    WEB_APP,
    WEB_CONFIG,
    WEB_PUBLISHING,
    WEB_SLOT,
    WEB_SLOT_CONFIG,
    WEB_SLOT_PUBLISHING,
)
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

APP_TYPES = (WEB_APP.type, WEB_SLOT.type)


def _site_of(resource_id: str) -> str:
    """The app or slot a finding (or one of its children: config, publishing policies) is on."""
    parts = resource_id.rstrip("/").split("/")
    i = next((n for n, p in enumerate(parts) if p.lower() == "sites"), len(parts))
    end = i + 4 if len(parts) > i + 3 and parts[i + 2].lower() == "slots" else i + 2
    return "/".join(parts[:end])


class _Site(PropertyAction[NoParams]):
    """A declaration on the app or slot itself."""

    profile = WEB_APP
    resource_types = APP_TYPES
    permissions = (*WEB_APP.permissions, *WEB_SLOT.permissions)

    def target_id(self, ctx: PlanContext) -> str:
        return _site_of(ctx.finding.resource_id)


class _Config(PropertyAction[NoParams]):
    """A declaration on ``<app or slot>/config/web``."""

    profile = WEB_CONFIG
    resource_types = (*APP_TYPES, WEB_CONFIG.type, WEB_SLOT_CONFIG.type)
    permissions = (*WEB_CONFIG.permissions, *WEB_SLOT_CONFIG.permissions)

    def target_id(self, ctx: PlanContext) -> str:
        return f"{_site_of(ctx.finding.resource_id)}/config/web"

    def document(self, ctx: PlanContext, target: str) -> tuple[str, dict[str, Any]]:
        """ARM always serves ``config/web``; saved state may hold only the app, whose ``siteConfig`` carries the
        same settings (a template, ``az webapp show``): the plan reads them from there, and says so."""
        if ctx.state.get(target) is None:
            site = ctx.state.get(_site_of(target))
            config = get_path(site, "properties.siteConfig") if site is not None else None
            if isinstance(config, Mapping):
                ctx.warn(f"{target} not in the resource state: its settings were read from the app's siteConfig")
                return target, {"id": target, "name": "web", "type": ids.resource_type(target),
                                "properties": dict(config)}
        return super().document(ctx, target)


class _Publishing(PropertyAction[NoParams]):
    """``allow: false`` on ``<app or slot>/basicPublishingCredentialsPolicies/<policy>``, by PUT."""

    policy: ClassVar[str]
    profile = WEB_PUBLISHING
    resource_types = (*APP_TYPES, WEB_PUBLISHING.type, WEB_SLOT_PUBLISHING.type)
    permissions = (*WEB_PUBLISHING.permissions, *WEB_SLOT_PUBLISHING.permissions)
    method = "PUT"
    settings = (Setting("properties.allow", False, absent=True),)

    def target_id(self, ctx: PlanContext) -> str:
        return f"{_site_of(ctx.finding.resource_id)}/basicPublishingCredentialsPolicies/{self.policy}"


def _no_vnet(doc: Mapping[str, Any]) -> str | None:
    if get_path(doc, "properties.virtualNetworkSubnetId"):
        return None
    return ("the app has no virtual network integration (virtualNetworkSubnetId): there is no network to route "
            "through; integrate it with a subnet first")


@register
class DisablePublicNetworkAccess(_Site):
    """Set publicNetworkAccess to Disabled: the app answers on its private endpoints only."""

    name = "web.disable-public-network-access"
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),)
    breaks = ("every client that is not behind one of the app's private endpoints (browsers, callers on the "
              "Internet, services without virtual network access) gets 403 from the app")
    example = Example("Close App Service and Function apps serving inference to the public network.",
                      why="App Service apps should disable public network access",
                      policies=("1b5ef780-c53c-4a64-87f3-bb9c8c8094ba",), resource_types=APP_TYPES)

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        if get_path(doc, "properties.hostingEnvironmentProfile.id"):
            return ("the app runs in an App Service Environment, whose network decides its exposure (Azure Policy "
                    "leaves such apps out)")
        return None


@register
class RequireHttps(_Site):
    """Set httpsOnly to true: plain HTTP requests are redirected to HTTPS."""

    name = "web.require-https"
    settings = (Setting("properties.httpsOnly", True, absent=False),)
    breaks = "clients that call the app over plain HTTP and do not follow redirects fail"
    example = Example("App Service and Function apps answer over HTTPS only.",
                      why="App Service apps should only be accessible over HTTPS",
                      policies=("a4af4a39-4135-47fb-b175-47fbdf85311d",), resource_types=APP_TYPES)


@register
class EnableEndToEndEncryption(_Site):
    """Set endToEndEncryptionEnabled to true: traffic from the front ends to the workers is encrypted too."""

    name = "web.enable-end-to-end-encryption"
    settings = (Setting("properties.endToEndEncryptionEnabled", True, absent=False),)
    breaks = "nothing for clients; the workers' TLS termination adds a little latency (Premium plans and up)"
    example = Example("Encrypt App Service traffic inside the platform as well.",
                      why="App Service apps should enable end to end encryption",
                      policies=("af1d7e88-c1c8-4ea8-be1f-87bff0df9101",), resource_types=APP_TYPES)


@register
class DisableSsh(_Site):
    """Set sshEnabled to false: no SSH session into the app's container through the SCM site."""

    name = "web.disable-ssh"
    settings = (Setting("properties.sshEnabled", False, absent=True),)
    breaks = "operators lose the SCM site's SSH console into the container (Kudu's other tools stay)"
    example = Example("No SSH into the containers of apps serving inference.",
                      why="App Service apps should disable SSH",
                      policies=("25255ddf-ef4f-4283-975a-5590ad111bba",), resource_types=APP_TYPES)


@register
class RequireClientCertificates(_Site):
    """Set clientCertEnabled to true with clientCertMode Required: every TLS client presents a certificate."""

    name = "web.require-client-certificates"
    settings = (Setting("properties.clientCertEnabled", True, absent=False),
                Setting("properties.clientCertMode", "Required", absent="Required"))
    breaks = ("every client without a client certificate is refused at the TLS handshake (browsers, callers, "
              "health probes): only for apps whose callers are all issued certificates")
    example = Example("Apps called machine-to-machine require client certificates.",
                      why="App Service apps should have Client Certificates (Incoming client certificates) enabled",
                      policies=("19dd1db6-f442-49cf-a838-b0786b4401ef",), resource_types=APP_TYPES, risk="high",
                      approval="{mode: slack, approvers: [security-oncall], quorum: 2, expires_after: 1d}")


@register
class RouteOutboundThroughVnet(_Site):
    """Set vnetRouteAllEnabled to true: all outbound application traffic goes through the integrated network."""

    name = "web.route-outbound-through-vnet"
    settings = (Setting("properties.vnetRouteAllEnabled", True, absent=False),)
    breaks = ("outbound calls now follow the virtual network's routes, NSGs and DNS: destinations the network "
              "does not route or resolve (the Internet without a NAT gateway or firewall rule) become unreachable")
    example = Example("Apps send all outbound traffic through their virtual network.",
                      why="App Service apps should enable outbound application traffic routing to Azure Virtual "
                          "Network",
                      policies=("a691eacb-474d-47e4-b287-b4813ca44222",), resource_types=APP_TYPES)

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        return _no_vnet(doc)


@register
class RouteConfigurationThroughVnet(_Site):
    """Set vnetImagePullEnabled, vnetContentShareEnabled and vnetBackupRestoreEnabled to true: image pulls,
    content share and backup traffic go through the integrated network."""

    name = "web.route-configuration-through-vnet"
    settings = (Setting("properties.vnetImagePullEnabled", True, absent=False),
                Setting("properties.vnetContentShareEnabled", True, absent=False),
                Setting("properties.vnetBackupRestoreEnabled", True, absent=False))
    breaks = ("container images, the content share and backups are reached through the virtual network: a "
              "registry or storage account it cannot reach (no route, no private endpoint DNS) stops the app")
    example = Example("Apps pull images and reach their content over their virtual network.",
                      why="App Service apps should enable configuration routing to Azure Virtual Network",
                      policies=("801543d1-1953-4a90-b8b0-8cf6d41473a5",), resource_types=APP_TYPES)

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        return _no_vnet(doc)


@register
class DisableRemoteDebugging(_Config):
    """Set remoteDebuggingEnabled to false on the app's configuration."""

    name = "web.disable-remote-debugging"
    settings = (Setting("properties.remoteDebuggingEnabled", False, absent=False),)
    breaks = "a Visual Studio remote debugging session attached to the app is dropped and cannot reattach"
    example = Example("No remote debugging on apps serving inference.",
                      why="App Service apps should have remote debugging turned off",
                      policies=("cb510bfd-1cba-4d9f-a230-cb0976f4bb71",), resource_types=APP_TYPES)


_TLS = ("1.0", "1.1", "1.2", "1.3")


@register
class SetMinimumTls(_Config):
    """Set minTlsVersion to 1.2 (1.3 is kept)."""

    name = "web.set-minimum-tls"
    settings = (Setting("properties.minTlsVersion", "1.2", absent="1.2"),)
    breaks = "clients that negotiate only TLS 1.0 or 1.1 cannot connect"
    example = Example("Apps accept TLS 1.2 and newer only.",
                      why="App Service apps should use the latest TLS version",
                      policies=("f0e6e85b-9b9f-4a4b-b67b-f730d42f1b0b",), resource_types=APP_TYPES)

    def same(self, path: str, have: Any, want: Any) -> bool:
        if want == self.settings[0].value and isinstance(have, str) and have in _TLS:  # newer is kept; undo exact
            return _TLS.index(have) >= _TLS.index(want)
        return super().same(path, have, want)


@register
class RequireFtps(_Config):
    """Set ftpsState to FtpsOnly (Disabled is kept): no plain FTP."""

    name = "web.require-ftps"
    settings = (Setting("properties.ftpsState", "FtpsOnly", absent="AllAllowed"),)
    breaks = "deployments and tools that upload over plain FTP fail; FTPS keeps working"
    example = Example("No plain FTP to apps serving inference.",
                      why="App Service apps should require FTPS only",
                      policies=("4d24b6d4-5e53-4a4f-a7f4-618fa573ee4b",), resource_types=APP_TYPES)

    def same(self, path: str, have: Any, want: Any) -> bool:
        if want == self.settings[0].value and isinstance(have, str) and have.lower() == "disabled":
            return True  # FTP off altogether complies too; an undo compares exactly
        return super().same(path, have, want)


@register
class RestrictCors(_Config):
    """Remove ``*`` from cors.allowedOrigins: browsers on other origins may no longer call the app."""

    name = "web.restrict-cors"
    settings = (Setting("properties.cors.allowedOrigins", [], absent=[]),)
    breaks = ("browser code served from origins not listed in cors.allowedOrigins can no longer call the app "
              "(server-to-server calls are not affected)")
    example = Example("Apps must not let every web origin call them from a browser.",
                      why="App Service apps should not have CORS configured to allow every resource to access "
                          "your apps",
                      policies=("5744710e-cc2f-4ee8-8809-3b11e89f4bc9",), resource_types=APP_TYPES)

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        origins = get_path(doc, "properties.cors.allowedOrigins", [])
        kept: Sequence[Any] = [o for o in origins if str(o).strip() != "*"] if isinstance(origins, list) else []
        return {"properties.cors.allowedOrigins": list(kept)}


@register
class DisableFtpBasicAuth(_Publishing):
    """Set the FTP publishing-credentials policy's allow to false: no FTP deployment with basic credentials."""

    name = "web.disable-ftp-basic-auth"
    policy = "ftp"
    breaks = ("FTP/FTPS deployments with the app's publishing profile (user name and password) fail; deploy "
              "with Microsoft Entra ID (az, GitHub Actions with OIDC, ZIP deploy with a token)")
    example = Example("No FTP deployments with basic (publishing profile) credentials.",
                      why="App Service apps should have local authentication methods disabled for FTP deployments",
                      policies=("871b205b-57cf-4e1e-a234-492616998bf7",), resource_types=APP_TYPES)


@register
class DisableScmBasicAuth(_Publishing):
    """Set the SCM publishing-credentials policy's allow to false: no Kudu/SCM deployment with basic credentials."""

    name = "web.disable-scm-basic-auth"
    policy = "scm"
    breaks = ("deployments to the SCM site (Kudu, Web Deploy, local Git) with the publishing profile's user name "
              "and password fail; Microsoft Entra ID deployments keep working")
    example = Example("No SCM site deployments with basic (publishing profile) credentials.",
                      why="App Service apps should have local authentication methods disabled for SCM site "
                          "deployments",
                      policies=("aede300b-d67f-480a-ae26-4b3dfb1a1fdc",), resource_types=APP_TYPES)
