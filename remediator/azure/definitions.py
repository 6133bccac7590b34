"""Saved Azure Policy definitions (``remediator plan --definitions DIR``), read before the other state.

A Modify fix (``policy.apply-modify``) reads the finding's policy definition by id from the state:
live, ``GET …/policyDefinitions/{name}`` (cached by ``LiveState``); offline, or to try a definition
before it is deployed, from saved files: ``az policy definition show --name <name> > def.json`` (the
flattened shape the CLI prints), ``az policy definition list`` (an array), an ARM GET body, or a
definition file of Azure/azure-policy (``properties.policyRule``). The files are read with the
``--resources`` reader's checks (strict JSON, ids normalised, duplicates folded, conflicts refused),
and each document must be a policy definition with a ``policyRule``: anything else is a one-line
error naming the file and the id.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediator import ids
from remediator.azure.state import SavedState, StateReader
from remediator.errors import StateError

DEFINITION_TYPE = "microsoft.authorization/policydefinitions"


def load_definitions(path: str | Path) -> dict[str, dict[str, Any]]:
    """The definitions saved at ``path`` (a JSON file or a folder of them), by ``ids.key`` of their id."""
    saved = SavedState.from_path(path)
    out: dict[str, dict[str, Any]] = {}
    for doc in saved.documents():
        rid = str(doc.get("id"))
        inner = doc.get("properties")
        props: Mapping[str, Any] = inner if isinstance(inner, Mapping) and "policyRule" in inner else doc
        if ids.type_key(ids.resource_type(rid)) != DEFINITION_TYPE or not isinstance(props.get("policyRule"), Mapping):
            raise StateError(f"{path}: {rid} is not a policy definition (expected an id …/providers/"
                             "Microsoft.Authorization/policyDefinitions/<name> and a policyRule, as "
                             "`az policy definition show --name <name>` saves it)")
        out[ids.key(rid)] = doc
    return out


class WithDefinitions:
    """A ``StateReader``: the saved definitions first, then ``base`` (saved resources or live ARM)."""

    def __init__(self, base: StateReader, definitions: Mapping[str, dict[str, Any]]) -> None:
        self.base = base
        self.definitions = dict(definitions)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        doc = self.definitions.get(ids.key(resource_id))
        return doc if doc is not None else self.base.get(resource_id)

    def list(self, resource_type: str, scope: str) -> builtins.list[dict[str, Any]]:
        return self.base.list(resource_type, scope)

    def role_assignments(self, scope: str, principal_id: str | None = None) -> builtins.list[dict[str, Any]]:
        return self.base.role_assignments(scope, principal_id)
