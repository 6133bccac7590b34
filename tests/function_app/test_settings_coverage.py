"""Every setting the code reads is set by infra/main.bicep, present in local.settings.example.json and
documented in docs/deploy.md; the template's roles and ABAC condition match the actions.

The template is read parsed (pycep-parser, ``tests.infra.bicep``), not matched as text: the app
settings are the rendered ``appSettings`` variable (the site's ``siteConfig.appSettings``).

The names come from the code: the ``Settings`` fields found by walking remediator/config/settings.py's AST,
mapped to variables by ``remediator.config.settings.env_name``; ``REMEDIATOR_CONFIG``; the settings
``function_app`` reads (``function_app.settings.OWN_SETTINGS``); and the worker's
``PYTHON_SCRIPT_FILE_NAME``. A scan of every ``os.environ``/``getenv``/``env.get`` read with a
literal name in the packages catches a setting read anywhere else.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path
from typing import Any

from function_app import settings as fa
from remediator.actions import REGISTRY
from remediator.config import settings as config
from remediator.store import CONNECTION_ENV
from tests.conftest import ROOT
from tests.infra.bicep import Template, parse

SUB_ROLES_TEXT = (ROOT / "infra" / "subscription-roles.bicep").read_text(encoding="utf-8")


# The templates are parsed when a test first needs them, not when the module is collected (each parse
# takes a good part of a second, paid by every run and every worker otherwise).
@functools.cache
def main_template() -> Template:
    return Template(ROOT / "infra" / "main.bicep")


@functools.cache
def parsed(name: str) -> dict[str, Any]:
    return parse(ROOT / "infra" / name)
# identity-based connections: the prefix is satisfied by its __ settings (the Functions convention)
IDENTITY_SUFFIXES = ("__queueServiceUri", "__tableServiceUri", "__fullyQualifiedNamespace", "__accountName")
DEPLOY_DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
NOT_IN_AZURE = {"SLACK_APP_TOKEN": "Socket Mode (local development) only; the Function App serves Slack over HTTP",
                "REMEDIATOR_INGEST_TOKEN": "remediator serve only; the Functions ingest route needs a function key"}
# read by the command line only, never by the Function App
CLI_ONLY = {"REMEDIATOR_DEBUG"}


def settings_fields() -> list[str]:
    tree = ast.parse((ROOT / "remediator" / "config" / "settings.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    return [s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]


def required() -> set[str]:
    return {config.env_name(f) for f in settings_fields()} | {config.CONFIG_ENV, "PYTHON_SCRIPT_FILE_NAME"} \
        | set(fa.OWN_SETTINGS)


def bicep_app_settings() -> dict[str, object]:
    """The rendered app settings: name → value (a ``<unknown: …>`` string when only Azure knows it)."""
    settings = main_template().var("appSettings")
    assert isinstance(settings, dict), "infra/main.bicep has no `var appSettings = {…}` object"
    site = next(d for d in main_template().documents() if d["type"] == "Microsoft.Web/sites")
    assert {s["name"] for s in site["properties"]["siteConfig"]["appSettings"]} == set(settings)
    return {str(k): str(v) if not isinstance(v, str | int | bool) else v for k, v in settings.items()}


def set_by_template(name: str, template: dict[str, object]) -> bool:
    return name in template or any(name + suffix in template for suffix in IDENTITY_SUFFIXES)


def local_values() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    return values


def test_fields_found_by_the_ast_are_the_settings() -> None:
    assert tuple(settings_fields()) == config.FIELDS


def test_every_setting_is_set_by_the_template() -> None:
    template = bicep_app_settings()
    missing = {name for name in required() if not set_by_template(name, template)} - set(NOT_IN_AZURE)
    assert missing == set()


def test_every_setting_is_in_local_settings_example() -> None:
    assert required() - set(local_values()) == set()


def test_every_setting_is_documented() -> None:
    undocumented = {name for name in required() if f"`{name}`" not in DEPLOY_DOC}
    assert undocumented == set()
    for name, why in NOT_IN_AZURE.items():
        assert f"`{name}`" in DEPLOY_DOC, why


def test_template_sets_nothing_unknown() -> None:
    host = {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
            "APPLICATIONINSIGHTS_CONNECTION_STRING", "EVENTHUB_CONNECTION__credential", "EVENTHUB_CONNECTION__clientId"}
    host |= {f"{CONNECTION_ENV}__{k}" for k in ("tableServiceUri", "queueServiceUri", "credential", "clientId")}
    assert set(bicep_app_settings()) - required() - host == set()


def test_no_setting_is_read_anywhere_else() -> None:
    """Literal names read from the environment in the packages are all known settings."""
    read: dict[str, list[str]] = {}
    for package in ("remediator", "bot", "function_app"):
        for path in (ROOT / package).rglob("*.py"):
            if "testing" in path.parts:
                continue
            for name in _env_reads(path):
                read.setdefault(name, []).append(str(path.relative_to(ROOT)))
    unknown = {n: where for n, where in read.items() if n not in required() | CLI_ONLY | {CONNECTION_ENV}}
    assert unknown == {}


def test_store_connection_is_the_stores_own_variable() -> None:
    assert fa.STORAGE_CONNECTION == CONNECTION_ENV


def test_values_agree_between_template_local_settings_and_host_json() -> None:
    bicep, local = bicep_app_settings(), local_values()
    assert bicep["PYTHON_SCRIPT_FILE_NAME"] == local["PYTHON_SCRIPT_FILE_NAME"] == "functions_entry.py"
    assert bicep["REMEDIATOR_STORE_URL"] == local["REMEDIATOR_STORE_URL"] == "azure://remediator"
    assert bicep["JOBS_QUEUE"] == local["JOBS_QUEUE"] == "remediator-jobs"
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    default = parsed("main.bicep")["parameters"]["maxDeliveries"]["default"]
    assert int(bicep["REMEDIATOR_MAX_DELIVERIES"]) == default == int(local["REMEDIATOR_MAX_DELIVERIES"]) \
        == host["extensions"]["queues"]["maxDequeueCount"] - 1
    assert str(bicep["SLACK_BOT_TOKEN"]).startswith("@Microsoft.KeyVault(VaultName=kv-")
    assert str(bicep["SLACK_SIGNING_SECRET"]).startswith("@Microsoft.KeyVault(VaultName=kv-")
    # the store and the queue trigger: identity-based (the account takes no shared key), the host identity
    assert CONNECTION_ENV not in bicep
    assert bicep[f"{CONNECTION_ENV}__credential"] == "managedidentity"
    assert parsed("main.bicep")["variables"]["appSettings"]["value"][f"{CONNECTION_ENV}__clientId"] == \
        parsed("main.bicep")["variables"]["appSettings"]["value"]["AzureWebJobsStorage__clientId"]


def test_template_roles_are_the_actions_roles() -> None:
    declared = {role.id for action in REGISTRY.values()
                # advice: no grant; a Microsoft Graph application permission is no Azure role (doctor checks it)
                if not action.writes_nothing and not action.directory_permissions
                for role in ((() if action.role_from_plan else (action.role,)) + action.extra_roles)}
    listed = set(main_template().var("actionRoleIds"))
    rbac = main_template().var("rbacActionRoleId")
    eligibility = main_template().var("eligibilityActionRoleId")
    assert REGISTRY["rbac.revoke-role-assignments"].role.id == rbac
    assert REGISTRY["rbac.make-eligible"].role.id == eligibility
    assert listed | {rbac, eligibility} == declared
    assert rbac not in listed  # opt-in only (allowRbacRevocation)
    assert eligibility not in listed
    assert main_template().var("assignableRoleIds") == main_template().var("actionRoleIds")
    opted = Template(ROOT / "infra" / "main.bicep", {"allowRbacRevocation": True})
    assert set(opted.var("assignableRoleIds")) == declared
    # policy.apply-modify grants its definitions' roles: those the deployment lists (modifyRoleIds), added
    contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    modify = Template(ROOT / "infra" / "main.bicep", {"modifyRoleIds": [contributor]})
    assert modify.var("assignableRoleIds") == [*main_template().var("actionRoleIds"), contributor]


def test_broker_condition_constrains_roles_and_the_executor_on_write_and_delete() -> None:
    roles = parsed("subscription-roles.bicep")
    text = str(roles["variables"]["brokerCondition"]["value"]).replace("\\'", "'")
    assert text.count("(") == text.count(")")
    for source, action in (("Request", "write"), ("Resource", "delete")):
        assert f"!(ActionMatches{{'Microsoft.Authorization/roleAssignments/{action}'}})" in text
        assert (f"@{source}[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
                "{${roleSet}}") in text
        assert (f"@{source}[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals "
                "{${executorPrincipalId}}") in text
    broker = roles["resources"]["brokerRbacAdministrator"]["config"]["properties"]
    assert broker["conditionVersion"] == "2.0"
    assert broker["condition"] == "brokerCondition"
    assert roles["variables"]["rbacAdministratorRoleId"]["value"] == "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
    assert roles["variables"]["readerRoleId"]["value"] == "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    assert "// Role Based Access Control Administrator" in SUB_ROLES_TEXT


def _env_reads(path: Path) -> set[str]:
    """Names in ``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")``, ``env.get("X")``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        arg: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            owner = ast.unparse(node.func.value)
            if (node.func.attr == "get" and owner.endswith(("environ", "env"))) or node.func.attr == "getenv":
                arg = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            arg = node.slice
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", arg.value):
            names.add(arg.value)
    return names
