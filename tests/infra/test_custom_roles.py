"""infra/custom-roles.bicep creates exactly remediator's custom roles (remediator/actions/custom_roles.py): the
same deterministic ids, names and actions, no wildcard, assignable where the deployment says; main.bicep deploys
it and lets the broker grant each role."""

from __future__ import annotations

from remediator.actions.custom_roles import CUSTOM_ROLES, definition_document
from tests.conftest import ROOT
from tests.infra.bicep import SUBSCRIPTION, Template

CUSTOM = ROOT / "infra" / "custom-roles.bicep"
MAIN = ROOT / "infra" / "main.bicep"


def _definitions(params: dict[str, object] | None = None) -> dict[str, dict[str, object]]:
    docs = Template(CUSTOM, params or {}).documents()
    return {str(d["name"]): d for d in docs if d["type"] == "Microsoft.Authorization/roleDefinitions"}


def test_the_template_creates_each_custom_role_as_remediator_declares_it() -> None:
    created = _definitions()
    assert sorted(created) == sorted(r.id for r in CUSTOM_ROLES.values())
    for role in CUSTOM_ROLES.values():
        want = definition_document(role, [f"/subscriptions/{SUBSCRIPTION}"])["properties"]
        assert created[role.id]["properties"] == want, role.key


def test_the_roles_are_assignable_where_the_deployment_says() -> None:
    scopes = ["/subscriptions/9d3f1c2e-0b4a-4e8f-a1d2-6c7b8e9f0a13",
              "/providers/Microsoft.Management/managementGroups/data"]
    for doc in _definitions({"assignableScopes": scopes}).values():
        assert doc["properties"]["assignableScopes"] == scopes  # type: ignore[index]


def test_main_deploys_them_and_the_broker_may_grant_them() -> None:
    main = Template(MAIN)
    assert {r.id for r in CUSTOM_ROLES.values()} <= set(main.var("actionRoleIds"))
    assert "customRoleDefinitions" in main.modules()
    assert "module customRoleDefinitions 'custom-roles.bicep' = if (deployCustomRoles) {" in MAIN.read_text("utf-8")
