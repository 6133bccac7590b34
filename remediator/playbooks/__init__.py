"""Playbooks: load a folder of YAML strictly, match findings to it, honour exemptions.

The public API (pinned by ``tests/test_playbooks_shipped.py``)::

    load_playbooks(source, base=None) -> PlaybookSet  # PlaybookError listing every problem
    validate_playbooks(source, base=None) -> list[Issue]  # the same problems, not raised
    PlaybookSet.match(finding, tags) -> Playbook | None
    load_exemptions(path) -> Exemptions               # ExemptionsError
    Exemptions.find(resource_id, playbook, today=...) -> Exemption | None
    exemption_from_tags(tags) -> str | None
    json_schema() -> dict                             # for editors; never used to load

A playbook file (one per remediation; ``*.yaml``/``*.yml`` directly in the folder)::

    name: storage-disable-public-blob-access   # kebab-case, unique in the folder
    description: One or two sentences shown to approvers.
    priority: 10                               # only when two playbooks claim the same finding: the
                                               # higher wins; one without a priority ranks below any
    enabled: true                              # false: claims nothing (validate lists it as disabled)
    match:                                     # at least one of recommendations, alerts, policies
      recommendations: [<assessment key GUID>]
      alerts: [Storage.Blob_OpenACL, RDP_Incoming_BF_*]     # globs: * and ? (quote a leading *)
      policies: [<policy definition GUID or full id>]
      resource_types: [Microsoft.Storage/storageAccounts]   # required; "subscription" for
                                                            # subscription-scoped findings
      severity_at_least: Medium        # findings without a severity never satisfy it
      subscriptions: [<GUID>]          # optional scope
      resource_groups: [rg-prod-*]     # optional scope, globs
      where:                           # tags; names and values case-insensitive
        tags.environment: {not_in: [sandbox]}   # the resource's; exactly one of in, not_in, equals, exists
        resource_group.tags.env: {equals: prod} # its resource group's
    risk: low                          # low | medium | high
    approval: auto                     # risk: low only; otherwise:
    # approval: {mode: slack, approvers: [security-oncall, …], quorum: 2,
    #            expires_after: 4h (5m..14d, default 4h), remind_after: 1h}
    # approvers are roles (lower-case kebab; the deployment maps them to Slack ids in
    # approver_roles: remediator.config.roles) or, in a deployment's own playbooks, Slack
    # user (U…/W…) and user-group (S…) ids
    steps:
      - action: storage.disable-public-blob-access
        params: {}                     # the action's Params

``source`` is a folder, a file or several; with ``base`` (the shipped folder) it is an overlay:
a playbook named like a base one replaces it, a file of only ``name: x`` and ``enabled: false``
disables base playbook ``x``, any other is added; every check below runs on the combined set.

Rules the loader enforces beyond types: approval auto needs risk low; slack needs approvers;
risk high needs quorum >= 2; quorum cannot exceed the listed users (groups and roles have many
members); every step's action handles every listed resource type; policies cannot be combined with
severity_at_least; two playbooks that could claim the same finding need distinct priorities
(disabled ones claim nothing).

Modules: ``yamlload`` (YAML → values with lines, safe), ``formats`` (field checks, no pydantic),
``model`` (the file as written), ``playbook`` (the playbook as used), ``loader`` (the passes),
``fastcheck`` (``validate``'s fast path), ``match``, ``exemptions``, ``schema``.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from remediator.playbooks.exemptions import (
        EXEMPT_TAG,
        Exemption,
        Exemptions,
        exemption_from_tags,
        load_exemptions,
        validate_exemptions,
    )
    from remediator.playbooks.formats import parse_duration
    from remediator.playbooks.loader import load_playbook_file, load_playbooks, validate_playbooks
    from remediator.playbooks.match import PlaybookSet
    from remediator.playbooks.playbook import Approval, MatchSpec, Playbook, Step, TagCondition
    from remediator.playbooks.schema import json_schema

# Imported on first use (PEP 562): ``remediator validate``'s fast path imports this package's
# pydantic-free modules (``formats``, ``yamlload``, ``loader``, ``fastcheck``) without the models,
# the exemptions and the schema, which import pydantic and the actions.
_HOME = {
    "EXEMPT_TAG": "exemptions",
    "Exemption": "exemptions",
    "Exemptions": "exemptions",
    "exemption_from_tags": "exemptions",
    "load_exemptions": "exemptions",
    "validate_exemptions": "exemptions",
    "load_playbook_file": "loader",
    "load_playbooks": "loader",
    "validate_playbooks": "loader",
    "PlaybookSet": "match",
    "Approval": "playbook",
    "MatchSpec": "playbook",
    "Playbook": "playbook",
    "Step": "playbook",
    "TagCondition": "playbook",
    "parse_duration": "formats",
    "json_schema": "schema",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "EXEMPT_TAG",
    "Approval",
    "Exemption",
    "Exemptions",
    "MatchSpec",
    "Playbook",
    "PlaybookSet",
    "Step",
    "TagCondition",
    "exemption_from_tags",
    "json_schema",
    "load_exemptions",
    "load_playbook_file",
    "load_playbooks",
    "parse_duration",
    "validate_exemptions",
    "validate_playbooks",
]
