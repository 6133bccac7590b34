"""The catalog declarations where they decide something: refusals with their reasons, values kept when already
stricter, a VM finding planned disk by disk, and what a PUT carries (never a read-only property)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from tests.support import contract as c
from tests.support.builders import make_finding


def _plan(name: str, target: str, docs: list[dict[str, Any]], params: dict[str, Any] | None = None,
          rtype_finding: str | None = None) -> list[Any]:
    action = REGISTRY[name]
    finding = make_finding(rtype_finding or target, kind="policy", type="00000000-0000-0000-0000-000000000001")
    return action.plan(PlanContext(finding=finding, state=SavedState(docs)), action.parse_params(params or {}))


def _refused(name: str, target: str, docs: list[dict[str, Any]], words: str, params: dict[str, Any] | None = None) \
        -> None:
    with pytest.raises(ActionError, match=words):
        _plan(name, target, docs, params)


def test_registry_exports_are_refused_until_public_access_is_off() -> None:
    _refused("acr.disable-exports", c.REGISTRY, c.registry(), "public network access is disabled")
    changes = _plan("acr.disable-exports", c.REGISTRY, c.registry(publicNetworkAccess="Disabled"))
    assert changes[0].after["properties"]["policies"]["exportPolicy"]["status"] == "disabled"


def test_cosmos_local_auth_is_refused_for_key_only_apis() -> None:
    docs = c.cosmos(disableLocalAuth=False, capabilities=[{"name": "EnableMongo"}])
    _refused("cosmos.disable-local-auth", c.COSMOS, docs, "EnableMongo")


def test_cosmos_removes_only_the_azure_datacenters_rule() -> None:
    docs = c.cosmos(ipRules=[{"ipAddressOrRange": "0.0.0.0"}, {"ipAddressOrRange": "203.0.113.0/24"}])
    [change] = _plan("cosmos.remove-azure-datacenters-rule", c.COSMOS, docs)
    assert change.after["properties"]["ipRules"] == [{"ipAddressOrRange": "203.0.113.0/24"}]
    assert _plan("cosmos.remove-azure-datacenters-rule", c.COSMOS, [change.after]) == []


def test_web_refusals() -> None:
    ase = c.site(hostingEnvironmentProfile={"id": c.rid("rg", "Microsoft.Web/hostingEnvironments/ase1")})
    _refused("web.disable-public-network-access", c.SITE, ase, "App Service Environment")
    _refused("web.route-outbound-through-vnet", c.SITE, c.site(), "no virtual network integration")


def test_stricter_values_are_kept() -> None:
    assert _plan("web.set-minimum-tls", c.SITE, c.site_config(minTlsVersion="1.3")) == []
    assert _plan("web.require-ftps", c.SITE, c.site_config(ftpsState="Disabled")) == []
    assert _plan("storage.set-minimum-tls", c.STORAGE, c.storage(minimumTlsVersion="TLS1_3")) == []
    assert _plan("storage.set-sas-expiration-policy", c.STORAGE, c.storage()) == []  # 1.15:59:59 is shorter
    [change] = _plan("storage.set-sas-expiration-policy", c.STORAGE, c.storage(), {"expiration_action": "Block"})
    assert change.after["properties"]["sasPolicy"] == {"sasExpirationPeriod": "7.00:00:00", "expirationAction": "Block"}


def test_storage_virtual_networks_only_is_refused_when_nobody_would_remain() -> None:
    docs = c.storage(networkAcls=c.acls(ipRules=[{"value": "198.51.100.7", "action": "Allow"}]))
    _refused("storage.restrict-to-virtual-networks", c.STORAGE, docs, "every client would be cut off")


def test_aks_refusals() -> None:
    _refused("aks.disable-local-accounts", c.AKS, c.cluster(), "no managed Microsoft Entra integration")
    private = c.cluster(apiServerAccessProfile={"enablePrivateCluster": True})
    _refused("aks.set-authorized-ip-ranges", c.AKS, private, "private", {"authorized_ip_ranges": ["203.0.113.0/24"]})


def test_aks_put_carries_the_change_and_no_read_only_property() -> None:
    action = REGISTRY["aks.disable-command-invoke"]
    [change] = _plan("aks.disable-command-invoke", c.AKS, c.cluster())
    body = action.patch_body(change)
    props = body["properties"]
    assert props["apiServerAccessProfile"]["disableRunCommand"] is True
    assert props["kubernetesVersion"] == "1.9.6"  # the rest of the cluster as read, for the PUT
    for gone in ("provisioningState", "maxAgentPools", "currentKubernetesVersion", "fqdn", "azurePortalFQDN"):
        assert gone not in props
    assert {"provisioningState", "currentOrchestratorVersion", "nodeImageVersion", "eTag"}.isdisjoint(
        props["agentPoolProfiles"][0])
    assert "effectiveOutboundIPs" not in props["networkProfile"]["loadBalancerProfile"]
    assert {"id", "name", "type", "eTag"}.isdisjoint(body)


def test_managed_network_isolation_is_one_way() -> None:
    action = REGISTRY["ml.isolate-managed-network"]
    docs = [c.example("machinelearningservices__2024-10-01__Workspace_get.json", c.WORKSPACE)]
    [change] = _plan("ml.isolate-managed-network", c.WORKSPACE, docs)
    assert "IRREVERSIBLE" in change.note
    assert "billed Azure Firewall" in change.note
    with pytest.raises(ActionError, match="cannot be undone"):
        action.undo(change)


def test_customer_managed_key_on_a_vm_finding_plans_each_disk() -> None:
    vm_id = c.rid("rg-models", "Microsoft.Compute/virtualMachines/gpu-1")
    data_id = c.rid("rg-models", "Microsoft.Compute/disks/weights-data")
    os_disk = c.disk("Reserved")[0] | {"managedBy": vm_id}
    data = copy.deepcopy(os_disk) | {"id": data_id, "name": "weights-data"}
    vm = {"id": vm_id, "name": "gpu-1", "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
          "properties": {"storageProfile": {"osDisk": {"managedDisk": {"id": c.DISK}},
                                            "dataDisks": [{"lun": 0, "managedDisk": {"id": data_id}}]},
                         "instanceView": {"statuses": [{"code": "PowerState/deallocated"}]}}}
    params = {"disk_encryption_set_id": c.rid("rg-keys", "Microsoft.Compute/diskEncryptionSets/des-models")}
    changes = _plan("disks.enable-customer-managed-key", vm_id, [vm, os_disk, data], params)
    assert sorted(ch.resource_id for ch in changes) == sorted([c.DISK, data_id])
    vm["properties"]["instanceView"]["statuses"] = [{"code": "PowerState/running"}]
    _refused("disks.enable-customer-managed-key", vm_id, [vm, os_disk, data], "not deallocated", params)


def test_outbound_host_names_are_checked() -> None:
    action = REGISTRY["cognitive.restrict-outbound-access"]
    with pytest.raises(ValidationError, match="not a host name"):
        action.parse_params({"allowed_fqdns": ["https://stdata.blob.core.windows.net/x"]})
    [change] = _plan("cognitive.restrict-outbound-access", c.ACCOUNT, c.account(),
                     {"allowed_fqdns": ["SRCH-products.search.windows.net"]})
    assert change.after["properties"]["allowedFqdnList"] == ["srch-products.search.windows.net"]
    assert change.after["properties"]["restrictOutboundNetworkAccess"] is True


def test_a_virtual_network_finding_makes_each_subnet_private() -> None:
    vnet = c.spoke_with_subnet(defaultOutboundAccess=True)[0]
    second = c.example("network__2024-05-01__SubnetGet.json", f"{c.VNET}/subnets/data", defaultOutboundAccess=False)
    vnet["properties"]["subnets"].append(second)
    subnets = [copy.deepcopy(s) for s in vnet["properties"]["subnets"]]
    changes = _plan("network.disable-default-outbound", c.VNET, [vnet, *subnets])
    assert [ch.resource_id for ch in changes] == [f"{c.VNET}/subnets/apps"]  # the private one plans nothing
