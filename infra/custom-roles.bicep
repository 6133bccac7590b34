// remediator's custom roles (deployed as a module by main.bicep, or on its own at a subscription):
//
//   az deployment sub create -l <region> -f infra/custom-roles.bicep -p assignableScopes='["/subscriptions/<id>"]'
//
// Where no built-in role narrower than Contributor writes a type (Synapse workspaces, Databricks workspaces, App
// Service Environments, Storage Sync services), remediator grants one of these instead, and never a broader role
// (remediator/actions/custom_roles.py holds the same ids and actions; tests/infra checks that they agree). Each
// role holds exactly the operations its actions write (the resource provider operations reference,
// learn.microsoft.com/azure/role-based-access-control/permissions/).
//
// A custom role is one definition per tenant: its id is deterministic (the same in every tenant), its roleName
// unique in the tenant, and its assignableScopes (subscriptions or a management group, never "/") are where PIM
// may grant it (learn.microsoft.com/azure/role-based-access-control/role-definitions, "AssignableScopes"): list
// every subscription remediator remediates, or their management group. Deploying again replaces the list.
targetScope = 'subscription'

@description('Where the roles may be assigned: the subscriptions remediator remediates, or their management group (/providers/Microsoft.Management/managementGroups/<id>). Empty: this subscription.')
param assignableScopes array = []

var scopes = empty(assignableScopes) ? [subscription().id] : assignableScopes

var customRoles = [
  {
    id: '75e0f5c6-5aa7-59a9-96e2-b238edef0dd4' // uuid5(NAMESPACE_URL, 'remediator:custom-role:synapse-workspace-settings')
    key: 'synapse-workspace-settings'
    roleName: 'remediator Synapse Workspace Settings Writer'
    description: 'remediator: close the public network access of a Synapse workspace, remove its IP firewall rules, turn on Microsoft Entra-only authentication and set the dedicated SQL minimal TLS version; nothing else (no data, no SQL pools, no role assignments)'
    actions: [
      'Microsoft.Synapse/workspaces/read'
      'Microsoft.Synapse/workspaces/write'
      'Microsoft.Synapse/workspaces/azureADOnlyAuthentications/read'
      'Microsoft.Synapse/workspaces/azureADOnlyAuthentications/write'
      'Microsoft.Synapse/workspaces/dedicatedSQLminimalTlsSettings/read'
      'Microsoft.Synapse/workspaces/dedicatedSQLminimalTlsSettings/write'
      'Microsoft.Synapse/workspaces/firewallRules/read'
      'Microsoft.Synapse/workspaces/firewallRules/write'
      'Microsoft.Synapse/workspaces/firewallRules/delete'
    ]
  }
  {
    id: '07d47562-493d-5ab1-ab9f-43adc1de56d1' // uuid5(NAMESPACE_URL, 'remediator:custom-role:databricks-workspace-network')
    key: 'databricks-workspace-network'
    roleName: 'remediator Databricks Workspace Network Writer'
    description: 'remediator: close the public network access and public IPs of a Databricks workspace; no workspace data, no delete, no role assignments'
    actions: [
      'Microsoft.Databricks/workspaces/read'
      'Microsoft.Databricks/workspaces/write'
    ]
  }
  {
    id: 'd6c715e8-147e-50df-a88f-d9c3c72f0147' // uuid5(NAMESPACE_URL, 'remediator:custom-role:app-service-environment-settings')
    key: 'app-service-environment-settings'
    roleName: 'remediator App Service Environment Settings Writer'
    description: 'remediator: set the cluster settings of an App Service Environment (TLS versions, cipher suites, internal encryption); no apps, no plans, no delete'
    actions: [
      'Microsoft.Web/hostingEnvironments/read'
      'Microsoft.Web/hostingEnvironments/write'
    ]
  }
  {
    id: '22194abf-4baf-52e6-a85d-1edec08e5b1c' // uuid5(NAMESPACE_URL, 'remediator:custom-role:storage-sync-network')
    key: 'storage-sync-network'
    roleName: 'remediator Storage Sync Network Writer'
    description: 'remediator: restrict the incoming traffic of an Azure File Sync service to private endpoints; no sync groups, no registered servers, no storage keys'
    actions: [
      'Microsoft.StorageSync/storageSyncServices/read'
      'Microsoft.StorageSync/storageSyncServices/write'
    ]
  }
]

resource roleDefinitions 'Microsoft.Authorization/roleDefinitions@2022-04-01' = [for role in customRoles: {
  name: role.id
  properties: {
    roleName: role.roleName
    description: role.description
    type: 'CustomRole'
    permissions: [
      {
        actions: role.actions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: scopes
  }
}]

output roleIds array = [for role in customRoles: role.id]
