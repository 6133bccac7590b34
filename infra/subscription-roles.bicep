// Subscription-scope role assignments for remediator (deployed as a module by main.bicep).
//
// executor: Reader. It plans from live state and holds no standing write role; every write runs
//           under a PIM time-bound assignment that the broker creates for one resource. Reader is
//           also all the backlog scan needs: Resource Graph returns only what the caller can read,
//           and Reader (*/read) covers resources, Microsoft.Security assessments, sub-assessments and
//           alerts, and Microsoft.PolicyInsights policy states.
// broker:   Role Based Access Control Administrator, with an ABAC condition: it may create and
//           delete role assignments only of the roles the actions declare, and only for the
//           executor. Condition format: learn.microsoft.com/azure/role-based-access-control/
//           delegate-role-assignments-examples ("Constrain roles and specific groups") and
//           conditions-authorization-actions-attributes (RoleDefinitionId, PrincipalId).
targetScope = 'subscription'

@description('Object id of the executor identity.')
param executorPrincipalId string

@description('Object id of the broker identity.')
param brokerPrincipalId string

@description('Role definition GUIDs the broker may assign to the executor (the actions\' roles).')
param assignableRoleIds array

var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader
var rbacAdministratorRoleId = 'f58310d9-a9f6-439a-9e8d-f62e7b41a168' // Role Based Access Control Administrator

var roleSet = join(assignableRoleIds, ', ')
// write: the request's role and principal; delete: the existing assignment's role and principal
var brokerCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleSet}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {${executorPrincipalId}})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${roleSet}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {${executorPrincipalId}}))'

resource executorReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, executorPrincipalId, readerRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: executorPrincipalId
    principalType: 'ServicePrincipal'
    description: 'remediator executor: reads state to plan; writes only under PIM grants'
  }
}

resource brokerRbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, brokerPrincipalId, rbacAdministratorRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', rbacAdministratorRoleId)
    principalId: brokerPrincipalId
    principalType: 'ServicePrincipal'
    condition: brokerCondition
    conditionVersion: '2.0'
    description: 'remediator broker: PIM assignments of the actions\' roles to the executor only'
  }
}

output brokerCondition string = brokerCondition
