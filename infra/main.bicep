// remediator on Azure Functions: everything one deployment needs, in one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p slackChannel=C0… slackTeamId=T0… admins=U0…
//
// Plan: Flex Consumption (FC1) with one always-ready instance for the HTTP functions, so Slack's
// requests never wait for a cold start (Slack gives 3 seconds), Python 3.11, per-function scaling
// for the Event Hub and queue triggers. Premium (EP1) would also keep instances warm, at a fixed
// monthly price for idle capacity this workload does not use.
//
// Identities (user-assigned):
//   host      the Functions host's own plumbing: its storage, Event Hub receive, Key Vault references.
//   executor  reads state (Reader, subscription) and writes only under PIM grants: NO standing write role.
//   broker    Role Based Access Control Administrator at the subscription, constrained by an ABAC
//             condition to the actions' roles and to the executor (subscription-roles.bicep).
// The RBAC action (rbac.revoke-role-assignments) needs Role Based Access Control Administrator on
// the assignment's scope; allowing the broker to hand that role to the executor is off by default
// (allowRbacRevocation, which also allows User Access Administrator for rbac.make-eligible): see docs/deploy.md,
// "The RBAC action" and "PIM eligibility".
//
// Private by default: Key Vault and storage refuse public networks and are reached through private
// endpoints in the app's virtual network (Flex Consumption VNet integration); the storage account
// takes no shared keys (every client uses Entra ID); Event Hub takes no SAS keys. Only the HTTP
// functions stay on the public internet: Slack and the Logic App cannot reach a private endpoint
// (docs/deploy.md, "What is private"). publicTrial=true deploys the PUBLIC TRIAL variant instead.
//
// Checked: checkov runs on infra/ in CI (scripts/test) with 0 failed checks; a check that cannot
// apply is skipped inline with its reason. tests/infra/ parse this file with pycep-parser and run
// remediator's own playbooks over the resources it declares: none of them plans a change.
//
// Two passes: the Event Grid subscription that feeds Azure Policy events to the policy_events
// function can only be created once the function exists, so run the deployment again with
// deployPolicyEventSubscription=true after publishing the code (docs/deploy.md, step 6).

@description('Base name of the resources (lower-case letters and digits).')
@minLength(3)
@maxLength(12)
param name string = 'remediator'

@description('Region of every regional resource; it must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Slack channel id for approval requests (C…).')
param slackChannel string

@description('Slack workspace id approvals must come from (T…).')
param slackTeamId string

@description('Slack Enterprise Grid org id approvals must come from (E…), or empty.')
param slackEnterpriseId string = ''

@description('Slack Web API base URL (GovSlack: https://slack-gov.com/api/).')
param slackApiUrl string = 'https://slack.com/api/'

@description('Slack users or user groups who may pause and resume (comma-separated U…/S… ids).')
param admins string

@description('The playbooks\' approver roles mapped to Slack users or user groups: role=ids;role=ids (ids separated by commas), e.g. security-oncall=S0614TZR7;security-leads=U05K8NQ2R7T,U05M3XH9V4P;platform-owners=S0615PLT8Q. Every role the playbooks name must be mapped, or the app refuses to start.')
param approverRoles string

@description('Global narrowing allowlist of approvers (comma-separated), or empty.')
param approvers string = ''

@minValue(1)
@maxValue(10)
param minQuorum int = 1

@allowed(['pim-assign', 'standing'])
@description('pim-assign: per-change PIM grants (the design). standing: the executor holds its roles itself (not granted here).')
param elevation string = 'pim-assign'

@description('Lifetime of each PIM grant (PIM minimum 5m).')
param pimDuration string = '15m'

@description('Let the broker grant Role Based Access Control Administrator to the executor (the RBAC action).')
param allowRbacRevocation bool = false

@description('Roles the broker may grant for policy.apply-modify: the GUIDs of the roleDefinitionIds of the Modify definitions your playbooks opt in to (empty: none, and such a grant is refused by the broker condition).')
param modifyRoleIds array = []

@description('Create remediator\'s custom roles (custom-roles.bicep) for the types no built-in role narrower than Contributor writes. false: they exist already (one definition per tenant), or your own roles are mapped in customRoles.')
param deployCustomRoles bool = true

@description('Your own roles in place of remediator\'s custom roles: key=<role definition id>;… (synapse-workspace-settings, databricks-workspace-network, app-service-environment-settings, storage-sync-network). Empty: the custom roles this template creates.')
param customRoles string = ''

@description('Where the custom roles may be assigned: every subscription remediator remediates, or their management group. Empty: this subscription.')
param customRoleAssignableScopes array = []

@description('Principals the RBAC action never revokes, beside remediator\'s own identities (comma-separated object ids).')
param protectedPrincipals string = ''

@description('Emergency-access (break-glass) accounts that rbac.make-eligible never changes (comma-separated object ids).')
param breakGlassPrincipals string = ''

param autoBudgetPerHour int = 20
param undoWindow string = '24h'
param reminderBefore string = ''
param stormThreshold int = 5

@description('How long a new approval request waits for others of its playbook and resource group to share one digest (e.g. 10s, 1m).')
param groupWait string = '10s'

@description('Results of auto-applied remediations of one playbook within this long of the first share one Slack message, updated in place (e.g. 15m; 0s: a message per result).')
param resultWindow string = '15m'
param lockTtl string = '60s'

@description('Deliveries of a job before it is poison; host.json maxDequeueCount must be this + 1.')
param maxDeliveries int = 5

@description('Exemptions file path, relative to the app root, or empty.')
param exemptionsFile string = ''

@description('Entra authority host for sovereign clouds, or empty for the public cloud.')
param authorityHost string = ''

@description('Microsoft Graph endpoint for names beside ids (https://graph.microsoft.us for US Government L4, https://dod-graph.microsoft.us for L5); empty: the ARM endpoint\'s cloud\'s; off: no principal names. The executor needs the Graph application permission Directory.Read.All (docs/deploy.md, "Names").')
param graphEndpoint string = ''

@description('NCRONTAB schedule of the sweep (expiry, reminders, lost applies).')
param sweepSchedule string = '0 */1 * * * *'

@description('NCRONTAB schedule of the backlog scan and reconcile (Resource Graph): daily by default.')
param reconcileSchedule string = '0 0 3 * * *'

@description('Subscriptions the scan covers; empty: this one. The executor needs Reader on each: deploy subscription-roles.bicep there.')
param scanSubscriptionIds array = []

@description('Or a management group the scan covers (then assign the executor Reader on it; see docs/deploy.md).')
param scanManagementGroup string = ''

@description('Log Analytics workspace id the diagnostic-settings fix sends resource logs to; empty: this deployment\'s own workspace.')
param diagnosticsWorkspaceId string = ''

@description('Storage account id the diagnostic-settings fix also (or instead) archives resource logs to; empty: none.')
param diagnosticsStorageAccountId string = ''

@description('Event Hubs namespace authorization rule id the Event Hub diagnostic-settings playbooks stream resource logs to; empty: those playbooks refuse.')
param diagnosticsEventHubAuthorizationRuleId string = ''

@description('Event hub (in that namespace) the Event Hub diagnostic-settings playbooks stream resource logs to; empty: those playbooks refuse.')
param diagnosticsEventHubName string = ''

@description('Private Link: where new private endpoints go, by region ("*" = any other): westeurope=<subnet id>;*=<subnet id>. Empty: the network fixes refuse to cut every client off (docs/deploy.md, "Private Link").')
param privateLinkSubnets string = ''

@description('Private Link: the landing zone\'s central private DNS zones: privatelink.openai.azure.com=<privateDnsZones id>;…')
param privateDnsZones string = ''

@description('Continuous export: the resource group, in each scanned subscription, where defender-restore-export creates a missing export (empty: this hub\'s resource group, in this subscription only)')
param exportResourceGroup string = ''

@description('Continuous export: how long a subscription with open findings may send nothing before the channel is told (24h, 2d …)')
param exportSilence string = '24h'

@minValue(0)
param alwaysReadyHttpInstances int = 1

@allowed(['3.11', '3.12', '3.13'])
@description('Python of the Function app; CI tests 3.11 (requirements.txt picks azure-functions 2.x on 3.13).')
param pythonVersion string = '3.11'

@description('Create Defender for Cloud continuous export (alerts, unhealthy assessments, sub-assessments) to the Event Hub.')
param deployDefenderExport bool = true

@description('Second pass, after the code is published: route Azure Policy state events to the policy_events function.')
param deployPolicyEventSubscription bool = false

@description('PUBLIC TRIAL VARIANT when true: Key Vault and storage open to public networks, no virtual network or private endpoints. For a short trial in a sandbox subscription only, never for production (docs/deploy.md).')
param publicTrial bool = false

@description('Address space of the virtual network (private variant).')
param vnetAddressPrefix string = '10.90.0.0/24'

@description('Subnet of the Function app\'s VNet integration (delegated to Microsoft.App/environments), inside vnetAddressPrefix.')
param functionsSubnetPrefix string = '10.90.0.0/26'

@description('Subnet of the private endpoints, inside vnetAddressPrefix.')
param endpointsSubnetPrefix string = '10.90.0.64/26'

@description('Object id of the "Windows Azure Security Resource Provider" service principal in this tenant: Defender exports to the hub as a trusted service with Azure Event Hubs Data Sender (docs/deploy.md, step 5). Empty: assign it yourself.')
param securityProviderPrincipalId string = ''

@secure()
@description('Slack Bot User OAuth Token (xoxb-…), written to Key Vault; empty leaves the secret to be set later.')
param slackBotToken string = ''

@secure()
@description('Slack signing secret, written to Key Vault; empty leaves the secret to be set later.')
param slackSigningSecret string = ''

// Least-privileged roles of the registered actions (remediator/actions; checked by a test)
var actionRoleIds = [
  '17d1049b-9a84-46fb-8f53-869881c3d3ab' // Storage Account Contributor: storage.*
  '4d97b98b-1d4f-4787-a291-c67834d212e7' // Network Contributor: network.restrict-inbound, network.restrict-peerings
  '36243c78-bf99-498c-9df9-86d9f8d28608' // Resource Policy Contributor: policy.limit-exemption
  '3bc748fc-213d-45c1-8d91-9da5725539b9' // Container Registry Contributor and Data Access Configuration Administrator: acr.*
  '25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68' // Cognitive Services Contributor: cognitive.*
  'b78c5d69-af96-48a3-bf8d-a8b4d589de94' // Azure AI Administrator: ml.*
  'f25e0fa2-a7c8-4377-a976-54943a77a395' // Key Vault Contributor: keyvault.*
  '9980e02c-c2be-4d73-94e8-173b1dc7cf3c' // Virtual Machine Contributor: disks.restrict-network-access, disks.enable-customer-managed-key
  '4f8fab4f-1852-4a58-a46a-8eaf358af14a' // Avere Contributor (Microsoft.Compute/disks/*; no narrower built-in has disks/endGetAccess): disks.revoke-export-access
  '7efff54f-a5b4-42b5-a1c5-5411624893ce' // Disk Snapshot Contributor: snapshots.*
  'fb1c8493-542b-48eb-b624-b4c8fea62acd' // Security Admin: defender.enable-plan (at the subscription), defender.restore-export
  '749f88d5-cbae-40b8-bcfc-e573ddc772fa' // Monitoring Contributor: monitor.enable-diagnostic-logs (the resource and the workspace)
  'c12c1c16-33a1-487b-954d-41c89c60f349' // Reader and Data Access: monitor.enable-diagnostic-logs (a storage account destination)
  'f526a384-b230-433a-b45c-95f59c4a2dec' // Azure Event Hubs Data Owner: monitor.enable-diagnostic-logs (an Event Hub destination's namespace)
  'b12aa53e-6015-4669-85d0-8515ebb3ae7f' // Private DNS Zone Contributor: network.create-private-endpoint (join each zone)
  '7ca78c08-252a-4471-8644-bb5ff32d4ba0' // Search Service Contributor: search.*, network.create-private-endpoint on Search
  '5bd9cd88-fe45-4216-938b-f97437e15450' // DocumentDB Account Contributor: cosmos.*, network.create-private-endpoint on Cosmos DB
  '673868aa-7521-48a0-acc6-0f60742d39f5' // Data Factory Contributor: datafactory.*
  '358470bc-b998-42bd-ab17-a7e34c199c0f' // Container Apps Contributor: apps.*
  'de139f84-1756-47ae-9be6-808fbbe84772' // Website Contributor: web.*
  'ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8' // Azure Kubernetes Service Contributor Role: aks.*
  '18500a29-7fe2-46b2-a342-b16a415e101d' // Managed HSM contributor: managedhsm.*
  // remediator's custom roles (custom-roles.bicep; no built-in role narrower than Contributor writes these types)
  '75e0f5c6-5aa7-59a9-96e2-b238edef0dd4' // remediator Synapse Workspace Settings Writer: synapse.*
  '07d47562-493d-5ab1-ab9f-43adc1de56d1' // remediator Databricks Workspace Network Writer: databricks.*
  'd6c715e8-147e-50df-a88f-d9c3c72f0147' // remediator App Service Environment Settings Writer: ase.*
  '22194abf-4baf-52e6-a85d-1edec08e5b1c' // remediator Storage Sync Network Writer: storagesync.*
]
var rbacActionRoleId = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator: rbac.revoke-role-assignments
// User Access Administrator: rbac.make-eligible (the narrowest built-in role with roleEligibilityScheduleRequests/write)
var eligibilityActionRoleId = '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9'
var baseRoleIds = allowRbacRevocation ? concat(actionRoleIds, [rbacActionRoleId, eligibilityActionRoleId]) : actionRoleIds
// policy.apply-modify grants the role its Modify definition names (roleDefinitionIds): only those listed here
var assignableRoleIds = concat(baseRoleIds, modifyRoleIds)

var suffix = uniqueString(resourceGroup().id, name)
var storePrefix = 'remediator'
var jobsQueue = '${storePrefix}-jobs'
var deploymentContainer = 'app-package'
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}
var isPrivate = !publicTrial
var functionsSubnet = 'functions'
var endpointsSubnet = 'private-endpoints'

// -- identities ------------------------------------------------------------------------------------

resource hostIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}-host'
  location: location
}

resource executor 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}-executor'
  location: location
}

resource broker 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${name}-broker'
  location: location
}

module subscriptionRoles 'subscription-roles.bicep' = {
  name: '${name}-subscription-roles'
  scope: subscription()
  params: {
    executorPrincipalId: executor.properties.principalId
    brokerPrincipalId: broker.properties.principalId
    assignableRoleIds: assignableRoleIds
  }
}

module customRoleDefinitions 'custom-roles.bicep' = if (deployCustomRoles) {
  name: '${name}-custom-roles'
  scope: subscription()
  params: {
    assignableScopes: customRoleAssignableScopes
  }
}

// -- network (private variant): the Function app's integration subnet and the private endpoints -----

resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = if (isPrivate) {
  name: 'nsg-${name}-${take(suffix, 10)}'
  location: location
  properties: {
    securityRules: [] // the defaults: nothing inbound from the internet; the app's traffic is outbound
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = if (isPrivate) {
  name: 'vnet-${name}-${take(suffix, 10)}'
  location: location
  properties: {
    addressSpace: { addressPrefixes: [vnetAddressPrefix] }
    subnets: [
      {
        name: functionsSubnet
        properties: {
          addressPrefix: functionsSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          delegations: [
            { name: 'flex-consumption', properties: { serviceName: 'Microsoft.App/environments' } }
          ]
        }
      }
      {
        name: endpointsSubnet
        properties: {
          addressPrefix: endpointsSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
        }
      }
    ]
  }
}

// -- storage: the Functions host, the deployment package, and the store's tables and queue ----------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed ('st' + 8 of the name parameter + 12 of uniqueString: 3-22 lower-case letters and digits); checkov cannot evaluate it
  // checkov:skip=CKV_AZURE_35: networkAcls.defaultAction is Deny unless publicTrial (the PUBLIC TRIAL variant); checkov does not evaluate the condition, tests/infra/test_template.py asserts the private value
  // checkov:skip=CKV_AZURE_59: publicNetworkAccess is Disabled unless publicTrial; same reason, same test
  name: 'st${take(name, 8)}${take(suffix, 12)}'
  location: location
  sku: { name: 'Standard_GRS' } // the audit trail survives the loss of a region
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // every client (host, deployment, the store) signs in with the host identity
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    sasPolicy: { sasExpirationPeriod: '7.00:00:00', expirationAction: 'Log' } // no SAS is used; any would be short
    publicNetworkAccess: publicTrial ? 'Enabled' : 'Disabled'
    networkAcls: {
      defaultAction: publicTrial ? 'Allow' : 'Deny'
      bypass: 'None'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
    isVersioningEnabled: true // a replaced deployment package stays recoverable
  }
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource jobs 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: jobsQueue
}

resource jobsPoison 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${jobsQueue}-poison'
}

// the urgent lane: jobs a person is waiting on (approved applies, their message updates), a trigger of its own
resource jobsUrgent 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${jobsQueue}-urgent'
}

resource jobsUrgentPoison 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${jobsQueue}-urgent-poison'
}

resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostIdentity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostIdentity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, hostIdentity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- Key Vault: the Slack secrets -------------------------------------------------------------------

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: networkAcls.defaultAction is Deny unless publicTrial (the PUBLIC TRIAL variant); checkov does not evaluate the condition, tests/infra/test_template.py asserts the private value
  // checkov:skip=CKV_AZURE_189: publicNetworkAccess is Disabled unless publicTrial; same reason, same test
  name: 'kv-${take(name, 8)}-${take(suffix, 10)}'
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: publicTrial ? 'Enabled' : 'Disabled'
    networkAcls: {
      defaultAction: publicTrial ? 'Allow' : 'Deny'
      bypass: 'None'
    }
  }
}

// Written through Azure Resource Manager, which reaches the vault whatever its network rules: no
// one needs a path into the virtual network to set them (docs/deploy.md, step 3).
var slackSecrets = filter([
  { name: 'slack-bot-token', value: slackBotToken }
  { name: 'slack-signing-secret', value: slackSigningSecret }
], secret => !empty(secret.value))

resource slackSecretValues 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in slackSecrets: {
  // checkov:skip=CKV_AZURE_41: Slack's bot token and signing secret do not expire (they are rotated in the Slack app); an expiry date would stop the bot without a new secret
  parent: keyVault
  name: secret.name
  properties: {
    value: secret.value
    contentType: 'text/plain'
  }
}]

resource hostSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, hostIdentity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- private endpoints (private variant): storage's blob, queue and table, and the vault ------------

// none in the PUBLIC TRIAL variant
var privateLinks = isPrivate ? [
  { name: 'blob', target: storage.id, group: 'blob', zone: 'privatelink.blob.${environment().suffixes.storage}' }
  { name: 'queue', target: storage.id, group: 'queue', zone: 'privatelink.queue.${environment().suffixes.storage}' }
  { name: 'table', target: storage.id, group: 'table', zone: 'privatelink.table.${environment().suffixes.storage}' }
  { name: 'vault', target: keyVault.id, group: 'vault', zone: 'privatelink${replace(environment().suffixes.keyvaultDns, 'vault.', 'vaultcore.')}' }
] : []

resource privateZones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for link in privateLinks: {
  name: link.zone
  location: 'global'
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (link, i) in privateLinks: {
  parent: privateZones[i]
  name: 'to-${vnet.name}'
  location: 'global'
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: vnet.id }
  }
}]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [for link in privateLinks: {
  name: 'pe-${name}-${link.name}-${take(suffix, 6)}'
  location: location
  properties: {
    subnet: { id: resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, endpointsSubnet) }
    privateLinkServiceConnections: [
      { name: link.name, properties: { privateLinkServiceId: link.target, groupIds: [link.group] } }
    ]
  }
}]

resource endpointZones 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (link, i) in privateLinks: {
  parent: privateEndpoints[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      { name: link.name, properties: { privateDnsZoneId: privateZones[i].id } }
    ]
  }
}]

// -- Event Hub: Defender for Cloud continuous export ------------------------------------------------

resource eventHubNamespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: 'evhns-${name}-${take(suffix, 10)}'
  location: location
  sku: { name: 'Standard', tier: 'Standard', capacity: 1 } // Standard: a consumer group of our own
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true // no SAS keys: the host receives and Defender sends with Entra ID
  }
}

resource exportHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: eventHubNamespace
  name: 'defender-export'
  properties: {
    partitionCount: 2
    messageRetentionInDays: 7 // a rejected or failed batch can be replayed for a week
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: exportHub
  name: 'remediator'
}

resource hostEventHubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(exportHub.id, hostIdentity.id, roles.eventHubsDataReceiver)
  scope: exportHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Continuous export as a trusted service: Defender's resource provider sends with its own identity
// (learn.microsoft.com/azure/defender-for-cloud/continuous-export-event-hub-firewall).
resource defenderSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(securityProviderPrincipalId)) {
  name: guid(exportHub.id, securityProviderPrincipalId, roles.eventHubsDataSender)
  scope: exportHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
    principalId: securityProviderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

var unhealthy = {
  rules: [
    { propertyJPath: 'properties.status.code', propertyType: 'String', expectedValue: 'Unhealthy', operator: 'Equals' }
  ]
}

resource defenderExport 'Microsoft.Security/automations@2023-12-01-preview' = if (deployDefenderExport) {
  name: 'ExportToEventHub-${name}'
  location: location
  properties: {
    description: 'Defender for Cloud findings to remediator'
    isEnabled: true
    scopes: [
      { description: 'the subscription', scopePath: subscription().id }
    ]
    sources: [
      { eventSource: 'Alerts' }
      { eventSource: 'Assessments', ruleSets: [unhealthy] }
      { eventSource: 'AssessmentsSnapshot', ruleSets: [unhealthy] } // weekly: catches anything missed
      { eventSource: 'SubAssessments' }
    ]
    actions: [
      {
        actionType: 'EventHub'
        eventHubResourceId: exportHub.id
        isTrustedServiceEnabled: true // no connection string: the hub takes no SAS keys
      }
    ]
  }
}

// -- monitoring -------------------------------------------------------------------------------------

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}-${take(suffix, 10)}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

// remediator's own resource logs, as its diagnostics playbooks want every vault, storage service, web app and
// network to send theirs to the workspace (tests/infra/test_own_medicine.py): all of the vault's and the app's
// logs (allLogs covers the audit group and the AuditEvent category the Key Vault definitions name), the blob and
// queue services' reads, writes and deletes with their metrics, the account's metrics, the network's logs.
resource keyVaultAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'remediator-audit'
  scope: keyVault
  properties: {
    workspaceId: workspace.id
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: []
  }
}

resource blobAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'remediator-audit'
  scope: blobService
  properties: {
    workspaceId: workspace.id
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

resource queueAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'remediator-audit'
  scope: queueService
  properties: {
    workspaceId: workspace.id
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

resource storageMetrics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'remediator-audit'
  scope: storage
  properties: {
    workspaceId: workspace.id
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

resource siteAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'remediator-audit'
  scope: site
  properties: {
    workspaceId: workspace.id
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: []
  }
}

resource nsgLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (isPrivate) {
  name: 'remediator-audit'
  scope: nsg
  properties: {
    workspaceId: workspace.id
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: []
  }
}

resource vnetLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (isPrivate) {
  name: 'remediator-audit'
  scope: vnet
  properties: {
    workspaceId: workspace.id
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: []
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}-${take(suffix, 10)}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
  }
}

// -- the Function App ---------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy of a Flex Consumption plan exists only in some regions; a job interrupted by a zone outage stays in the queue and is redelivered
  name: 'plan-${name}-${take(suffix, 10)}'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the Slack and Logic App endpoints must stay public: neither Slack nor workflow automation can reach a private endpoint (docs/deploy.md, "What stays public")
  // checkov:skip=CKV_AZURE_17: client certificates cannot apply: Slack and Logic Apps send none
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales instances itself (maximumInstanceCount) and keeps alwaysReadyHttpInstances warm; there is no fixed instance count to set
  name: 'func-${name}-${take(suffix, 10)}'
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${hostIdentity.id}': {}
      '${executor.id}': {}
      '${broker.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: hostIdentity.id
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: isPrivate ? resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, functionsSubnet) : null
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      http20Enabled: true
      healthCheckPath: '/api/health'
      appSettings: [for setting in items(appSettings): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: hostIdentity.id
          }
        }
      }
      runtime: { name: 'python', version: pythonVersion }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
        alwaysReady: (alwaysReadyHttpInstances > 0) ? [{ name: 'http', instanceCount: alwaysReadyHttpInstances }] : []
      }
    }
  }
  dependsOn: [hostBlobOwner, hostQueueContributor, hostTableContributor, hostSecretsUser, hostEventHubReceiver, packageContainer, endpointZones]
}

// No FTP and no basic-auth deployment: publishing signs in with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

// Every setting the code reads (function_app/settings.py, remediator/config/settings.py); checked by
// tests/function_app/test_settings_coverage.py and documented in docs/deploy.md.
var appSettings = {
  // the Functions host
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: hostIdentity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  PYTHON_SCRIPT_FILE_NAME: 'functions_entry.py'
  // function_app: bindings and identities
  EVENTHUB_CONNECTION__fullyQualifiedNamespace: replace(replace(eventHubNamespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
  EVENTHUB_CONNECTION__credential: 'managedidentity'
  EVENTHUB_CONNECTION__clientId: hostIdentity.properties.clientId
  EVENTHUB_NAME: exportHub.name
  EVENTHUB_CONSUMER_GROUP: consumerGroup.name
  // the store and the queue trigger: an identity-based connection (the account takes no shared key)
  REMEDIATOR_STORAGE_CONNECTION__tableServiceUri: storage.properties.primaryEndpoints.table
  REMEDIATOR_STORAGE_CONNECTION__queueServiceUri: storage.properties.primaryEndpoints.queue
  REMEDIATOR_STORAGE_CONNECTION__credential: 'managedidentity'
  REMEDIATOR_STORAGE_CONNECTION__clientId: hostIdentity.properties.clientId
  JOBS_QUEUE: jobsQueue
  SWEEP_SCHEDULE: sweepSchedule
  RECONCILE_SCHEDULE: reconcileSchedule
  REMEDIATOR_SCAN_SUBSCRIPTIONS: empty(scanManagementGroup) ? (empty(scanSubscriptionIds) ? subscription().subscriptionId : join(scanSubscriptionIds, ',')) : ''
  REMEDIATOR_SCAN_MANAGEMENT_GROUP: scanManagementGroup
  REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID: empty(diagnosticsWorkspaceId) ? workspace.id : diagnosticsWorkspaceId
  REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID: diagnosticsStorageAccountId
  REMEDIATOR_DIAGNOSTICS_EVENT_HUB_AUTHORIZATION_RULE_ID: diagnosticsEventHubAuthorizationRuleId
  REMEDIATOR_DIAGNOSTICS_EVENT_HUB_NAME: diagnosticsEventHubName
  REMEDIATOR_PRIVATE_LINK_SUBNETS: privateLinkSubnets
  REMEDIATOR_PRIVATE_DNS_ZONES: privateDnsZones
  REMEDIATOR_EXPORT_EVENT_HUB_ID: exportHub.id // doctor and the daily reconcile watch each subscription's export to it
  REMEDIATOR_EXPORT_SOURCES: 'Alerts,Assessments,SubAssessments'
  REMEDIATOR_EXPORT_RESOURCE_GROUP: exportResourceGroup
  REMEDIATOR_EXPORT_SILENCE: exportSilence
  REMEDIATOR_CUSTOM_ROLES: customRoles
  AZURE_CLIENT_ID: executor.properties.clientId
  // remediator.config
  REMEDIATOR_CONFIG: ''
  SLACK_BOT_TOKEN: '@Microsoft.KeyVault(VaultName=${keyVault.name};SecretName=slack-bot-token)'
  SLACK_SIGNING_SECRET: '@Microsoft.KeyVault(VaultName=${keyVault.name};SecretName=slack-signing-secret)'
  REMEDIATOR_SLACK_CHANNEL: slackChannel
  REMEDIATOR_SLACK_API_URL: slackApiUrl
  REMEDIATOR_SLACK_TEAM_ID: slackTeamId
  REMEDIATOR_SLACK_ENTERPRISE_ID: slackEnterpriseId
  REMEDIATOR_APPROVER_ROLES: approverRoles
  REMEDIATOR_APPROVERS: approvers
  REMEDIATOR_MIN_QUORUM: string(minQuorum)
  REMEDIATOR_ADMINS: admins
  REMEDIATOR_STORE_URL: 'azure://${storePrefix}'
  REMEDIATOR_PLAYBOOKS_DIR: 'playbooks'
  REMEDIATOR_EXEMPTIONS_FILE: exemptionsFile
  REMEDIATOR_ARM_ENDPOINT: environment().resourceManager
  REMEDIATOR_AUTHORITY_HOST: authorityHost
  REMEDIATOR_GRAPH_ENDPOINT: graphEndpoint
  REMEDIATOR_NAMES_TTL: '1h'
  REMEDIATOR_ELEVATION: elevation
  REMEDIATOR_EXECUTOR_PRINCIPAL_ID: executor.properties.principalId
  REMEDIATOR_BROKER_CLIENT_ID: broker.properties.clientId
  REMEDIATOR_PIM_DURATION: pimDuration
  REMEDIATOR_PROTECTED_PRINCIPALS: join(filter(concat([broker.properties.principalId, hostIdentity.properties.principalId], split(protectedPrincipals, ',')), p => !empty(trim(p))), ',')
  REMEDIATOR_BREAK_GLASS_PRINCIPALS: breakGlassPrincipals
  REMEDIATOR_AUTO_BUDGET_PER_HOUR: string(autoBudgetPerHour)
  REMEDIATOR_UNDO_WINDOW: undoWindow
  REMEDIATOR_REMINDER_BEFORE: reminderBefore
  REMEDIATOR_STORM_THRESHOLD: string(stormThreshold)
  REMEDIATOR_GROUP_WAIT: groupWait
  REMEDIATOR_RESULT_WINDOW: resultWindow
  REMEDIATOR_LOCK_TTL: lockTtl
  REMEDIATOR_MAX_DELIVERIES: string(maxDeliveries)
}

// -- Azure Policy state events → policy_events --------------------------------------------------------

resource policyTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-${name}-policy-states'
  location: 'global'
  properties: {
    source: subscription().id
    topicType: 'Microsoft.PolicyInsights.PolicyStates'
  }
}

resource policyToFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deployPolicyEventSubscription) {
  parent: policyTopic
  name: 'to-${name}-policy-events'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/policy_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.PolicyInsights.PolicyStateCreated'
        'Microsoft.PolicyInsights.PolicyStateChanged'
      ]
      advancedFilters: [
        { operatorType: 'StringIn', key: 'data.complianceState', values: ['NonCompliant'] }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output functionAppName string = site.name
output slackRequestUrl string = 'https://${site.properties.defaultHostName}/api/slack/events'
output healthUrl string = 'https://${site.properties.defaultHostName}/api/health'
output keyVaultName string = keyVault.name
output eventHubResourceId string = exportHub.id
output executorPrincipalId string = executor.properties.principalId
output brokerPrincipalId string = broker.properties.principalId
output brokerCondition string = subscriptionRoles.outputs.brokerCondition
