"""Container Apps (``CONTAINER_APP``): the inference front ends of an AI estate.

``ContainerApps_Update`` is a long-running JSON merge PATCH of the app (app.json stable 2025-01-01; the
ContainerApps_Get.json example has ``configuration.ingress.external: true`` and no ``allowInsecure``, which
then means false):

``apps.disable-external-ingress``  ``configuration.ingress.external: false`` (Azure Policy 783ea2a8-b8fd-
    46be-896a-9ae79643a0b1): the app answers inside its environment (and its virtual network) only.
``apps.require-https``  ``configuration.ingress.allowInsecure: false`` (0e80e269-43a4-4ae9-b5bc-178126b8a5cb):
    HTTP requests are redirected to HTTPS.

Both reversible.
"""

from __future__ import annotations

from remediator.actions.base import Example, register
from remediator.actions.profiles import CONTAINER_APP
from remediator.actions.properties import NoParams, PropertyAction, Setting


@register
class DisableExternalIngress(PropertyAction[NoParams]):
    """Set configuration.ingress.external to false: reachable from inside the app's environment only."""

    name = "apps.disable-external-ingress"
    profile = CONTAINER_APP
    settings = (Setting("properties.configuration.ingress.external", False, absent=False),)
    breaks = ("callers outside the Container Apps environment and its virtual network (the Internet, other "
              "networks without peering) can no longer reach the app; its public FQDN stops answering")
    example = Example("Container apps serving inference are reachable inside their environment only.",
                      why="Container Apps should disable external network access",
                      policies=("783ea2a8-b8fd-46be-896a-9ae79643a0b1",))


@register
class RequireHttps(PropertyAction[NoParams]):
    """Set configuration.ingress.allowInsecure to false: HTTP is redirected to HTTPS."""

    name = "apps.require-https"
    profile = CONTAINER_APP
    settings = (Setting("properties.configuration.ingress.allowInsecure", False, absent=False),)
    breaks = "clients calling over plain HTTP that do not follow redirects fail"
    example = Example("Container apps answer over HTTPS only.",
                      why="Container Apps should only be accessible over HTTPS",
                      policies=("0e80e269-43a4-4ae9-b5bc-178126b8a5cb",))
