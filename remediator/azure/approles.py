"""The backlog scan of over-permissioned applications (Microsoft Graph application permissions).

One read of Microsoft Graph's own service principal (``GET /v1.0/servicePrincipals?$filter=appId eq
'00000003-0000-0000-c000-000000000000'``: its object id differs per tenant) and one paged list of every app role
assignment granted for it (``GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo``, "List appRoleAssignments
granted for a service principal", https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignedto):
each assignment to a service principal of a role in ``remediator.findings.approles.TENANT_WIDE_DATA`` is a finding,
whatever the playbook's allow-list says (the action leaves an allow-listed app alone: the plan says so). Clients'
app ids come from ``directoryObjects/getByIds`` (the names client); without them the finding still stands.

A Graph failure raises ``DirectoryError`` (one line, ``transient`` when Graph said "later"): the caller reports
the scan incomplete and runs it again; a finding is never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from remediator.azure.directory import DirectoryClient
from remediator.errors import DirectoryError, NamesUnavailable
from remediator.findings.approles import MS_GRAPH_APP_ID, TENANT_WIDE_DATA, finding
from remediator.findings.model import Finding

log = logging.getLogger("remediator.azure.approles")


def graph_service_principal(client: DirectoryClient) -> dict[str, Any]:
    """Microsoft Graph's service principal in this tenant (``DirectoryError`` when Graph has none)."""
    found = client.service_principals(f"appId eq '{MS_GRAPH_APP_ID}'")
    if not found or not isinstance(found[0].get("id"), str):
        raise DirectoryError(f"Microsoft Graph at {client.endpoint} lists no service principal of appId "
                             f"{MS_GRAPH_APP_ID} (Microsoft Graph itself)")
    return found[0]


def scan(client: DirectoryClient) -> list[Finding]:
    """One finding per service principal and tenant-wide Microsoft Graph application permission it holds."""
    graph_sp = graph_service_principal(client)
    assignments = [a for a in client.app_role_assigned_to(str(graph_sp["id"]))
                   if str(a.get("principalType") or "").lower() == "serviceprincipal"
                   and str(a.get("appRoleId") or "").lower() in TENANT_WIDE_DATA and not a.get("deletedDateTime")]
    app_ids = _app_ids(client, [str(a.get("principalId") or "") for a in assignments])
    out = [finding(principal_id=str(a["principalId"]), app_role_id=str(a["appRoleId"]), source="msgraph-scan",
                   app_name=str(a.get("principalDisplayName") or ""),
                   app_id=app_ids.get(str(a.get("principalId") or "").lower(), ""),
                   granted_at=str(a.get("createdDateTime") or ""), assignment_id=str(a.get("id") or ""), raw=a)
           for a in assignments if a.get("principalId")]
    log.info("app role scan: %d tenant-wide Microsoft Graph application permissions held by %d applications",
             len(out), len({f.principal_id for f in out}))
    return out


def _app_ids(client: DirectoryClient, principals: Sequence[str]) -> dict[str, str]:
    try:
        return {oid: p.app_id or "" for oid, p in client.get_by_ids(principals).items()}
    except NamesUnavailable as e:
        log.warning("app role scan: app ids not resolved (%s); the findings name object ids", e)
        return {}
