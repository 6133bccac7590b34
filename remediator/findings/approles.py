"""Over-permissioned applications: Microsoft Graph application permissions with tenant-wide data access.

An application permission is an *app role assignment*: the client app's service principal (``principalId``)
holds an app role (``appRoleId``) of a resource service principal (``resourceId``), here Microsoft Graph's
(``appId`` ``00000003-0000-0000-c000-000000000000``). Such a permission works without a signed-in user and
across the whole tenant: ``Files.Read.All`` reads every file in every OneDrive and SharePoint site, which is
how a model's training data and weights leave a data lake nobody watches. Two sources give the same finding:

* the backlog scan (``remediator.azure.approles.scan``): Microsoft Graph's ``appRoleAssignedTo`` list;
* Entra audit events: the activity "Add app role assignment to service principal" (category
  ``ApplicationManagement``, https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities),
  either as a Graph ``directoryAudit`` (``activityDisplayName``, ``initiatedBy``, ``targetResources`` with
  ``modifiedProperties``, https://learn.microsoft.com/graph/api/resources/directoryaudit) or as a record of
  the Entra diagnostic-settings export to Event Hub or storage (``{"records": [{"category": "AuditLogs",
  "operationName": "Add app role assignment to service principal", "properties": <the directoryAudit>}]}``).
  The event's first target resource is the service principal that was granted the role; its modified
  properties ``AppRole.Id`` and ``AppRole.Value`` name the role (values are JSON strings, ``"\\"…\\""``).
  The event only says *that* something was granted: the action re-reads the assignments live before it plans.

The finding: ``kind`` ``operation``, ``type`` :data:`OPERATION` (what a playbook lists under
``match.operations``), ``resource_id`` ``msgraph:/servicePrincipals/<client object id>`` (type
:data:`RESOURCE_TYPE`; not an ARM id: nothing is granted through PIM for it), ``principal_id`` the client's
object id, ``id`` ``approle:<client object id>:<app role id>`` (the scan and the audit event of one grant
deduplicate), ``additional_data`` the facts a reviewer needs (``permission``, ``approleid``, ``appid``,
``appdisplayname``, ``grantedby``, ``grantedat``).

:data:`TENANT_WIDE_DATA` lists Microsoft Graph application permissions (app role ids) with tenant-wide
data access, from the Microsoft Graph permissions reference (https://learn.microsoft.com/graph/permissions-reference,
"Application" identifier of each permission).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from remediator import _json
from remediator.findings.model import Finding, Ignored, Record, Severity

MS_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OPERATION = "microsoft.graph/serviceprincipals/approleassignments/write"
RESOURCE_TYPE = "Microsoft.Graph/servicePrincipals"
RESOURCE_PREFIX = "msgraph:/servicePrincipals/"
AUDIT_ACTIVITY = "add app role assignment to service principal"

# Microsoft Graph application permissions (app role ids) with tenant-wide data access, from the Microsoft Graph
# permissions reference (https://learn.microsoft.com/graph/permissions-reference): value -> application identifier.
TENANT_WIDE_DATA: dict[str, str] = {
    "01d4889c-1287-42c6-ac1f-5d1e02578ef6": "Files.Read.All",
    "75359482-378d-4052-8f01-80520e7db3cd": "Files.ReadWrite.All",
    "332a536c-c7ef-4017-ab91-336970924f0d": "Sites.Read.All",
    "9492366f-7969-46a4-8d15-ed1a20078fff": "Sites.ReadWrite.All",
    "0c0bf378-bf22-4481-8f81-9e89a9b4960a": "Sites.Manage.All",
    "a82116e5-55eb-4c41-a434-62fe8a61c773": "Sites.FullControl.All",
    "7ab1d382-f21e-4acd-a863-ba3e13f7da61": "Directory.Read.All",
    "19dbc75e-c2e2-444c-a770-ec69d8559fc7": "Directory.ReadWrite.All",
    "810c84a8-4a9e-49e6-bf7d-12d183f40d01": "Mail.Read",
    "e2a3a72e-5f79-4c64-b1b1-878b674786c9": "Mail.ReadWrite",
    "b633e1c5-b582-4048-a93e-9f11b44c7e96": "Mail.Send",
    "3aeca27b-ee3a-4c2b-8ded-80376e2134a4": "Notes.Read.All",
    "0c458cef-11f3-48c2-a568-c66751c238c0": "Notes.ReadWrite.All",
    "6b7d71aa-70aa-4810-a8d9-5d9fb2830017": "Chat.Read.All",
    "7b2449af-6ccd-4f4d-9f78-e550c193f0d1": "ChannelMessage.Read.All",
    "62a82d76-70ea-41e2-9197-370581804d09": "Group.ReadWrite.All",
    "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9": "Application.ReadWrite.All",
    "06b708a9-e830-4db3-a914-8e69da51d44f": "AppRoleAssignment.ReadWrite.All",
    "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8": "RoleManagement.ReadWrite.Directory",
}
PERMISSION_IDS: dict[str, str] = {name.lower(): guid for guid, name in TENANT_WIDE_DATA.items()}

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def resource_id(sp_object_id: str) -> str:
    """The finding's resource: ``msgraph:/servicePrincipals/<object id>``."""
    return RESOURCE_PREFIX + sp_object_id.strip().lower()


def sp_of(resource: str) -> str | None:
    """The service principal object id of ``msgraph:/servicePrincipals/<id>``; None for anything else."""
    if not resource.lower().startswith(RESOURCE_PREFIX.lower()):
        return None
    oid = resource[len(RESOURCE_PREFIX):].strip().strip("/").lower()
    return oid if _GUID.match(oid) else None


def finding(*, principal_id: str, app_role_id: str, source: str, app_id: str = "", app_name: str = "",
            granted_by: str = "", granted_at: str = "", assignment_id: str = "",
            raw: Mapping[str, Any] | None = None) -> Finding:
    """The finding of one tenant-wide Microsoft Graph application permission held by ``principal_id``."""
    oid, role = principal_id.strip().lower(), app_role_id.strip().lower()
    permission = TENANT_WIDE_DATA.get(role, role)
    who = app_name or oid
    facts = {"permission": permission, "approleid": role, "appid": app_id, "appdisplayname": app_name,
             "grantedby": granted_by, "grantedat": granted_at, "assignmentid": assignment_id}
    by = f" by {granted_by}" if granted_by else ""
    at = f" on {granted_at}" if granted_at else ""
    return Finding(
        id=f"approle:{oid}:{role}", kind="operation", type=OPERATION,
        title=f"Application {who} holds Microsoft Graph {permission} (tenant-wide data access)",
        severity=Severity.HIGH, status="Granted", resource_id=resource_id(oid), subscription_id=None,
        resource_group=None, resource_type=RESOURCE_TYPE, source=source, principal_id=oid,
        description=f"Microsoft Graph application permission {permission} granted to {who}"
                    f"{f' (app {app_id})' if app_id else ''}{by}{at}",
        extended_properties={k: v for k, v in facts.items() if v}, additional_data=facts, raw=dict(raw or {}),
    )


def is_audit(lk: Mapping[str, Any]) -> bool:
    """An Entra audit record (lower-cased keys): a ``directoryAudit`` or a diagnostic export ``AuditLogs`` record."""
    if "activitydisplayname" in lk and "targetresources" in lk:
        return True
    category = lk.get("category")
    return isinstance(category, str) and category.lower() == "auditlogs" and isinstance(lk.get("properties"), dict)


def audit_record(rec: Mapping[str, Any], lk: Mapping[str, Any]) -> Record:
    """A finding for "Add app role assignment to service principal" granting a :data:`TENANT_WIDE_DATA` role of
    Microsoft Graph; ``Ignored`` with the reason for any other activity, role or a failed one. Raises
    ``_json.FieldError`` (the parser names the record) when the activity lacks what identifies the grant."""
    audit = dict(lk) if "activitydisplayname" in lk else _json.lower_keys(lk["properties"])
    activity = str(audit.get("activitydisplayname") or audit.get("operationname") or lk.get("operationname") or "")
    audit_id = str(audit.get("id") or lk.get("correlationid") or "")
    if activity.strip().lower() != AUDIT_ACTIVITY:
        return Ignored(reason=f"Entra audit activity {activity or '(none)'}: not an app role assignment",
                       source="entra-audit")
    result = str(audit.get("result") or lk.get("resulttype") or "success").lower()
    if result not in ("success", "succeeded"):
        return Ignored(reason=f"Entra audit {activity}: result {result}, nothing was granted", id=audit_id or None,
                       source="entra-audit")
    targets = audit.get("targetresources")
    if not isinstance(targets, list) or not targets or not isinstance(targets[0], Mapping):
        raise _json.FieldError("Entra audit event without targetResources (the service principal granted the role)")
    target = _json.lower_keys(targets[0])
    principal = str(target.get("id") or "").strip().lower()
    if not _GUID.match(principal):
        raise _json.FieldError("targetResources[0].id is not a service principal object id (a GUID)")
    props = _modified(targets)
    role = props.get("approle.id", "").lower()
    if not _GUID.match(role):
        raise _json.FieldError("Entra audit event without the modified property AppRole.Id (the app role granted)")
    if role not in TENANT_WIDE_DATA:  # app role ids are GUIDs: one of these is Microsoft Graph's whatever API it names
        value = props.get("approle.value") or role
        return Ignored(reason=f"app role {value} is not a Microsoft Graph permission with tenant-wide data access",
                       id=audit_id or None, source="entra-audit")
    by = audit.get("initiatedby")
    initiated = _json.lower_keys(by) if isinstance(by, Mapping) else {}
    return finding(principal_id=principal, app_role_id=role, source="entra-audit",
                   app_name=str(target.get("displayname") or ""),
                   app_id=props.get("approleassignment.principalappid", ""), granted_by=_initiator(initiated),
                   granted_at=str(audit.get("activitydatetime") or lk.get("time") or ""), raw=rec)


def _modified(targets: list[Any]) -> dict[str, str]:
    """``modifiedProperties`` of every target, display name (lower) → new value, JSON-string quotes removed."""
    out: dict[str, str] = {}
    for t in targets:
        if not isinstance(t, Mapping):
            continue
        for p in _json.lower_keys(t).get("modifiedproperties") or ():
            if not isinstance(p, Mapping):
                continue
            lp = _json.lower_keys(p)
            name, value = str(lp.get("displayname") or "").lower(), lp.get("newvalue")
            if name and name not in out:
                out[name] = _unquote(value)
    return out


def _unquote(value: Any) -> str:
    if not isinstance(value, str):
        return "" if value is None else str(value)
    text = value.strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    if isinstance(decoded, list) and decoded:
        decoded = decoded[0]
    return str(decoded).strip() if decoded is not None else ""


def _initiator(initiated: Mapping[str, Any]) -> str:
    """Who granted it: a user's UPN, else an app's display name (and id)."""
    user = initiated.get("user")
    if isinstance(user, Mapping):
        lu = _json.lower_keys(user)
        return str(lu.get("userprincipalname") or lu.get("displayname") or lu.get("id") or "")
    app = initiated.get("app")
    if isinstance(app, Mapping):
        la = _json.lower_keys(app)
        name = str(la.get("displayname") or "")
        sp = str(la.get("serviceprincipalid") or la.get("appid") or "")
        return f"application {name} ({sp})" if name and sp else name or sp
    return ""
