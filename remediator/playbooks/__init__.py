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

Modules: ``yamlload`` (YAML → values with lines, safe), ``model`` (the file as written and the
playbook as used), ``loader`` (the passes), ``match``, ``exemptions``, ``schema``.
"""

from remediator.playbooks.exemptions import (
    EXEMPT_TAG,
    Exemption,
    Exemptions,
    exemption_from_tags,
    load_exemptions,
    validate_exemptions,
)
from remediator.playbooks.loader import load_playbook_file, load_playbooks, validate_playbooks
from remediator.playbooks.match import PlaybookSet
from remediator.playbooks.model import Approval, MatchSpec, Playbook, Step, TagCondition, parse_duration
from remediator.playbooks.schema import json_schema

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
