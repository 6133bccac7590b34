"""Why the shipped playbooks leave some of Azure Policy's fixable catalog definitions unclaimed.

``remediator coverage`` shows these reasons (``remediator.planning.coverage``) instead of the catalog's generic
class note, and tests/playbooks/test_catalog_coverage.py checks that every fixable definition is claimed by a
shipped playbook or listed here, and that nothing listed here is claimed. The catalog's class is a guide; where the
definition file says otherwise, the reason says so.
"""

from __future__ import annotations

_PE_NO_ROLE = ("no built-in role narrower than Contributor holds {what}' privateEndpointConnectionsApproval/action "
               "(Azure Policy's own deployment of the endpoint runs as Contributor), and remediator never grants "
               "Contributor; remediator's custom roles (remediator/actions/custom_roles.py) do not carry it yet. "
               "Their DNS zone group definitions are claimed (a zone group needs no right on the target)")
_CLASSIC_NSG = ("Microsoft.ClassicNetwork/networkSecurityGroups is the classic (ASM) provider: it has no REST API "
                "spec in Azure/azure-rest-api-specs (no stable version to read the resource with), and classic "
                "networking was retired with Cloud Services (classic) and classic VMs; the ARM network security "
                "group definitions of the same families are claimed")
_SCOPE_POOLS = ("Microsoft.Synapse/workspaces/scopePools has no REST API spec in Azure/azure-rest-api-specs (the "
                "Synapse specs define bigDataPools, kustoPools and sqlPools): no documented version to read it with; "
                "the other Synapse pools' definitions are claimed")

# Definitions no shipped playbook claims though the catalog counts them fixable (class a, b0, b, and the
# class c families the coverage tests walk), and why. (The catalog's class is a guide;
# where the definition file says otherwise, the reason says so.)
EXCUSED: dict[str, str] = {
    "8426280e-b5be-43d9-979e-653d12a08638": "its Modify sets networkAccessPolicy AllowPrivate with a deployment's "
        "diskAccessId parameter; disks.restrict-network-access sets DenyAll (also compliant with 8405fdab) - not "
        "the same value; a playbook running policy.apply-modify that opts in to it plans its own operations",
    "2158ddbe-fefa-408e-b43f-d4faef8ff3b8": "class b in the catalog, but create-time only: the definition reads the "
        "workspace's own azureADOnlyAuthentication, taken from the create request (\"during workspace creation\"); an "
        "existing workspace turns Entra-only on through its azureADOnlyAuthentications child, which "
        "synapse-enable-entra-only-auth claims (6ea81a52, 738949be)",
    "c3624673-d2ff-48e0-b28c-5de1c6767c3c": "Modify twin of 2158ddbe: applies to the create request (see there)",
    "564feb30-bf6a-4854-b4bb-0d2d2d1e6c66": "class c, not b: enabling WAF on an Application Gateway attaches a WAF "
        "policy resource (firewallPolicy) and needs the WAF_v2 SKU, a cost-bearing SKU change - more than a property",
    "e413671a-dd10-4cc1-a943-45b598596cb7": "class d, not b: v1LegacyMode true turns the workspace back to the v1 "
        "network isolation model and blocks v2 features (managed networks among them) - a choice for old SDK v1 "
        "estates, not a fix; ml-isolate-managed-network is the fix the mission wants",
    "679ddf89-ab8f-48a5-9029-e76054077449": "not a property write: a compute instance's idle shutdown is set by the "
        "POST updateIdleShutdownSetting action (Compute_UpdateIdleShutdownSetting), a special case not built here",
    "32395e13-9837-458f-936d-4b21b1e37694": "Microsoft.FileShares is a preview resource provider (only -preview API "
        "versions in the specs); not pinned in a shipped playbook",
    "edfb40e6-36fe-4928-96e9-e921bc7dfc70": "Microsoft.FileShares: as 32395e13",
    "ddcf4b94-9dfa-4a80-aca6-22bb654fde72": "Azure NetApp Files volumes: not built in this pass (a Volumes_Update "
        "PATCH of smbEncryption; the capacity pool's volumes are outside the AI estate's usual types)",
    "5dc99dae-cfb2-42cc-8762-9aae02b74e27": "preview: securityProfile.imageIntegrity exists only in preview AKS API "
        "versions, and needs Azure Policy image-integrity definitions assigned as well",
    # class c (not counted above), the Defender-plan rows no playbook claims (test_every_defender_plan_definition_…)
    "ac076320-ddcf-4066-b451-6154267e8ad2": "registers the subscription with Defender for Cloud: its "
        "existenceCondition is a VirtualMachines pricing at Standard or Free, i.e. any pricing at all, which exists "
        "once Microsoft.Security is registered; no pricing to change before that (the GET answers 404), none after",
    "c6283572-73bb-4deb-bf2c-7a2b8f7462cb": "its existenceCondition is a policy assignment of the SQL AMA "
        "autoprovisioning initiative (de01d381-… or d7c3ea3a-…) at the subscription, not a pricing property: creating "
        "an assignment with a managed identity and its role assignments is not a change remediator makes",
    # class c, Private Link (test_every_private_link_definition_is_claimed_or_excused): a private endpoint is
    # auto-approved only for a caller holding the target's privateEndpointConnectionsApproval/action
    # (remediator.actions.private_link; tests/actions/test_private_link_roles.py)
    **{guid: _PE_NO_ROLE.format(what=what) for guid, what in (
        ("258823f2-4595-4b52-b333-cc96192710d8", "Databricks workspaces"),
        ("09210db3-d32c-4b2b-b4e1-f72ae920eb11", "Databricks workspaces"),
        ("72d11df1-dd8a-41f7-8925-b05b960ebafc", "Synapse workspaces"),
        ("3b3b0c27-08d2-4b32-879d-19930bee3266", "Synapse workspaces"),
        ("1d320205-c6a1-4ac6-873d-46224024e8e2", "Storage Sync services"),
        ("b35dddd9-daf7-423b-8375-5a5b86806d5a", "Storage Sync services"),
        ("f39f5f49-4abf-44de-8c70-0756997bfb51", "disk accesses"),
        ("582bd7a6-a5f6-4dc6-b9dc-9cb81fe0d4c5", "disk accesses"))},
    "f628ffa2-2900-47aa-ab09-3ecb844f2ae8": "Microsoft.FileShares: as 32395e13 (a preview resource provider; its "
        "private endpoints' zone is not on the private DNS zone values page)",
    # class c, the diagnostic-setting definitions (test_every_diagnostic_setting_definition_is_claimed_or_excused)
    "087dbf66-448d-4235-b7b8-17af48edc9db": _CLASSIC_NSG,
    "6f7fa8b1-4456-4d4c-94c2-1f1651b18235": _CLASSIC_NSG,
    "6308bf75-8340-4bab-b2ec-2f5000697af4": _CLASSIC_NSG,
    "f018b68f-d953-4238-81a3-94a0f39507e3": _SCOPE_POOLS,
    "9dbcaaa7-0c1b-4861-81c2-d340661b4382": _SCOPE_POOLS,
    "a12e0815-0735-48d9-b5b3-8a3b60a85b86": _SCOPE_POOLS,
}
