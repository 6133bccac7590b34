"""The published JSON Schema: valid draft 2020-12, accepts every shipped playbook, refuses typos.

jsonschema is a dev dependency (editors and this test use the schema; the loader never does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediator.actions import REGISTRY
from remediator.playbooks import json_schema
from tests.playbooks.test_loader import ACTIONS, BLOB, PORTS
from tests.support.values import dicts

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "playbooks").glob("*.yaml"))


def _validator(schema: dict[str, Any]) -> Any:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_valid_small_and_closed() -> None:
    schema = json_schema()
    _validator(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert schema["title"]
    # inline and small: a bounded size per registered action (each is one branch of steps[]), over a base
    assert len(json.dumps(schema)) < 10_000 + 600 * len(REGISTRY)
    assert "$defs" not in json.dumps(schema)
    assert "$ref" not in json.dumps(schema)
    for node in dicts(schema):
        if node.get("type") == "object" and ("properties" in node or "patternProperties" in node):
            assert node["additionalProperties"] is False, node


def test_steps_are_one_branch_per_registered_action() -> None:
    steps = json_schema()["properties"]["steps"]["items"]["oneOf"]
    assert [s["properties"]["action"]["const"] for s in steps] == sorted(REGISTRY)
    for step in steps:
        assert step["properties"]["action"].get("description"), step["properties"]["action"]
        assert step["properties"]["params"]["type"] == "object"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_playbook_validates(path: Path) -> None:
    errors = list(_validator(json_schema()).iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert errors == []


def test_unknown_key_and_bad_params_are_refused() -> None:
    validator = _validator(json_schema(ACTIONS))
    assert list(validator.iter_errors(yaml.safe_load(BLOB))) == []
    assert list(validator.iter_errors(yaml.safe_load(PORTS))) == []
    assert not validator.is_valid(yaml.safe_load(BLOB + "priorty: 1\n"))
    assert not validator.is_valid(yaml.safe_load(BLOB.replace("  resource_types", "  resource_type")))
    assert not validator.is_valid(yaml.safe_load(PORTS.replace("ports: [22, 3389]", "ports: [22]\n      x: 1")))
    assert not validator.is_valid(yaml.safe_load(PORTS.replace("[22, 3389]", "[rdp]")))
    assert not validator.is_valid(yaml.safe_load(BLOB.replace("test.fix-blob", "test.fix-blobs")))
    assert not validator.is_valid(yaml.safe_load(PORTS.replace("[S0614TZR7]", "[alice@example.com]")))
    assert not validator.is_valid(yaml.safe_load(PORTS.replace("4h", "4 hours")))
    assert not validator.is_valid(yaml.safe_load(PORTS.replace("4h", "''")))
    where = "  where: {environment: {in: [prod]}}\n  resource_types"
    assert not validator.is_valid(yaml.safe_load(BLOB.replace("  resource_types", where)))


def test_descriptions_come_from_the_fields() -> None:
    schema = json_schema(ACTIONS)
    props = schema["properties"]
    assert "kebab-case" in props["name"]["description"]
    assert props["match"]["properties"]["severity_at_least"]["description"].startswith("Minimum Defender severity")
    ports = next(
        s for s in props["steps"]["items"]["oneOf"] if s["properties"]["action"]["const"] == "test.close-ports"
    )
    assert ports["properties"]["params"]["properties"]["ports"]["description"] == "Ports to close."
    assert ports["required"] == ["action", "params"]
    assert props["approval"]["anyOf"][0] == {
        "const": "auto",
        "description": "Apply without asking (risk: low only).",
    }
