"""Meta-tests over the action registry: every action declares what least privilege needs, and its
docstring example is a playbook that runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from remediator.actions import REGISTRY, Action, suggest
from remediator.actions.base import Params
from remediator.playbooks.loader import load_playbook_file
from tests.support.builders import docstring_playbook

PERMISSION = re.compile(r"^Microsoft\.[A-Za-z]+(/[A-Za-z]+)+/(read|write|delete|action)$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAME = re.compile(r"^[a-z]+\.[a-z]+(-[a-z]+)+$")
# Roles that hold "*" or "Microsoft.Authorization/*": never acceptable as an action's role.
TOO_BROAD = {"Owner", "Contributor", "User Access Administrator"}
# The one exception, and why: PIM eligibility requests (Microsoft.Authorization/roleEligibilityScheduleRequests/
# write) are held by no narrower built-in role; Role Based Access Control Administrator holds only roleAssignments/
# write and /delete (MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/privileged.md).
# The grant is time-bound, on the one assignment's scope, behind a quorum of 2 (docs/deploy.md, "PIM eligibility").
BROAD_BY_NECESSITY = {"rbac.make-eligible": ("User Access Administrator",
                                             "Microsoft.Authorization/roleEligibilityScheduleRequests/write")}

ACTIONS = sorted(REGISTRY.items())


def test_the_four_families_are_registered() -> None:
    assert set(REGISTRY) >= {
        "storage.disable-public-blob-access", "storage.restrict-network-access", "network.restrict-inbound",
        "rbac.revoke-role-assignments", "acr.disable-admin-user", "acr.rotate-credentials",
    }


@pytest.mark.parametrize(("name", "action"), ACTIONS)
def test_action_declares_its_contract(name: str, action: Action) -> None:  # type: ignore[type-arg]
    assert NAME.match(name), f"{name}: names are <service>.<verb-noun>, kebab-case"
    assert issubclass(action.Params, Params)
    assert action.Params.model_config.get("extra") == "forbid"
    schema = action.Params.model_json_schema()
    assert schema.get("additionalProperties") is False
    assert action.resource_types, f"{name}: declares no resource types"
    assert action.permissions, f"{name}: declares no RBAC operations"
    for op in action.permissions:
        assert PERMISSION.match(op), f"{name}: {op!r} is not an RBAC operation"
    assert GUID.match(action.role.id), f"{name}: role id {action.role.id!r} is not a role definition GUID"
    if name in BROAD_BY_NECESSITY:
        role, needed = BROAD_BY_NECESSITY[name]
        assert (action.role.name, needed in action.permissions) == (role, True), name
    else:
        assert action.role.name not in TOO_BROAD, f"{name}: {action.role.name} is not least privilege"
    for field, prop in schema.get("properties", {}).items():
        description = prop.get("description") or ""
        assert description, f"{name}: {field} has no description"
        assert "\n" not in description, f"{name}: {field}'s description is not one line"
    assert action.__doc__, f"{name}: no docstring"
    assert "```yaml" in action.__doc__, f"{name}: docstring carries no playbook example"


@pytest.mark.parametrize(("name", "action"), ACTIONS)
def test_docstring_example_is_a_playbook_of_the_action(name: str, action: Action, tmp_path: Path) -> None:  # type: ignore[type-arg]
    path = tmp_path / "example.yaml"
    path.write_text(docstring_playbook(action), encoding="utf-8")
    assert [s.action for s in load_playbook_file(path).steps] == [name]


def test_unknown_action_suggestions() -> None:
    assert suggest("storage.disable-public-blob-acess") == "did you mean 'storage.disable-public-blob-access'?"
    assert suggest("zzz").startswith("valid actions: ")


def _scalar_fields(params: type[Params]) -> list[tuple[str, type]]:
    import types
    import typing

    out: list[tuple[str, type]] = []
    for name, f in params.model_fields.items():
        union = typing.get_origin(f.annotation) in (typing.Union, types.UnionType)
        kinds = {a for a in (typing.get_args(f.annotation) if union else (f.annotation,)) if a is not type(None)}
        if kinds in ({bool}, {int}):
            out.append((f.alias or name, next(iter(kinds))))
    return out


@pytest.mark.parametrize(("name", "action"), ACTIONS)
def test_boolean_and_integer_params_take_only_their_type(name: str, action: Action[Params]) -> None:
    """The schema says boolean (integer): "yes", "off", 1 (or "5", true) are errors, never converted."""
    from pydantic import ValidationError

    for field, kind in _scalar_fields(action.Params):
        wrong: tuple[object, ...] = ("yes", "off", 1, 0, "true") if kind is bool else ("5", True, 2.0)
        for value in wrong:
            with pytest.raises(ValidationError) as err:
                action.Params.model_validate({field: value})
            assert any(e["loc"] == (field,) for e in err.value.errors()), (name, field, value)


class _BaseDocParams(Params):
    shared: int = 1
    """Inherited:
    read from the base class."""


class _DocParams(_BaseDocParams):
    ports: tuple[int, ...] = ()
    """Ports to close,
       on one line in the schema."""
    mode: str = Field("deny", description="Written out, so the docstring below is not used.")
    """Not this."""
    bare: bool = False


def test_field_docstrings_become_descriptions_when_a_schema_is_made() -> None:
    """The string under a field is its description, as pydantic's use_attribute_docstrings would make
    it, but read when the schema is made rather than when the action is imported."""
    assert _DocParams.model_fields["ports"].description is None  # not read on import
    props = _DocParams.model_json_schema()["properties"]
    assert props["ports"]["description"] == "Ports to close, on one line in the schema."
    assert props["mode"]["description"] == "Written out, so the docstring below is not used."
    assert props["shared"]["description"] == "Inherited: read from the base class."
    assert "description" not in props["bare"]
