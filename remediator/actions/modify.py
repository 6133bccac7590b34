"""``policy.apply-modify``: the operations of the finding's own Azure Policy Modify definition, as a plan.

Platform teams keep Modify policies at Audit because nobody approves what they would change. For a
NonCompliant finding of a definition whose effect can be Modify (built-in or custom), this action
plans exactly the definition's ``then.details.operations`` on the finding's resource, so the change
goes through remediator's approval, PIM grant and verify like any other:

* the **definition** is read from the state (``ctx.state.get`` of its id: live ``GET
  …/providers/Microsoft.Authorization/policyDefinitions/{name}``, cached by the live reader, or a
  saved definition: ``remediator plan --definitions DIR``), in ARM's shape (``properties``) or the
  flattened one ``az policy definition show`` prints;
* its **parameters** are the assignment's values (``finding.policy_assignment_id``, read the same
  way; for an initiative's assignment, what the initiative's member entry passes), else the definition's
  ``defaultValue`` (the plan warns that the assignment was not read);
* each operation (``addOrReplace``, ``add``: only when the property is absent, ``remove``: tags only,
  as Microsoft Learn "Azure Policy definitions modify effect" says) applies where its
  ``condition`` holds; ``condition``, ``field`` and ``value`` may be template expressions
  (``remediator.actions.policy_expr``; ``requestContext().apiVersion`` is the API version of this write);
* a **field** is ``tags``, ``tags['name']``/``tags.name``, ``identity.type`` or an alias (what Modify
  changes; ``field()`` in an expression may also read ``name``, ``location``, ``kind``), resolved to
  its property path by the provider's alias metadata (``GET /subscriptions/{id}/providers/{namespace}
  ?$expand=resourceTypes/aliases``: the path for the write's API version, else ``defaultPath``; an alias
  not marked ``Modifiable`` there is refused) or, offline, by the shipped table ``modify_aliases.json``
  (``scripts/gen_modify_aliases.py``);
* the **grants' roles** are the definition's ``roleDefinitionIds`` (what Azure's own remediation identity
  is given), each a PIM grant on the one resource (``Action.grants``), released after the write; the
  step's ``role`` parameter narrows them to one of them;
* the change's note names the definition (display name and id); apply PATCHes exactly the changed
  properties (``tags`` whole: ARM replaces them) at the type's API version, conditional on the ETag;
  verify reads them back; undo restores the previous values.

An alias that cannot be resolved, an expression that cannot be evaluated, a definition that is not
Modify: a one-line refusal naming it; nothing is guessed.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import field_validator

from remediator import ids
from remediator.actions import profiles
from remediator.actions.base import (
    REGISTRY,
    Action,
    ApplyResult,
    BuiltinRole,
    Example,
    Params,
    PlanContext,
    Profile,
    label,
    register,
)
from remediator.actions.change import Change, merge_patch, patched_paths, plan_etag, without_etag
from remediator.actions.policy_expr import Context, ExpressionError, evaluate
from remediator.azure.lro import write
from remediator.azure.reader import api_version_of, register_fallback_api_version
from remediator.azure.state import StateReader
from remediator.errors import ActionError, StateError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

ALIAS_TABLE = Path(__file__).with_name("modify_aliases.json")
Path_ = tuple[str, ...]
_ABSENT: Any = object()

# Built-in roles the Modify definitions name (MicrosoftDocs/azure-docs articles/role-based-access-control/
# built-in-roles/*.md: name and GUID); any other GUID is shown as "role <guid>".
ROLE_NAMES: dict[str, str] = {
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "de139f84-1756-47ae-9be6-808fbbe84772": "Website Contributor",
    "4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",
    "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
    "5bd9cd88-fe45-4216-938b-f97437e15450": "DocumentDB Account Contributor",
    "673868aa-7521-48a0-acc6-0f60742d39f5": "Data Factory Contributor",
    "18500a29-7fe2-46b2-a342-b16a415e101d": "Managed HSM contributor",
    "7ca78c08-252a-4471-8644-bb5ff32d4ba0": "Search Service Contributor",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "f25e0fa2-a7c8-4377-a976-54943a77a395": "Key Vault Contributor",
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": "Cognitive Services Contributor",
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
}
# management-and-governance.md (general.md): "View all resources, but does not allow you to make any changes".
READER = BuiltinRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PLAIN_FIELDS = {"name", "location", "kind", "type", "fullname", "identity.type", "sku.name", "sku.tier"}


@cache
def alias_table() -> dict[str, Any]:
    """The shipped alias table (``aliases``: lower-cased alias → path; ``api_versions``: type → version)."""
    data: dict[str, Any] = json.loads(ALIAS_TABLE.read_text(encoding="utf-8"))
    return data


for _type, _version in alias_table()["api_versions"].items():
    register_fallback_api_version(_type, _version)


def role_of(definition_role_id: str) -> BuiltinRole:
    """``/providers/Microsoft.Authorization/roleDefinitions/<guid>`` → the role (its name where known)."""
    guid = definition_role_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return BuiltinRole(ROLE_NAMES.get(guid, f"role {guid}"), guid)


def definition_properties(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """A definition's properties: ARM's ``properties`` or, as ``az policy definition show`` prints it,
    the document itself (``policyRule`` at the top)."""
    props = doc.get("properties")
    if isinstance(props, Mapping) and "policyRule" in props:
        return props
    return doc


def effect_can_be_modify(props: Mapping[str, Any]) -> bool:
    """The effect is ``modify``, or a parameter whose allowed (or default) values include Modify."""
    then = (props.get("policyRule") or {}).get("then") or {}
    effect = then.get("effect")
    if not isinstance(effect, str):
        return False
    if effect.lower() == "modify":
        return True
    ref = effect.strip()
    if ref.lower().startswith("[parameters('") and ref.endswith("')]"):
        spec = (props.get("parameters") or {}).get(ref[len("[parameters('"):-3]) or {}
        values = [*(spec.get("allowedValues") or []), spec.get("defaultValue")]
        return any(isinstance(v, str) and v.lower() == "modify" for v in values)
    return False


def write_api_version(resource_type: str) -> str | None:
    """The API version a Modify fix of ``resource_type`` reads and writes at: the version an action's
    profile pins (so the document the plan read is the one written), else the version the live reader
    uses for the type, else the shipped table's."""
    key = ids.type_key(resource_type)
    for p in vars(profiles).values():
        if isinstance(p, Profile) and ids.type_key(p.type) == key:
            return p.api_version
    for action in REGISTRY.values():
        if action.profile is not None and ids.type_key(action.profile.type) == key:
            return action.profile.api_version
    return api_version_of(resource_type)


def _parse_tag(field: str) -> str | None:
    low = field.lower()
    if low.startswith("tags[") and field.endswith("]"):
        return field[5:-1].strip("'\"")
    if low.startswith("tags."):
        return field[5:]
    return None


class AliasError(ExpressionError):
    """A field that cannot be resolved to a property path (one line, naming the alias)."""


class _Aliases:
    """Field names → property paths for one resource type at one API version (see the module docstring)."""

    def __init__(self, ctx: PlanContext, resource_type: str, api_version: str) -> None:
        self.ctx = ctx
        self.type = resource_type
        self.api_version = api_version
        self._provider: Mapping[str, Any] | None = None
        self._read = False

    def path(self, field: str) -> Path_:
        name = field.strip()
        tag = _parse_tag(name)
        if tag is not None:
            return ("tags", tag)
        if name.lower() == "tags":
            return ("tags",)
        if name.lower() in _PLAIN_FIELDS:
            return tuple(name.split("."))
        if "/" not in name:
            raise AliasError(f"field {name!r} is neither an alias nor a field remediator knows "
                              "(tags, tags['name'], name, location, kind, identity.type)")
        path = self._live(name) or self._table(name)
        if path is None:
            raise AliasError(f"alias {name} cannot be resolved to a property of {self.type} (not in the "
                              f"provider's alias metadata nor in remediator's table {ALIAS_TABLE.name})")
        if "[*]" in path or "[" in path:
            raise AliasError(f"alias {name} is an array alias ({path}); remediator plans Modify "
                              "operations on single properties only")
        return tuple(path.split("."))

    def _table(self, alias: str) -> str | None:
        entry = alias_table()["aliases"].get(alias.lower())
        return str(entry["path"]) if entry else None

    def _live(self, alias: str) -> str | None:
        doc = self._provider_doc()
        if doc is None:
            return None
        tail = ids.type_key(self.type).split("/", 1)[-1]
        for rt in doc.get("resourceTypes") or []:
            if not isinstance(rt, Mapping) or str(rt.get("resourceType", "")).lower() != tail:
                continue
            for a in rt.get("aliases") or []:
                if not isinstance(a, Mapping) or str(a.get("name", "")).lower() != alias.lower():
                    continue
                path, meta = a.get("defaultPath"), a.get("defaultMetadata")
                for p in a.get("paths") or []:
                    if isinstance(p, Mapping) and self.api_version in (p.get("apiVersions") or []):
                        path, meta = p.get("path"), p.get("metadata") or meta
                        break
                attributes = str((meta or {}).get("attributes") or "") if isinstance(meta, Mapping) else ""
                if meta is not None and "modifiable" not in attributes.lower():
                    raise AliasError(f"alias {alias} is not Modifiable at API version {self.api_version} "
                                      f"(the provider's alias metadata says {attributes or 'None'})")
                return str(path) if path else None
        return None

    def _provider_doc(self) -> Mapping[str, Any] | None:
        if not self._read:
            self._read = True
            sub = self.ctx.finding.subscription_id or ids.parse(self.ctx.finding.resource_id).subscription_id
            namespace = ids.parse(self.ctx.finding.resource_id).namespace
            if sub and namespace:
                try:
                    self._provider = self.ctx.state.get(f"/subscriptions/{sub}/providers/{namespace}")
                except StateError as e:
                    self.ctx.warn(f"the alias metadata of {namespace} could not be read ({e}); aliases resolved "
                                  f"with remediator's table {ALIAS_TABLE.name}")
        return self._provider


def _get(doc: Any, path: Path_) -> Any:
    node = doc
    for key in path:
        if not isinstance(node, Mapping):
            return _ABSENT
        hit = next((k for k in node if k.lower() == key.lower()), None) if key not in node else key
        if hit is None:
            return _ABSENT
        node = node[hit]
    return _ABSENT if node is None else node


def _set(doc: dict[str, Any], path: Path_, value: Any) -> None:
    node = doc
    for key in path[:-1]:
        hit = next((k for k in node if k.lower() == key.lower()), key)
        child = node.get(hit)
        if not isinstance(child, dict):
            child = node[hit] = {}
        node = child
    leaf = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = copy.deepcopy(value)


def _same(have: Any, want: Any) -> bool:
    """Equal as Azure Policy compares: strings case-insensitively; absent is null."""
    if have is _ABSENT:
        have = None
    if isinstance(have, str) and isinstance(want, str):
        return have.lower() == want.lower()
    return bool(have == want)


def _show(value: Any) -> str:
    if value is _ABSENT or value is None:
        return "(not set)"
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, Mapping | list) else str(value)


class ModifyParams(Params):
    """Parameters of ``policy.apply-modify``."""

    role: str | None = None
    """Grant only this one of the definition's roleDefinitionIds (its GUID) instead of all of them (a
    definition naming several, such as an App Service one with Website Contributor, Network Contributor
    and Managed Identity Operator, where the change needs only the first)."""

    @field_validator("role")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is not None and not _GUID.match(value.strip()):
            raise ValueError(f"expected a role definition GUID such as b24988ac-6180-42a0-ab88-20f7382dd24c, "
                             f"got {value!r}")
        return value.strip().lower() if value is not None else None


@register
class ApplyModify(Action[ModifyParams]):
    """Plan the finding's own Azure Policy Modify definition: its operations, its role, behind approval."""

    name = "policy.apply-modify"
    resource_types = ("*",)
    permissions = tuple(f"{t}/{op}" for t in sorted({e["type"] for e in alias_table()["aliases"].values()})
                        for op in ("read", "write"))
    """The read and write of the types the catalog's Modify definitions change (a custom definition on
    another type needs that type's); the definition's roleDefinitionIds hold them, and are what is granted."""
    role = READER
    """Every change this action plans names its definition's roles (``Change.roles``), which are what is
    granted; a change without them (never planned so) would be granted Reader, which cannot write: fail closed."""
    reversible = True
    role_from_plan = True
    summary = "the Modify definition's operations"
    example = Example(
        "Apply the operations of our own Modify policies (kept at Audit) after approval.",
        why="built-in Modify definitions: storage public network access off, secure transfer",
        policies=("a06d0189-92e8-4dba-b0c4-08d7669fce7d", "f81e3117-0093-4b17-8a60-82363134f0eb"),
        resource_types=("Microsoft.Storage/storageAccounts",),
        name="storage-modify-policies")

    breaks: ClassVar[str] = ("what the definition's properties control (clients that relied on the previous "
                             "values)")

    # --- plan ------------------------------------------------------------------------------------

    def plan(self, ctx: PlanContext, params: ModifyParams) -> list[Change]:
        finding = ctx.finding
        target = finding.resource_id
        if finding.kind != "policy" or not (finding.policy_definition_id or finding.type):
            raise ActionError(f"refused: {self.name} plans Azure Policy Modify definitions; this is a {finding.kind} "
                              "finding", action=self.name, resource_id=target)
        definition_id = self._definition_id(finding.policy_definition_id or finding.type)
        definition = ctx.state.get(definition_id)
        if definition is None:
            raise ActionError(f"policy definition {definition_id} not found: save it with `az policy definition show "
                              f"--name {ids.parse(definition_id).name}` into a --definitions folder",
                              action=self.name, resource_id=target)
        props = definition_properties(definition)
        shown = f"{props.get('displayName') or ids.parse(definition_id).name} ({definition_id})"
        if not effect_can_be_modify(props):
            raise ActionError(f"refused: {shown} is not a Modify definition (its effect cannot be Modify)",
                              action=self.name, resource_id=target)
        details = ((props.get("policyRule") or {}).get("then") or {}).get("details") or {}
        operations = details.get("operations") if isinstance(details, Mapping) else None
        if not isinstance(operations, list) or not operations:
            raise ActionError(f"refused: {shown} has no then.details.operations", action=self.name, resource_id=target)
        roles = self._roles(details.get("roleDefinitionIds"), params, shown, target)
        doc = ctx.state.get(target)
        if doc is None:
            raise ActionError("resource not found", action=self.name, resource_id=target)
        rtype = ids.resource_type(target)
        api_version = write_api_version(rtype)
        if api_version is None:
            raise ActionError(f"refused: no API version known to write {rtype} (no action's profile, no entry in "
                              f"{ALIAS_TABLE.name})", action=self.name, resource_id=target)
        values = self._parameters(ctx, props, shown)
        aliases = _Aliases(ctx, rtype, api_version)
        expr = Context(parameters=values, field=lambda f: None if (v := _get(doc, aliases.path(f))) is _ABSENT else v,
                       api_version=api_version)
        after: dict[str, Any] = copy.deepcopy(dict(doc))
        parts: list[str] = []
        for i, op in enumerate(operations):
            parts.extend(self._operation(op, where=f"{shown} operations[{i}]", expr=expr, aliases=aliases, after=after,
                                         target=target))
        if not parts:
            return []
        try:  # what the assignment makes Azure do itself (Audit: report only, which is why this plan exists)
            effect = evaluate(((props.get("policyRule") or {}).get("then") or {}).get("effect"), expr)
        except ExpressionError:
            effect = None
        assigned = f" (assigned with effect {effect})" if isinstance(effect, str) and effect else ""
        note = (f"Azure Policy Modify {shown}{assigned}: " + "; ".join(parts)
                + f"; granted {' and '.join(r.name for r in roles)}; can break: {self.breaks}")
        return [Change(action=self.name, resource_id=str(doc.get("id") or target), operation="update", before=doc,
                       after=after, note=note, roles=tuple((r.id, r.name) for r in roles))]

    def _operation(self, op: Any, *, where: str, expr: Context, aliases: _Aliases, after: dict[str, Any],
                   target: str) -> list[str]:
        if not isinstance(op, Mapping):
            raise ActionError(f"refused: {where} is not an object", action=self.name, resource_id=target)
        try:
            if "condition" in op:
                cond = evaluate(op["condition"], expr)
                if not isinstance(cond, bool) and not (isinstance(cond, str) and cond.lower() in ("true", "false")):
                    raise ExpressionError(f"condition {op['condition']!r} is not true or false")
                if cond is False or (isinstance(cond, str) and cond.lower() == "false"):
                    return []
            field = evaluate(op.get("field"), expr)
            value = evaluate(op.get("value"), expr)
        except ExpressionError as e:
            raise ActionError(f"refused: {where}: {e}", action=self.name, resource_id=target) from None
        if not isinstance(field, str) or not field:
            raise ActionError(f"refused: {where} has no field", action=self.name, resource_id=target)
        kind = str(op.get("operation") or "").lower()
        try:
            path = aliases.path(field)
        except AliasError as e:
            raise ActionError(f"refused: {where}: {e}", action=self.name, resource_id=target) from None
        if "/" not in field and path[0] != "tags" and field.strip().lower() != "identity.type":
            raise ActionError(f"refused: {where}: Modify changes tags, identity.type and aliases; {field} is none of "
                              "them", action=self.name, resource_id=target)
        have = _get(after, path)
        shown_path = ".".join(path).removeprefix("properties.")
        if kind == "addorreplace":
            if _same(have, value):
                return []
            _set(after, path, value)
        elif kind == "add":
            if have is not _ABSENT:
                return []  # add leaves an existing value alone
            _set(after, path, value)
        elif kind == "remove":
            if path[0] != "tags" or len(path) != 2:
                raise ActionError(f"refused: {where}: only tags can be removed (Modify's remove), not {field}",
                                  action=self.name, resource_id=target)
            if have is _ABSENT:
                return []
            _set(after, path, None)
            return [f"{shown_path}: {_show(have)} -> removed"]
        else:
            raise ActionError(f"refused: {where}: operation {op.get('operation')!r} is not addOrReplace, add or remove",
                              action=self.name, resource_id=target)
        return [f"{shown_path}: {_show(have)} -> {_show(value)}"]

    @staticmethod
    def _definition_id(ref: str) -> str:
        ref = ref.strip()
        return ref if ref.startswith("/") else f"/providers/Microsoft.Authorization/policyDefinitions/{ref}"

    def _roles(self, role_ids: Any, params: ModifyParams, shown: str, target: str) -> list[BuiltinRole]:
        """The definition's roleDefinitionIds, each granted on the resource (as Azure's remediation identity
        holds them all); ``params.role`` narrows them to the one it names."""
        roles = list({r.id: r for r in (role_of(x) for x in role_ids or [] if isinstance(x, str) and x.strip())}
                     .values())
        if not roles:
            raise ActionError(f"refused: {shown} names no roleDefinitionIds (the role its remediation needs)",
                              action=self.name, resource_id=target)
        if params.role is not None:
            chosen = next((r for r in roles if r.id == params.role), None)
            if chosen is None:
                raise ActionError(f"refused: role {params.role} is not one of {shown}'s roleDefinitionIds "
                                  f"({', '.join(f'{r.name} {r.id}' for r in roles)})", action=self.name,
                                  resource_id=target)
            return [chosen]
        return roles

    def parameters(self, ctx: PlanContext, props: Mapping[str, Any], shown: str) -> dict[str, Any]:
        """The values of a definition's parameters (``props``: its properties, or at least their ``parameters``
        with defaults) for the finding's assignment, an initiative's member entry resolved (``_parameters``):
        for other fixes whose plan depends on what the assignment asks (the private-link fix's group id)."""
        return self._parameters(ctx, props, shown)

    def _parameters(self, ctx: PlanContext, props: Mapping[str, Any], shown: str) -> dict[str, Any]:
        declared = props.get("parameters") or {}
        values = {k: v.get("defaultValue") for k, v in declared.items()
                  if isinstance(v, Mapping) and "defaultValue" in v}
        assignment_id = ctx.finding.policy_assignment_id
        if not assignment_id:
            if any(isinstance(v, Mapping) and "defaultValue" not in v for v in declared.values()):
                ctx.warn(f"{shown}: the finding names no policy assignment; parameters without a value are unset")
            return values
        try:
            assignment = ctx.state.get(assignment_id)
        except StateError as e:
            ctx.warn(f"policy assignment {assignment_id} could not be read ({e}): the definition's default "
                     "parameter values were used")
            return values
        if assignment is None:
            ctx.missing(assignment_id, "policy assignment",
                        "its parameter values (the definition's defaults were used)",
                        how=f"add it with `az policy assignment show --ids {assignment_id} > assignment.json` to the "
                            "--resources folder")
            return values
        wrapped = assignment.get("properties")
        body: Mapping[str, Any] = wrapped if isinstance(wrapped, Mapping) else assignment
        given = {k: v.get("value") if isinstance(v, Mapping) else v for k, v in (body.get("parameters") or {}).items()}
        target = str(body.get("policyDefinitionId") or "")
        if "/policysetdefinitions/" not in target.lower():
            return {**values, **given}
        member = self._member_parameters(ctx, target, given, shown)
        return {**values, **member} if member is not None else values

    def _member_parameters(self, ctx: PlanContext, set_id: str, given: Mapping[str, Any],
                           shown: str) -> dict[str, Any] | None:
        """An initiative's assignment: the values its member entry passes to this definition (expressions
        over the initiative's parameters, the assignment's values or the initiative's defaults); None, with a
        warning, when the initiative or the member cannot be found."""
        try:
            initiative = ctx.state.get(set_id)
        except StateError as e:
            ctx.warn(f"policy set definition {set_id} could not be read ({e}): the definition's default "
                     "parameter values were used")
            return None
        if initiative is None:
            ctx.missing(set_id, "policy set definition", "the parameter values it passes to the definition (the "
                        "definition's defaults were used)",
                        how=f"add it with `az policy set-definition show --name {ids.parse(set_id).name}` to the "
                            "--definitions folder")
            return None
        inner = initiative.get("properties")
        props: Mapping[str, Any] = inner if isinstance(inner, Mapping) else initiative
        reference = str(ctx.finding.additional_data.get("policydefinitionreferenceid") or "").lower()
        definition = self._definition_id(ctx.finding.policy_definition_id or ctx.finding.type)
        members = [m for m in props.get("policyDefinitions") or [] if isinstance(m, Mapping)]
        chosen = [m for m in members
                  if reference and str(m.get("policyDefinitionReferenceId", "")).lower() == reference]
        chosen = chosen or [m for m in members if ids.same(str(m.get("policyDefinitionId") or ""), definition)]
        if len(chosen) != 1:
            ctx.warn(f"{shown}: its entry in policy set definition {set_id} was not found "
                     f"({'several match' if chosen else 'no member names it'}): the definition's defaults were used")
            return None
        defaults = {k: v.get("defaultValue") for k, v in (props.get("parameters") or {}).items()
                    if isinstance(v, Mapping) and "defaultValue" in v}
        outer = Context(parameters={**defaults, **given}, field=lambda _f: None, api_version="")
        out: dict[str, Any] = {}
        for k, v in (chosen[0].get("parameters") or {}).items():
            raw = v.get("value") if isinstance(v, Mapping) else v
            try:
                out[k] = evaluate(raw, outer)
            except ExpressionError as e:
                raise ActionError(f"refused: {shown}: parameter {k} from policy set definition {set_id}: {e}",
                                  action=self.name, resource_id=ctx.finding.resource_id) from None
        return out

    # --- apply, verify, undo -----------------------------------------------------------------------

    @staticmethod
    def _body(change: Change) -> Any:
        body = merge_patch(change.before, change.after)
        if isinstance(body, dict) and "tags" in body and isinstance(change.after, Mapping):
            body["tags"] = copy.deepcopy(change.after.get("tags") or {})  # ARM replaces tags whole
        return body

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        if change.before is None or change.after is None:
            raise ActionError("the change has no before/after documents", action=self.name,
                              resource_id=change.resource_id)
        rtype = ids.resource_type(change.resource_id)
        api_version = write_api_version(rtype)
        if api_version is None or not ids.parse(change.resource_id).subscription_id:
            raise ActionError(f"no API version known to write {rtype}", action=self.name,
                              resource_id=change.resource_id)
        body = self._body(change)
        if not body:
            return ApplyResult(change=change, detail="nothing to write")
        try:
            out = write(clients, "PATCH", change.resource_id, api_version, body=body, if_match=plan_etag(change))
        except HttpResponseError as e:
            raise ActionError(f"PATCH of {label(change.resource_id)} failed: {http_error_line(e)}", action=self.name,
                              resource_id=change.resource_id) from None
        written = ", ".join(patched_paths(merge_patch(change.before, change.after)))
        log.info("patched %s (Modify): %s", change.resource_id, written)
        return ApplyResult(change=change, response=out if isinstance(out, Mapping) else None,
                           detail=f"{label(change.resource_id)}: {written}")

    def verify(self, state: StateReader, change: Change) -> str | None:
        current = state.get(change.resource_id)
        if current is None:
            return f"{ids.parse(change.resource_id).name} no longer exists"
        wrong = []
        for dotted in patched_paths(merge_patch(change.before or {}, change.after or {})):
            path = tuple(dotted.split("."))
            want, have = _get(change.after, path), _get(current, path)
            if not _same(have, None if want is _ABSENT else want):
                wrong.append(f"{dotted.removeprefix('properties.')} is {_show(have)}, expected {_show(want)}")
        return "; ".join(wrong) or None

    def undo(self, change: Change) -> Change:
        if change.before is None or change.after is None:
            raise ActionError("this change has no before/after documents to undo", action=self.name,
                              resource_id=change.resource_id)
        restored: dict[str, Any] = copy.deepcopy(dict(change.after))
        shown: list[str] = []
        for dotted in patched_paths(merge_patch(change.before, change.after)):
            path = tuple(dotted.split("."))
            previous = _get(change.before, path)
            _set(restored, path, None if previous is _ABSENT else previous)
            shown.append(f"{dotted.removeprefix('properties.')} {_show(previous)}")
        return Change(action=self.name, resource_id=change.resource_id, operation="update",
                      before=without_etag(change.after), after=without_etag(restored), note=f"undo: {', '.join(shown)}",
                      roles=change.roles)

