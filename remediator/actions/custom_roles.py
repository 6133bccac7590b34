"""Custom roles: least privilege where Azure has no built-in role narrower than Contributor.

No built-in role narrower than Contributor writes Synapse workspaces, Databricks workspaces, App Service
Environments or Storage Sync services (MicrosoftDocs/azure-docs ``articles/role-based-access-control/
built-in-roles/``: analytics.md lists no Synapse or Databricks control-plane role; web-and-mobile.md's Website
Contributor covers ``Microsoft.Web/sites/*`` only; storage.md's Azure File Sync Administrator also assigns
roles and reads storage account keys), and remediator never grants Contributor (tests/actions/
test_registry.py, ``TOO_BROAD``). So each such type has a custom role here, holding exactly the operations its
actions write (the resource provider operations reference, learn.microsoft.com/azure/role-based-access-control/
permissions/analytics (Microsoft.Synapse, Microsoft.Databricks), permissions/web-and-mobile (Microsoft.Web),
permissions/storage (Microsoft.StorageSync)):

* the deployment creates each one (``infra/custom-roles.bicep``, docs/deploy.md "Custom roles") under a
  **deterministic id**: ``uuid5(NAMESPACE_URL, "remediator:custom-role:<key>")``, the same in every tenant, so
  the template, the broker's ABAC condition and remediator agree without configuration. A custom role is one
  tenant-wide definition whose ``assignableScopes`` list the subscriptions (or a management group) it may be
  assigned at; it cannot be ``/`` (learn.microsoft.com/azure/role-based-access-control/role-definitions,
  "AssignableScopes"), and its ``roleName`` must be unique in the tenant;
* a deployment that already has such a role maps the key to its id instead (``custom_roles`` setting,
  ``REMEDIATOR_CUSTOM_ROLES=synapse-workspace-settings=<guid>``);
* the plan (:class:`NeedsCustomRole`) names the resolved role on every change (``Change.roles``: what the
  approvers approve, what PIM grants) and reads its definition first: a role that does not exist at the
  resource's subscription, is not assignable there, or lacks an operation the write needs is **refused**,
  naming the role, the setting and how to create it. Nothing ever falls back to a broader role;
* ``remediator doctor`` checks the same at every scanned subscription before anything runs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from remediator import ids
from remediator.actions.base import CustomRole, GrantNeed, PlanContext
from remediator.actions.change import Change
from remediator.azure.reader import register_read_version
from remediator.errors import ActionError

SETTING = "custom_roles"
ENV = "REMEDIATOR_CUSTOM_ROLES"
ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"
ROLE_DEFINITIONS_API = "2022-04-01"  # authorization/…/stable/2022-04-01 RoleDefinitions_Get
register_read_version(ROLE_DEFINITIONS, ROLE_DEFINITIONS_API)  # the plan reads the definition (Reader may)
HOW = ("create it: deploy infra/custom-roles.bicep at the subscription (docs/deploy.md, \"Custom roles\"), or map "
       f"{SETTING}.{{key}} ({ENV}) to the id of an equivalent role you created")


def _role(key: str, guid: str, name: str, description: str, *actions: str) -> CustomRole:
    return CustomRole(name, guid, key=key, actions=actions, description=description)


# Microsoft.Synapse (permissions/analytics): the workspace (publicNetworkAccess, Workspaces_Update), the two
# workspace settings written as child resources (AzureADOnlyAuthentications_Create, WorkspaceManagedSqlServer-
# DedicatedSQLminimalTlsSettings_Update) and IP firewall rules (IpFirewallRules_Delete; _CreateOrUpdate for undo's
# re-creation; synapse/…/stable/2021-06-01).
SYNAPSE_WORKSPACE_SETTINGS = _role(
    "synapse-workspace-settings", "75e0f5c6-5aa7-59a9-96e2-b238edef0dd4",
    "remediator Synapse Workspace Settings Writer",
    "remediator: close the public network access of a Synapse workspace, remove its IP firewall rules, turn on "
    "Microsoft Entra-only authentication and set the dedicated SQL minimal TLS version; nothing else (no data, no "
    "SQL pools, no role assignments)",
    "Microsoft.Synapse/workspaces/read", "Microsoft.Synapse/workspaces/write",
    "Microsoft.Synapse/workspaces/azureADOnlyAuthentications/read",
    "Microsoft.Synapse/workspaces/azureADOnlyAuthentications/write",
    "Microsoft.Synapse/workspaces/dedicatedSQLminimalTlsSettings/read",
    "Microsoft.Synapse/workspaces/dedicatedSQLminimalTlsSettings/write",
    "Microsoft.Synapse/workspaces/firewallRules/read", "Microsoft.Synapse/workspaces/firewallRules/write",
    "Microsoft.Synapse/workspaces/firewallRules/delete")
# Microsoft.Databricks (permissions/analytics): Workspaces_CreateOrUpdate, the only write of a workspace's
# properties (its PATCH takes tags only; databricks/…/stable/2024-05-01).
DATABRICKS_WORKSPACE_NETWORK = _role(
    "databricks-workspace-network", "07d47562-493d-5ab1-ab9f-43adc1de56d1",
    "remediator Databricks Workspace Network Writer",
    "remediator: close the public network access and public IPs of a Databricks workspace; no workspace data, "
    "no delete, no role assignments",
    "Microsoft.Databricks/workspaces/read", "Microsoft.Databricks/workspaces/write")
# Microsoft.Web (permissions/web-and-mobile): AppServiceEnvironments_Update (web/…/stable/2024-11-01), the
# environment's clusterSettings.
APP_SERVICE_ENVIRONMENT_SETTINGS = _role(
    "app-service-environment-settings", "d6c715e8-147e-50df-a88f-d9c3c72f0147",
    "remediator App Service Environment Settings Writer",
    "remediator: set the cluster settings of an App Service Environment (TLS versions, cipher suites, internal "
    "encryption); no apps, no plans, no delete",
    "Microsoft.Web/hostingEnvironments/read", "Microsoft.Web/hostingEnvironments/write")
# Microsoft.StorageSync (permissions/storage): StorageSyncServices_Update (storagesync/…/stable/2022-09-01).
STORAGE_SYNC_NETWORK = _role(
    "storage-sync-network", "22194abf-4baf-52e6-a85d-1edec08e5b1c",
    "remediator Storage Sync Network Writer",
    "remediator: restrict the incoming traffic of an Azure File Sync service to private endpoints; no sync groups, "
    "no registered servers, no storage keys",
    "Microsoft.StorageSync/storageSyncServices/read", "Microsoft.StorageSync/storageSyncServices/write")

CUSTOM_ROLES: dict[str, CustomRole] = {r.key: r for r in (
    SYNAPSE_WORKSPACE_SETTINGS, DATABRICKS_WORKSPACE_NETWORK, APP_SERVICE_ENVIRONMENT_SETTINGS, STORAGE_SYNC_NETWORK)}


def resolve(role: CustomRole, settings: Mapping[str, Any]) -> CustomRole:
    """``role`` with the id ``settings[custom_roles]`` maps its key to, else its deterministic id."""
    mapping = settings.get(SETTING) or {}
    return role.mapped(mapping if isinstance(mapping, Mapping) else {})


def definition_id(role: CustomRole, subscription: str) -> str:
    """The role definition's id as ARM serves it at ``subscription``."""
    return f"/subscriptions/{subscription}/providers/{ROLE_DEFINITIONS}/{role.id}"


def definition_document(role: CustomRole, assignable_scopes: Sequence[str]) -> dict[str, Any]:
    """The role definition document (authorization 2022-04-01 ``RoleDefinition``) the template creates, at the
    first assignable scope's subscription."""
    sub = ids.parse(assignable_scopes[0]).subscription_id or "00000000-0000-0000-0000-000000000000"
    return {"id": definition_id(role, sub), "name": role.id, "type": ROLE_DEFINITIONS,
            "properties": {"roleName": role.name, "type": "CustomRole", "description": role.description,
                           "assignableScopes": list(assignable_scopes),
                           "permissions": [{"actions": list(role.actions), "notActions": [], "dataActions": [],
                                            "notDataActions": []}]}}


def _allows(permissions: Any, operation: str) -> bool:
    op = operation.lower()
    for entry in permissions if isinstance(permissions, list) else ():
        if not isinstance(entry, Mapping):
            continue
        if any(fnmatch.fnmatchcase(op, str(a).lower()) for a in entry.get("actions") or ()) and \
                not any(fnmatch.fnmatchcase(op, str(n).lower()) for n in entry.get("notActions") or ()):
            return True
    return False


def _covers(scope: str, target: str) -> bool:
    """Whether an assignable ``scope`` covers ``target``: at or above it; a management group is taken to
    (ARM checks its ancestry; remediator cannot see it with Reader)."""
    low = scope.strip().lower()
    return low.startswith("/providers/microsoft.management/managementgroups/") or ids.is_under(target, scope)


def problem(role: CustomRole, doc: Mapping[str, Any] | None, target: str, operations: Sequence[str]) -> str | None:
    """What is wrong with ``role``'s definition ``doc`` (None: not found) for a write to ``target`` needing
    ``operations``; None when it is usable."""
    where = ids.parse(target).subscription_id or target
    if doc is None:
        return f"not found at /subscriptions/{where}"
    raw = doc.get("properties")
    props: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    scopes = [str(s) for s in props.get("assignableScopes") or ()]
    if not any(_covers(s, target) for s in scopes):
        return f"not assignable at {target} (its assignable scopes: {', '.join(scopes) or 'none'})"
    missing = [op for op in operations if not _allows(props.get("permissions"), op)]
    if missing:
        return f"lacks {', '.join(missing)}"
    return None


def refusal_line(role: CustomRole, what: str) -> str:
    """The one line of a refusal for ``role``: what is wrong, which setting names it, how to fix it."""
    return (f"custom role '{role.name}' ({role.id}, {SETTING}.{role.key}) is {what}: remediator grants it and never "
            f"a broader role; {HOW.format(key=role.key)}")


class NeedsCustomRole:
    """Mixin (first base) of an action whose ``role`` is a :class:`CustomRole`: each plan resolves the role
    through the settings, checks its definition in the state (refusing, never falling back) and names it on
    every change; ``grants`` and ``undo`` keep it."""

    def custom_role(self) -> CustomRole:
        """The action's shipped custom role (its ``role``)."""
        role = getattr(self, "role", None)
        if not isinstance(role, CustomRole):
            raise TypeError(f"{type(self).__name__}: NeedsCustomRole needs a CustomRole as role, got {role!r}")
        return role

    def plan(self, ctx: PlanContext, params: Any) -> list[Change]:
        changes: list[Change] = super().plan(ctx, params)  # type: ignore[misc]
        if not changes:
            return changes  # compliant: no grant needed, nothing to check
        name, permissions = str(getattr(self, "name", "")), tuple(getattr(self, "permissions", ()))
        role = resolve(self.custom_role(), ctx.settings)
        own = [c for c in changes if c.action == name]  # not a private endpoint the plan builds first
        for change in own:
            sub = ids.parse(change.resource_id).subscription_id or ""
            doc = ctx.state.get(definition_id(role, sub))
            wrong = problem(role, doc, change.resource_id, permissions)
            if wrong:
                hint = "" if doc is not None else (
                    f"; offline, save it next to the resources with `az role definition list --name \"{role.name}\" "
                    "--query [0]`")
                raise ActionError(f"refused: {refusal_line(role, wrong)}{hint}", action=name,
                                  resource_id=change.resource_id)
        return [replace(c, roles=((role.id, role.name),)) if c.action == name else c for c in changes]

    def grants(self, change: Change) -> list[GrantNeed]:
        shipped = self.custom_role()
        guid = change.roles[0][0] if change.roles else shipped.id
        scope: str = self.grant_scope(change)  # type: ignore[attr-defined]
        return [GrantNeed(scope, shipped.mapped({shipped.key: guid}), "a custom role")]

    def undo(self, change: Change) -> Change:
        back: Change = super().undo(change)  # type: ignore[misc]
        return replace(back, roles=change.roles)
