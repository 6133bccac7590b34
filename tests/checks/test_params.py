"""The parameter checks are the models' validators and the fast path's, one function each; a check
that depends on the model class (``per_class``) gets the class's arguments on both paths."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field, ValidationError, field_validator

from remediator.actions import REGISTRY
from remediator.actions.base import Params, no_items
from remediator.checks import params as checks
from remediator.playbooks import fastcheck
from remediator.playbooks.fastcheck_schema import translate


def _limited(values: list[int], limit: int) -> list[int]:
    if any(v > limit for v in values):
        raise ValueError(f"at most {limit}")
    return values


class _Small(Params):
    limit: ClassVar[int] = 3
    sizes: list[int] = Field(default_factory=no_items)
    _sizes = field_validator("sizes")(checks.per_class(_limited, lambda cls: {"limit": cls.limit}))


class _Large(_Small):
    limit: ClassVar[int] = 10


def test_per_class_passes_each_class_its_own_arguments() -> None:
    assert _Large(sizes=[7]).sizes == [7]
    with pytest.raises(ValidationError, match="at most 3"):
        _Small(sizes=[7])


def test_the_schema_bakes_per_class_arguments_but_only_for_a_check_it_can_call() -> None:
    # _limited lives in a test module (not a light one): the fast path must not decide these params
    node = translate(_Small.__pydantic_core_schema__)
    assert node["fields"]["sizes"]["schema"]["t"] == "unsure"


def test_the_shipped_firewall_check_is_baked_with_the_services_refused_prefixes() -> None:
    params = REGISTRY["storage.restrict-network-access"].Params
    node = translate(params.__pydantic_core_schema__)
    ranges = node["fields"]["allowed_ip_ranges"]["schema"]
    assert ranges["check"] == "remediator.checks.params:valid_ip_ranges"
    assert ranges["args"] == {"refused_prefixes": [31]}
    assert fastcheck.check(node, {"allowed_ip_ranges": ["203.0.113.7/32"]}).allowed_ip_ranges == ["203.0.113.7"]
    with pytest.raises(fastcheck._Doubt):
        fastcheck.check(node, {"allowed_ip_ranges": ["203.0.113.6/31"]})


@pytest.mark.parametrize(("check", "bad", "message"), [
    (checks.nsg_ports, [22, "70000"], "outside 0-65535"),
    (checks.nsg_sources, ["0.0.0.0/0"], "whole Internet"),
    (checks.rbac_roles, ["Admin"], "unknown role 'Admin'"),
    (checks.policy_refs, ["not-a-policy"], "policy definition GUID"),
    (checks.peering_subscriptions, ["nope"], "not a subscription id"),
    (checks.vault_url, "http://kv.vault.azure.net", "not a vault URL"),
    (checks.disk_encryption_set_id, "/subscriptions/x", "not a disk encryption set id"),
])
def test_each_check_refuses_in_one_line_naming_the_item(check: checks.Check, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        check(bad)
    assert "\n" not in str(err.value)
