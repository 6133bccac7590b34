"""infra/*.bicep parsed with pycep-parser: every resource, parameter and output; the private variant
is private; the PUBLIC TRIAL variant is marked; every checkov skip carries a reason; the Python
versions of the template, CI and requirements.txt agree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from tests.conftest import ROOT
from tests.infra.bicep import Template, parse

TEMPLATES = sorted((ROOT / "infra").glob("*.bicep"))
MAIN = ROOT / "infra" / "main.bicep"


def by_type(docs: list[dict[str, Any]], rtype: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["type"].lower() == rtype.lower()]


def one(docs: list[dict[str, Any]], rtype: str) -> dict[str, Any]:
    found = by_type(docs, rtype)
    assert len(found) == 1, f"{rtype}: {len(found)} resources"
    return found[0]


@pytest.fixture(scope="module")
def private() -> list[dict[str, Any]]:
    return Template(MAIN).documents()


@pytest.fixture(scope="module")
def trial() -> list[dict[str, Any]]:
    return Template(MAIN, {"publicTrial": True}).documents()


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_template_parses_with_every_declaration(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parsed = parse(path)
    declared = {kind: re.findall(rf"^{kind} (\w+) ", text, re.MULTILINE) for kind in ("param", "resource", "output")}
    assert sorted(parsed["parameters"]) == sorted(declared["param"])
    assert sorted(parsed["resources"]) == sorted(declared["resource"])
    assert sorted(parsed["outputs"]) == sorted(declared["output"])
    for name, spec in parsed["resources"].items():
        assert re.fullmatch(r"[A-Za-z]+\.[A-Za-z]+/[A-Za-z/]+", spec["type"]), name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", spec["api_version"]), name
    Template(path).documents()  # every resource renders


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_string_literal_names_a_symbol(path: Path) -> None:
    """pycep gives ``'x'`` and ``x`` one shape: a literal equal to a symbol name would be misread."""
    t = Template(path)
    literals = set(re.findall(r"'([A-Za-z_][A-Za-z0-9_]*)'", path.read_text(encoding="utf-8")))
    assert literals & t.symbols() == set()


def test_key_vault_and_storage_are_private(private: list[dict[str, Any]]) -> None:
    storage = one(private, "Microsoft.Storage/storageAccounts")["properties"]
    assert storage["publicNetworkAccess"] == "Disabled"
    assert storage["networkAcls"]["defaultAction"] == "Deny"
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    vault = one(private, "Microsoft.KeyVault/vaults")["properties"]
    assert vault["publicNetworkAccess"] == "Disabled"
    assert vault["networkAcls"]["defaultAction"] == "Deny"
    assert vault["enablePurgeProtection"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enableRbacAuthorization"] is True


def test_private_endpoints_reach_blob_queue_table_and_the_vault(private: list[dict[str, Any]]) -> None:
    storage = one(private, "Microsoft.Storage/storageAccounts")["id"]
    vault = one(private, "Microsoft.KeyVault/vaults")["id"]
    subnets = {s["name"]: s for s in one(private, "Microsoft.Network/virtualNetworks")["properties"]["subnets"]}
    links = {(c["properties"]["privateLinkServiceId"], c["properties"]["groupIds"][0])
             for pe in by_type(private, "Microsoft.Network/privateEndpoints")
             for c in pe["properties"]["privateLinkServiceConnections"]}
    assert links == {(storage, "blob"), (storage, "queue"), (storage, "table"), (vault, "vault")}
    for pe in by_type(private, "Microsoft.Network/privateEndpoints"):
        assert pe["properties"]["subnet"]["id"].endswith("/subnets/private-endpoints")
    zones = {z["name"] for z in by_type(private, "Microsoft.Network/privateDnsZones")}
    assert zones == {"privatelink.blob.core.windows.net", "privatelink.queue.core.windows.net",
                     "privatelink.table.core.windows.net", "privatelink.vaultcore.azure.net"}
    assert len(by_type(private, "Microsoft.Network/privateDnsZones/virtualNetworkLinks")) == 4
    assert len(by_type(private, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups")) == 4
    delegations = subnets["functions"]["properties"]["delegations"]
    assert [d["properties"]["serviceName"] for d in delegations] == ["Microsoft.App/environments"]


def test_the_function_app_is_vnet_integrated_and_locked_down(private: list[dict[str, Any]]) -> None:
    site = one(private, "Microsoft.Web/sites")["properties"]
    assert site["virtualNetworkSubnetId"].endswith("/subnets/functions")
    assert site["httpsOnly"] is True
    config = site["siteConfig"]
    assert config["ftpsState"] == "Disabled"
    assert config["remoteDebuggingEnabled"] is False
    assert config["healthCheckPath"] == "/api/health"
    assert config["minTlsVersion"] == "1.2"
    policies = {d["name"]: d["properties"]["allow"]
                for d in by_type(private, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")}
    assert policies == {"ftp": False, "scm": False}
    health = parse(MAIN)["outputs"]["healthUrl"]["value"]
    assert health.endswith(config["healthCheckPath"])


def test_event_hub_takes_no_keys_and_tls_1_2(private: list[dict[str, Any]]) -> None:
    hub = one(private, "Microsoft.EventHub/namespaces")["properties"]
    assert hub["disableLocalAuth"] is True
    assert hub["minimumTlsVersion"] == "1.2"
    assert by_type(private, "Microsoft.EventHub/namespaces/eventhubs/authorizationRules") == []
    export = one(private, "Microsoft.Security/automations")["properties"]
    assert [a.get("isTrustedServiceEnabled") for a in export["actions"]] == [True]
    assert all("connectionString" not in a for a in export["actions"])


def test_no_secret_is_written_by_default(private: list[dict[str, Any]]) -> None:
    assert by_type(private, "Microsoft.KeyVault/vaults/secrets") == []
    docs = Template(MAIN, {"slackBotToken": "xoxb-1", "slackSigningSecret": "s"}).documents()
    assert sorted(d["name"] for d in by_type(docs, "Microsoft.KeyVault/vaults/secrets")) == \
        ["slack-bot-token", "slack-signing-secret"]


def test_public_trial_variant_is_marked_and_drops_the_private_network(trial: list[dict[str, Any]]) -> None:
    spec = parse(MAIN)["parameters"]["publicTrial"]
    assert spec["default"] is False
    description = next(d["argument"] for d in spec["decorators"] if d["type"] == "description")
    assert description.startswith("PUBLIC TRIAL VARIANT")
    assert one(trial, "Microsoft.Storage/storageAccounts")["properties"]["publicNetworkAccess"] == "Enabled"
    assert one(trial, "Microsoft.KeyVault/vaults")["properties"]["publicNetworkAccess"] == "Enabled"
    for rtype in ("Microsoft.Network/virtualNetworks", "Microsoft.Network/privateEndpoints",
                  "Microsoft.Network/privateDnsZones"):
        assert by_type(trial, rtype) == []
    assert one(trial, "Microsoft.Web/sites")["properties"]["virtualNetworkSubnetId"] is None
    # what stays the same in both variants
    assert one(trial, "Microsoft.EventHub/namespaces")["properties"]["disableLocalAuth"] is True
    assert one(trial, "Microsoft.Storage/storageAccounts")["properties"]["allowSharedKeyAccess"] is False


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_checkov_skip_names_a_check_and_a_reason(path: Path) -> None:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if "checkov:skip" in line:
            assert re.search(r"// checkov:skip=CKV2?_AZURE_\d+: \S.{20,}", line), f"{path.name}:{n}: {line.strip()}"


def test_python_versions_agree() -> None:
    """The template's default, CI's interpreter (pyproject's mypy/ruff target) and the markers."""
    default = parse(MAIN)["parameters"]["pythonVersion"]["default"]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'python_version = "{default}"' in pyproject
    assert f'target-version = "py{default.replace(".", "")}"' in pyproject
    assert "3.11" in (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    lines = [ln.split("#", 1)[0].strip() for ln in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    functions = [Requirement(ln) for ln in lines if ln.startswith("azure-functions")]
    for python, major in (("3.10", "1"), ("3.11", "1"), ("3.12", "1"), ("3.13", "2"), ("3.14", "2")):
        env = {"python_version": python, "python_full_version": python + ".0"}
        chosen = [r for r in functions if r.marker is None or Marker(str(r.marker)).evaluate(env)]
        assert len(chosen) == 1, python
        assert chosen[0].specifier.contains(f"{major}.99"), (python, str(chosen[0].specifier))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_conditions_of_ternaries_are_parenthesised(path: Path) -> None:
    """pycep-parser 0.5 binds ``a > 0 ? x : y`` as ``a > (0 ? x : y)`` (and ``!a ? x : y`` as
    ``!(a ? x : y)``): a condition with an operator is written in parentheses, so that the parse
    that checkov and these tests read is the one Bicep deploys."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        code = line.split("//", 1)[0]
        if " ? " not in code:
            continue
        before = code.split(" ? ", 1)[0].rstrip()
        if before.endswith(")"):
            continue  # parenthesised (or a function call)
        condition = re.split(r"[:=(\[,]\s*", before)[-1].strip()
        if re.search(r"==|!=|>|<|&&|\|\||^!", condition):
            pytest.fail(f"{path.name}:{n}: parenthesise the condition: {line.strip()}")
