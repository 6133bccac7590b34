"""The action contract and its registry.

An action is a small class registered under ``<service>.<verb-noun>``. It declares:

* ``Params``: a pydantic model (``extra="forbid"``) of its typed parameters, the class's type
  argument (``class X(Action[XParams])``); the playbook JSON Schema is generated from these; a
  validator is a function of ``remediator.checks.params`` named by the model
  (``_x = field_validator("x")(checks.x)``), so that ``validate``'s fast path, which imports no
  pydantic, runs it too (regenerate its schema: ``python -m remediator.playbooks.fastcheck_schema``);
* ``resource_types``: the ARM types it handles (the finding's resource, lower-case compared);
* ``permissions``: the RBAC operations ``apply`` needs, and ``role``: the least-privileged
  built-in role covering them (what PIM grants, scoped to the one resource); an action on one ARM
  type takes these, its ``resource_types`` and its ``api_version`` from the type's
  :class:`Profile` (``remediator.actions.profiles``) instead of restating them;
* ``plan(ctx, params)``: pure and read-only (``ctx.state`` has no write method) → ``Change`` list;
  when the state lacks a linked resource a step would have looked at (a NIC's subnet, a peer
  network, an exemption's policy assignment), it plans what it can and calls ``ctx.missing(...)``
  (or ``ctx.warn(text)``): the warning names what was not checked and how to supply it, and
  reaches the plan's output (``Result.warnings``);
* ``apply(clients, change)``: the write, through the real SDK client;
* ``verify(state, change)``: ``None`` when the resource now holds the planned state, else why not;
* ``undo(change)``: the inverse ``Change`` when ``reversible``;
* ``grants(change)``: every (scope, role) the write needs, each granted, audited and released on its own
  (default: ``role`` at ``grant_scope(change)``; a private endpoint needs its subnet, its resource group
  and its target: ``remediator.actions.private_link``).

The class docstring carries a playbook example (a fenced ``yaml`` block) that a meta-test validates:
written there, or declared as an :class:`Example` (``example = Example(...)``) and rendered into it.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import itertools
import textwrap
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from remediator import ids
from remediator.actions.change import Change, grant_scope
from remediator.actions.private_link_table import PrivateLinkSettings
from remediator.azure.state import StateReader
from remediator.checks.params import valid_id  # noqa: F401  (re-exported: the actions' id validator)
from remediator.errors import ActionError
from remediator.findings.model import Finding

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """The string under each annotated field in the bodies of ``model`` and its bases (a subclass's
    wins), read from the source like pydantic's ``use_attribute_docstrings``: a string right after
    an annotated assignment, ``inspect.cleandoc``-ed. Empty where the source cannot be read."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass in (BaseModel, Params):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for field_node, doc_node in itertools.pairwise(body):
            if (isinstance(field_node, ast.AnnAssign) and isinstance(field_node.target, ast.Name)
                    and isinstance(doc_node, ast.Expr) and isinstance(doc_node.value, ast.Constant)
                    and isinstance(doc_node.value.value, str)):
                docs[field_node.target.id] = inspect.cleandoc(doc_node.value.value)
    return docs


def _schema_descriptions(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A field without a ``description=`` takes its docstring (read only now, when a schema is
    made: parsing the actions' source on import would slow every ``remediator validate``); every
    description on one line."""
    props = schema.get("properties") or {}
    docs = field_docstrings(model)
    for name, info in model.model_fields.items():
        prop = props.get(info.alias or name, props.get(name))
        if isinstance(prop, dict) and "description" not in prop and name in docs:
            prop["description"] = docs[name]
    for prop in props.values():
        if isinstance(prop, dict) and isinstance(prop.get("description"), str):
            prop["description"] = " ".join(prop["description"].split())


class Params(BaseModel):
    """Base of every action's parameters: strict keys, immutable; a field's docstring (the string
    under it) is its description in the playbook schema, on one line."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_descriptions)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        """Booleans and integers as the schema says: ``"yes"``, ``"off"`` or ``1`` for a boolean, and
        ``"5"`` or ``true`` for an integer, are errors (pydantic's lax mode would convert them)."""
        if value is None:
            return value
        kind = _scalar_kinds(cls).get(info.field_name or "")
        if kind is bool and not isinstance(value, bool):
            raise PydanticCustomError("bool_type", "Input should be a valid boolean")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


_SCALARS: dict[type[BaseModel], dict[str, type]] = {}


def _scalar_kinds(model: type[BaseModel]) -> dict[str, type]:
    """The fields of ``model`` typed ``bool`` or ``int`` (optional or not), once per model."""
    known = _SCALARS.get(model)
    if known is None:
        known = {}
        for name, f in model.model_fields.items():
            union = typing.get_origin(f.annotation) in (typing.Union, types.UnionType)
            given = typing.get_args(f.annotation) if union else (f.annotation,)
            kinds = {a for a in given if a is not type(None)}
            if kinds in ({bool}, {int}):
                known[name] = next(iter(kinds))
        _SCALARS[model] = known
    return known


P = TypeVar("P", bound=Params)


def no_items() -> list[Any]:
    """``Field(default_factory=no_items)``: an empty list per model, like ``default_factory=list``,
    but a Python function, whose signature pydantic reads directly; for the builtin ``list`` it
    tokenizes the text signature, and the tokenizer's first use costs ~6 ms at every start."""
    return []


@dataclass(frozen=True, slots=True)
class BuiltinRole:
    """An Azure built-in role: display name and its role definition GUID."""

    name: str
    id: str

    def definition_id(self, scope: str) -> str:
        """The ``roleDefinitionId`` to use in an assignment at ``scope``'s subscription."""
        sub = ids.parse(scope).subscription_id
        prefix = f"/subscriptions/{sub}" if sub else ""
        return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{self.id}"


@dataclass(frozen=True, kw_only=True, slots=True)
class CustomRole(BuiltinRole):
    """A custom role remediator ships (``remediator.actions.custom_roles``): where no built-in role narrower
    than Contributor holds a type's write. ``id`` is its deterministic GUID (the one ``infra/custom-roles.bicep``
    creates), or the one a deployment maps ``key`` to (``Settings.custom_roles``); ``actions`` are exactly the
    operations it grants (its ``permissions[0].actions``)."""

    key: str
    actions: tuple[str, ...]
    description: str

    def mapped(self, custom_roles: Mapping[str, str] | None) -> CustomRole:
        """This role with the id the deployment maps ``key`` to (``custom_roles``), else as shipped."""
        guid = (custom_roles or {}).get(self.key)
        if not guid or guid.lower() == self.id:
            return self
        return CustomRole(self.name, guid.lower(), key=self.key, actions=self.actions, description=self.description)


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanContext:
    """What ``plan()`` may look at: the finding, read-only state, and protected principals.

    ``now`` is the planner's injectable clock (``None``: an action that needs a time takes it from
    the finding, see ``remediator.actions.exemptions``). ``settings`` are the deployment's settings
    by field name (``Settings.for_actions()``: ``diagnostics_workspace_id`` …); an action that needs
    one that is not set refuses, naming it and its environment variable. ``warnings`` collects what
    the plan could not check (one line each, in order, without duplicates); add to it with :meth:`warn` or
    :meth:`missing`, never by raising: the rest of the plan still stands.
    """

    finding: Finding
    state: StateReader
    protected_principals: frozenset[str] = field(default_factory=frozenset)
    now: datetime | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    private_link: PrivateLinkSettings | None = None
    """The deployment's private-endpoint subnets and central DNS zones (None: not configured): with them the
    network fixes build a private endpoint before closing public access (``remediator.actions.private_link``)."""
    advice: list[str] = field(default_factory=list)
    """A message for people instead of a change (``alert.send-advice``): the evidence and the recommended steps,
    one line each, in order; it reaches ``Result.advice``, the audit trail and the channel."""

    def advise(self, text: str) -> None:
        """Add one line of advice (whitespace collapsed to one line)."""
        line = " ".join(str(text).split())
        if line:
            self.advice.append(line)

    def warn(self, text: str) -> None:
        """Record one warning (whitespace collapsed to one line; a repeated text is kept once)."""
        line = " ".join(str(text).split())
        if line and line not in self.warnings:
            self.warnings.append(line)

    def missing(self, resource_id: str, what: str, unchecked: str, *, how: str = "") -> None:
        """Warn that ``what`` (``subnet``, ``peer network``) ``resource_id`` is not in the state, so
        ``unchecked`` (what the plan did not check) was skipped; ``how`` says how to supply it
        (default: save its ARM document with ``az resource show`` next to the other saved state)."""
        hint = how or f"add it with `az resource show --ids {resource_id} > {_file_name(resource_id)}.json` " \
                      "to the --resources folder"
        self.warn(f"{what} {resource_id} not in the resource state: {unchecked}; {hint}")


def label(resource_id: str) -> str:
    """A resource's name for messages: its names below the provider, ``/``-joined, without the
    singleton ``default`` segments (``sto1/weights`` for a blob container, ``nsg1/ssh`` for a rule)."""
    names = ids.parse(resource_id).names
    return "/".join(n for i, n in enumerate(names) if n.lower() != "default" or i == len(names) - 1)


def _file_name(resource_id: str) -> str:
    name = ids.parse(resource_id).name or "resource"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


@dataclass(frozen=True, slots=True)
class GrantNeed:
    """One grant a write needs: ``role`` at ``scope`` (``why``: the operation it is for, for the audit)."""

    scope: str
    role: BuiltinRole
    why: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplyResult:
    """What ``apply()`` did, safe to log and audit (never a secret)."""

    change: Change
    response: Mapping[str, Any] | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Example:
    """A playbook that runs the action, rendered as the ``yaml`` block of its docstring: what it
    matches (Defender keys, policy definitions, …), a comment saying what they are (``why``), and
    the step's parameters (flow-style YAML). ``resource_types`` defaults to the action's first."""

    description: str
    _: KW_ONLY
    why: str = ""
    recommendations: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    resource_types: tuple[str, ...] = ()
    risk: str = "medium"
    approval: str = "{mode: slack, approvers: [security-oncall], expires_after: 1d}"
    params: str = ""
    name: str = ""

    def render(self, action: str, resource_type: str) -> str:
        """The fenced block, indented as a class docstring's body."""
        match = [f"  # {self.why}"] if self.why else []
        for key in ("recommendations", "policies", "alerts", "resource_types"):
            values = getattr(self, key) or ((resource_type,) if key == "resource_types" else ())
            if values:
                match.append(f"  {key}: [{', '.join(values)}]")
        lines = ["```yaml", f"name: {self.name or action.replace('.', '-')}", f"description: {self.description}",
                 "match:", *match, f"risk: {self.risk}", f"approval: {self.approval}", "steps:",
                 f"  - action: {action}", *([f"    params: {self.params}"] if self.params else []), "```"]
        return "\n".join("    " + line for line in lines)


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    """An ARM type as the actions write it, declared once (``remediator.actions.profiles``) and
    shared by every action on that type: the type, the API version the write is pinned to, the
    least-privileged built-in role and the RBAC operations a write needs, and how messages name one
    (``noun``: "storage account", "security rule")."""

    type: str
    api_version: str
    role: BuiltinRole
    permissions: tuple[str, ...]
    noun: str


class Action(ABC, Generic[P]):
    """Base class of actions; see the module docstring for the contract."""

    name: ClassVar[str]
    Params: ClassVar[type[Params]]
    resource_types: ClassVar[tuple[str, ...]]
    permissions: ClassVar[tuple[str, ...]]
    role: ClassVar[BuiltinRole]
    reversible: ClassVar[bool] = False
    role_from_plan: ClassVar[bool] = False
    """The grant's roles are chosen by each plan (``Change.roles``: a Modify definition's), not ``role``."""
    writes_nothing: ClassVar[bool] = False
    """The action only plans (``alert.send-advice``): no change, no grant, its role never assigned."""
    verify_under_grant: ClassVar[bool] = False
    """``verify`` reads what only the action's role may read (``listCredentials``): the worker
    verifies inside the grant, with the executor's clients, before it releases the grant."""
    summary: ClassVar[str] = ""
    api_version: ClassVar[str]
    """The API version the action writes at (from its profile)."""
    profile: ClassVar[Profile | None] = None
    """The ARM type the action writes; fills ``resource_types``, ``role``, ``permissions`` and
    ``api_version`` where the class does not set them itself."""
    extra_permissions: ClassVar[tuple[str, ...]] = ()
    """Operations beyond the profile's that this action needs (added to ``permissions``)."""
    extra_roles: ClassVar[tuple[BuiltinRole, ...]] = ()
    """Roles beyond ``role`` that its ``grants`` may request (at other scopes): what ``doctor`` checks a
    pim-activate or standing executor for."""
    example: ClassVar[Example | None] = None
    """The docstring's playbook example, declared (rendered into ``__doc__``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Params" not in cls.__dict__:  # the type argument: ``class X(PropertyAction[XParams])``
            for base in getattr(cls, "__orig_bases__", ()):
                arg = next(iter(getattr(base, "__args__", ())), None)
                if isinstance(arg, type) and issubclass(arg, Params):
                    cls.Params = arg
        own, profile = cls.__dict__, cls.profile
        if profile is not None and "profile" in own:
            derived = {"resource_types": (profile.type,), "role": profile.role, "api_version": profile.api_version}
            for attr, value in derived.items():
                if attr not in own:
                    setattr(cls, attr, value)
        if profile is not None and ("profile" in own or "extra_permissions" in own) and "permissions" not in own:
            cls.permissions = profile.permissions + cls.extra_permissions
        if own.get("example") is not None:
            block = own["example"].render(cls.name, cls.resource_types[0])
            cls.__doc__ = f"{(cls.__doc__ or '').rstrip()}\n\n{block}\n    "

    @property
    def noun(self) -> str:
        """How messages name the resource the action writes ("storage account"; "resource" when
        the action has no profile)."""
        return self.profile.noun if self.profile is not None else "resource"

    def document(self, ctx: PlanContext, target: str) -> tuple[str, dict[str, Any]]:
        """``target``'s id (as stored) and document; an ``ActionError`` when it is not one of
        ``resource_types`` or not in the state."""
        if ids.type_key(ids.resource_type(target)) not in {ids.type_key(t) for t in self.resource_types}:
            raise ActionError(f"expected {' or '.join(self.resource_types)}, got "
                              f"{ids.resource_type(target) or 'no resource type'}", action=self.name,
                              resource_id=target)
        doc = ctx.state.get(target)
        if doc is None:
            raise ActionError(f"{self.noun} not found", action=self.name, resource_id=target)
        return str(doc.get("id") or target), doc

    def grant_scope(self, change: Change) -> str:
        """The scope the privilege grant for ``change`` must cover (``change.grant_scope``: the one
        resource, or the narrowest existing scope). A change whose apply reads another resource with
        this action's role names that resource here."""
        return grant_scope(change)

    def grants(self, change: Change) -> list[GrantNeed]:
        """Every grant ``change`` needs, in the order they are requested (each released after the write,
        whatever happened). Default: the action's ``role`` at :meth:`grant_scope`, or each role the plan
        chose for the change there (``change.roles``: a Modify definition's ``roleDefinitionIds``)."""
        scope = self.grant_scope(change)
        chosen = [GrantNeed(scope, BuiltinRole(name, guid), "a role the plan names") for guid, name in change.roles]
        return chosen or [GrantNeed(scope, self.role)]

    def parse_params(self, raw: Mapping[str, Any] | None) -> P:
        return self.Params.model_validate(dict(raw or {}))  # type: ignore[return-value]

    @abstractmethod
    def plan(self, ctx: PlanContext, params: P) -> list[Change]:
        """The changes that would bring the finding's resource(s) into compliance; no writes."""

    @abstractmethod
    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        """Make the write through the real SDK client."""

    @abstractmethod
    def verify(self, state: StateReader, change: Change) -> str | None:
        """``None`` when the resource now holds ``change.after``; otherwise why not."""

    def undo(self, change: Change) -> Change:
        raise ActionError("this change cannot be undone", action=self.name, resource_id=change.resource_id)

    def weighs(self, change: Change) -> str:
        """Why ``change`` is one-way or costs money (``""``: neither). Its note says so to the approvers;
        a request whose plan holds such a change asks at least two of them, whatever the playbook's
        quorum (``remediator.lifecycle.opening``)."""
        return ""


REGISTRY: dict[str, Action[Any]] = {}


def register(cls: type[Action[Any]]) -> type[Action[Any]]:
    """Class decorator: add an action to the registry under ``cls.name``."""
    if cls.name in REGISTRY:
        raise RuntimeError(f"action {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def suggest(name: str) -> str:
    """'did you mean …' text for an unknown action name (or the list of valid ones)."""
    close = difflib.get_close_matches(name, REGISTRY, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid actions: " + ", ".join(sorted(REGISTRY))
