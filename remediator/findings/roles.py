"""Azure's privileged built-in roles: which standing role assignments the backlog scan brings as findings.

GUIDs from Microsoft's built-in roles reference (MicrosoftDocs/azure-docs
``articles/role-based-access-control/built-in-roles/``: privileged.md for Owner, Contributor, User Access
Administrator and Role Based Access Control Administrator; ai-machine-learning.md for Azure AI Administrator;
security.md for Key Vault Administrator; storage.md for Storage Blob Data Owner). A role's GUID is the same
in every tenant; ``roleDefinitionId`` carries it as its last segment.

Kept below the actions and the Resource Graph scan (both read it): the findings layer.
"""

from __future__ import annotations

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
AZURE_AI_ADMINISTRATOR = "b78c5d69-af96-48a3-bf8d-a8b4d589de94"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"

PRIVILEGED_ROLES: dict[str, str] = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
    AZURE_AI_ADMINISTRATOR: "Azure AI Administrator",
    KEY_VAULT_ADMINISTRATOR: "Key Vault Administrator",
    STORAGE_BLOB_DATA_OWNER: "Storage Blob Data Owner",
}
"""GUID → display name of the roles a standing assignment of which is worth a finding."""

ROLE_ASSIGNMENT_WRITE = "microsoft.authorization/roleassignments/write"
"""The ARM operation of a role assignment write (MicrosoftDocs/azure-docs articles/role-based-access-control/
permissions/management-and-governance.md), lower-cased as ``Finding.type``."""


def role_guid(role_definition_id: object) -> str:
    """The GUID at the end of a ``roleDefinitionId`` (lower-case); ``""`` when absent."""
    return str(role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()
