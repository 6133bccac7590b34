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
// (allowRbacRevocation): see docs/deploy.md, "The RBAC action".
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

@description('Principals the RBAC action never revokes, beside remediator\'s own identities (comma-separated object ids).')
param protectedPrincipals string = ''

param autoBudgetPerHour int = 20
param undoWindow string = '24h'
param reminderBefore string = ''
param stormThreshold int = 5

@description('How long a new approval request waits for others of its playbook and resource group to share one digest (e.g. 10s, 1m).')
param groupWait string = '10s'
param lockTtl string = '15m'

@description('Deliveries of a job before it is poison; host.json maxDequeueCount must be this + 1.')
param maxDeliveries int = 5

@description('Exemptions file path, relative to the app root, or empty.')
param exemptionsFile string = ''

@description('Entra authority host for sovereign clouds, or empty for the public cloud.')
param authorityHost string = ''

@description('NCRONTAB schedule of the sweep (expiry, reminders, lost applies).')
param sweepSchedule string = '0 */5 * * * *'

@description('NCRONTAB schedule of the backlog scan and reconcile (Resource Graph): daily by default.')
param reconcileSchedule string = '0 0 3 * * *'

@description('Subscriptions the scan covers; empty: this one. The executor needs Reader on each: deploy subscription-roles.bicep there.')
param scanSubscriptionIds array = []

@description('Or a management group the scan covers (then assign the executor Reader on it; see docs/deploy.md).')
param scanManagementGroup string = ''

@minValue(0)
param alwaysReadyHttpInstances int = 1

@description('Create Defender for Cloud continuous export (alerts, unhealthy assessments, sub-assessments) to the Event Hub.')
param deployDefenderExport bool = true

@description('Second pass, after the code is published: route Azure Policy state events to the policy_events function.')
param deployPolicyEventSubscription bool = false

// Least-privileged roles of the registered actions (remediator/actions; checked by a test)
var actionRoleIds = [
  '17d1049b-9a84-46fb-8f53-869881c3d3ab' // Storage Account Contributor: storage.*
  '4d97b98b-1d4f-4787-a291-c67834d212e7' // Network Contributor: network.restrict-inbound
  '3bc748fc-213d-45c1-8d91-9da5725539b9' // Container Registry Contributor and Data Access Configuration Administrator: acr.*
]
var rbacActionRoleId = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator: rbac.*
var assignableRoleIds = allowRbacRevocation ? concat(actionRoleIds, [rbacActionRoleId]) : actionRoleIds

var suffix = uniqueString(resourceGroup().id, name)
var storePrefix = 'remediator'
var jobsQueue = '${storePrefix}-jobs'
var deploymentContainer = 'app-package'
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

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

// -- storage: the Functions host, the deployment package, and the store's tables and queue ----------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${take(name, 8)}${take(suffix, 12)}'
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true // the store (REMEDIATOR_STORAGE_CONNECTION) uses the account key
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
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

// -- Key Vault: the Slack secrets (set after deployment) and the store's connection string ----------

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${take(name, 8)}-${take(suffix, 10)}'
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 30
    enablePurgeProtection: true
  }
}

resource storageConnection 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'storage-connection'
  properties: {
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
  }
}

resource hostSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, hostIdentity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// -- Event Hub: Defender for Cloud continuous export ------------------------------------------------

resource eventHubNamespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: 'evhns-${name}-${take(suffix, 10)}'
  location: location
  sku: { name: 'Standard', tier: 'Standard', capacity: 1 } // Standard: a consumer group of our own
  properties: {
    minimumTlsVersion: '1.2'
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

resource defenderSend 'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01' = {
  parent: exportHub
  name: 'defender-send'
  properties: {
    rights: ['Send'] // continuous export authenticates with a send-only key
  }
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
        connectionString: defenderSend.listKeys().primaryConnectionString
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
  name: 'plan-${name}-${take(suffix, 10)}'
  location: location
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
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
    keyVaultReferenceIdentity: hostIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
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
      runtime: { name: 'python', version: '3.11' }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
        alwaysReady: alwaysReadyHttpInstances > 0 ? [{ name: 'http', instanceCount: alwaysReadyHttpInstances }] : []
      }
    }
  }
  dependsOn: [hostBlobOwner, hostQueueContributor, hostSecretsUser, hostEventHubReceiver, packageContainer]
}

// Every setting the code reads (function_app/settings.py, remediator/config.py); checked by
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
  REMEDIATOR_STORAGE_CONNECTION: '@Microsoft.KeyVault(SecretUri=${storageConnection.properties.secretUri})'
  JOBS_QUEUE: jobsQueue
  SWEEP_SCHEDULE: sweepSchedule
  RECONCILE_SCHEDULE: reconcileSchedule
  REMEDIATOR_SCAN_SUBSCRIPTIONS: empty(scanManagementGroup) ? (empty(scanSubscriptionIds) ? subscription().subscriptionId : join(scanSubscriptionIds, ',')) : ''
  REMEDIATOR_SCAN_MANAGEMENT_GROUP: scanManagementGroup
  AZURE_CLIENT_ID: executor.properties.clientId
  // remediator.config
  REMEDIATOR_CONFIG: ''
  SLACK_BOT_TOKEN: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=slack-bot-token)'
  SLACK_SIGNING_SECRET: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=slack-signing-secret)'
  REMEDIATOR_SLACK_CHANNEL: slackChannel
  REMEDIATOR_SLACK_API_URL: slackApiUrl
  REMEDIATOR_SLACK_TEAM_ID: slackTeamId
  REMEDIATOR_SLACK_ENTERPRISE_ID: slackEnterpriseId
  REMEDIATOR_APPROVERS: approvers
  REMEDIATOR_MIN_QUORUM: string(minQuorum)
  REMEDIATOR_ADMINS: admins
  REMEDIATOR_STORE_URL: 'azure://${storePrefix}'
  REMEDIATOR_PLAYBOOKS_DIR: 'playbooks'
  REMEDIATOR_EXEMPTIONS_FILE: exemptionsFile
  REMEDIATOR_ARM_ENDPOINT: environment().resourceManager
  REMEDIATOR_AUTHORITY_HOST: authorityHost
  REMEDIATOR_ELEVATION: elevation
  REMEDIATOR_EXECUTOR_PRINCIPAL_ID: executor.properties.principalId
  REMEDIATOR_BROKER_CLIENT_ID: broker.properties.clientId
  REMEDIATOR_PIM_DURATION: pimDuration
  REMEDIATOR_PROTECTED_PRINCIPALS: join(filter(concat([broker.properties.principalId, hostIdentity.properties.principalId], split(protectedPrincipals, ',')), p => !empty(trim(p))), ',')
  REMEDIATOR_AUTO_BUDGET_PER_HOUR: string(autoBudgetPerHour)
  REMEDIATOR_UNDO_WINDOW: undoWindow
  REMEDIATOR_REMINDER_BEFORE: reminderBefore
  REMEDIATOR_STORM_THRESHOLD: string(stormThreshold)
  REMEDIATOR_GROUP_WAIT: groupWait
  REMEDIATOR_LOCK_TTL: lockTtl
  REMEDIATOR_MAX_DELIVERIES: string(maxDeliveries)
}

resource siteSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
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
  dependsOn: [siteSettings]
}

output functionAppName string = site.name
output slackRequestUrl string = 'https://${site.properties.defaultHostName}/api/slack/events'
output healthUrl string = 'https://${site.properties.defaultHostName}/api/health'
output keyVaultName string = vault.name
output eventHubResourceId string = exportHub.id
output executorPrincipalId string = executor.properties.principalId
output brokerPrincipalId string = broker.properties.principalId
output brokerCondition string = subscriptionRoles.outputs.brokerCondition
