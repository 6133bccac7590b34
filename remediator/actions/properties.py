"""Declarations: "set these properties to safe values" (Azure Policy's Modify effect, as code).

Most fixes are a handful of property paths on one resource type set to their safe values. Such an
action is a declaration, a subclass of :class:`PropertyAction` with class attributes only: the
type's profile (``remediator.actions.profiles``: type, API version, role, permissions), the
settings, what the change can break, and the playbook example of its docstring (``acr.py``'s
``DisableAnonymousPull``, 11 lines, is one whole)::

    @register
    class DisableLocalAuth(PropertyAction[NoParams]):
        \"\"\"Set disableLocalAuth to true: Microsoft Entra ID tokens only, no API keys.\"\"\"

        name = "cognitive.disable-local-auth"
        profile = COGNITIVE_ACCOUNT
        settings = (Setting("properties.disableLocalAuth", True, absent=False),)
        breaks = "clients calling with an API key stop authenticating"
        example = Example("Turn off API key access to AI services accounts.", policies=("71ef260a-…",))

and plan, apply, verify and undo follow from it:

* ``plan`` reads the finding's resource (``target_id`` may map it, e.g. a child id to its parent);
  when a setting differs it refuses if :meth:`PropertyAction.refusal` gives a reason (a compliant
  resource is never refused), else plans one ``update`` whose ``after`` is the document with every
  setting that differs put to its value (``values`` may take them from the parameters; ``same``
  says when two values are equivalent). No setting differs: no change. The note lists
  ``path: old -> new``, then what the change can break and, for an irreversible one, that it
  cannot be undone.
* ``apply`` sends the RFC 7396 merge patch from ``before`` to ``after`` (exactly the properties
  that change, nothing else), with ``If-Match`` of the ETag the plan read when the document has one
  (412 → ``ChangedSincePlan``: stale), as a ``PATCH`` by id (``remediator.azure.lro.write``, through
  azure-mgmt-resource's generic client) at the profile's pinned ``api_version`` (one write path for every
  declared type; the API version the plan was computed against is the one written).
* ``verify`` reads the resource back and compares every patched path (absent counts as ``absent``).
* ``undo`` (when ``irreversible`` is empty) plans the inverse: each changed path back to its
  ``before`` value, or to the value ARM means by its absence. An irreversible action's ``undo``
  refuses with the declared reason.
* ``whole`` names nested objects the PATCH carries whole when a member changes (a firewall
  rule set whose API replaces rather than merges); ``undo`` removes again a path the resource did
  not have when its absence has no value to write (``Setting(absent=None)``).

Families build on it: ``remediator.actions.firewall`` (close a public endpoint: firewall rules or
private endpoints only). Special cases (disk export state, storage's named containers) reuse
:func:`get_path`, :func:`with_paths`, :func:`without_paths` and :func:`merge_patch` from here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Action, ApplyResult, Params, PlanContext, label
from remediator.actions.change import Change, merge_patch, patched_paths, plan_etag, without_etag
from remediator.azure.lro import write
from remediator.azure.reader import register_api_version
from remediator.azure.state import StateReader
from remediator.errors import ActionError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Params)
_MISSING: Any = object()
_ENVELOPE = frozenset({"id", "name", "type", "etag", "eTag", "systemData"})  # ARM sets these; a PUT never carries


class NoParams(Params):
    """No parameters."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One property an action owns: its dotted path in the ARM document, its safe value, and the
    value ARM means when the property is absent (compared by plan/verify, restored by undo)."""

    path: str
    value: Any
    absent: Any = None


def get_path(doc: Mapping[str, Any] | None, path: str, default: Any = None) -> Any:
    """The value at a dotted ``path`` of ``doc``, or ``default`` when any step is missing."""
    node: Any = doc
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return default if node is None else node


def with_paths(doc: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with each dotted path set (missing or non-object steps become objects)."""
    out = json_copy(dict(doc))
    for path, value in values.items():
        node = out
        *parents, leaf = path.split(".")
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf] = json_copy(value)
    return out


def without_paths(doc: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """A copy of ``doc`` without the dotted paths (missing ones are ignored)."""
    out = json_copy(dict(doc))
    for path in paths:
        node: Any = out
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def without_read_only(doc: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """A copy of ``doc`` without the dotted ``paths``; a ``*`` step stands for every element of a list
    (``properties.agentPoolProfiles.*.provisioningState``)."""
    out = json_copy(dict(doc))

    def drop(node: Any, steps: list[str]) -> None:
        if not steps:
            return
        head, rest = steps[0], steps[1:]
        if head == "*":
            for item in node if isinstance(node, list) else ():
                drop(item, rest)
        elif isinstance(node, dict):
            if rest:
                drop(node.get(head), rest)
            else:
                node.pop(head, None)

    for path in paths:
        drop(out, path.split("."))
    return out


def _show(value: Any) -> str:
    if value is _MISSING or value is None:
        return "(not set)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):  # an object setting: its scalars, and the length of its lists
        return ", ".join(f"{k} {len(v)}" if isinstance(v, list) else f"{k} {_show(v)}"
                         for k, v in value.items() if not isinstance(v, Mapping)) or "{}"
    return str(value)


class PropertyAction(Action[P]):
    """Base of the declarations; see the module docstring."""

    Params: ClassVar[type[Params]] = NoParams  # a declaration with parameters names its own

    settings: ClassVar[tuple[Setting, ...]] = ()
    breaks: ClassVar[str] = ""
    """What the change can break, said in every planned change's note (and so in Slack)."""
    irreversible: ClassVar[str] = ""
    """Non-empty: why the change cannot be undone. The plan says so; ``undo`` refuses with it."""
    whole: ClassVar[tuple[str, ...]] = ()
    """Object paths the PATCH carries whole whenever anything under them changes (for an API that
    replaces a nested object rather than merging it, e.g. a firewall rule set)."""
    method: ClassVar[str] = "PATCH"
    """``PUT`` for a type whose PATCH takes tags only (AKS clusters, Databricks workspaces, most
    network resources, App Service's publishing-credential policies): ``apply`` then sends the
    whole planned document, without ``read_only`` paths and ARM's own envelope (``id``, ``name``,
    ``type``, ``etag``, ``systemData``), as ``az`` does for such types (GET, change, PUT)."""
    read_only: ClassVar[tuple[str, ...]] = ()
    """Dotted paths the REST spec marks ``readOnly``, left out of a PUT body (never written back)."""
    finding_only: ClassVar[tuple[str, ...]] = ()
    """Types among ``resource_types`` whose findings the action maps to the resources it writes (a VM to its
    disks) and only reads, at their own API version: not registered at the profile's."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.reversible = not cls.irreversible
        if "api_version" in cls.__dict__:  # set here or from the class's own profile
            for rtype in cls.resource_types:
                if rtype not in cls.finding_only:
                    register_api_version(rtype, cls.api_version)

    # --- hooks a declaration may override ------------------------------------------------------

    def target_id(self, ctx: PlanContext) -> str:
        """The resource the action writes; by default the finding's resource."""
        return ctx.finding.resource_id

    def values(self, ctx: PlanContext, params: P, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        """Path → safe value; by default each declared setting's value."""
        return {s.path: s.value for s in self.settings}

    def same(self, path: str, have: Any, want: Any) -> bool:
        """Whether the resource's value at ``path`` already is ``want``: equality, strings compared
        case-insensitively (ARM's enum values are: ``Disabled`` and ``disabled`` are one value, and
        Azure Policy's ``equals`` compares them so too)."""
        if isinstance(have, str) and isinstance(want, str):
            return have.casefold() == want.casefold()
        return bool(have == want)

    def refusal(self, ctx: PlanContext, params: P, doc: Mapping[str, Any]) -> str | None:
        """Why the change must not be planned for this resource (the plan refuses, nothing is
        written), or ``None``."""
        return None

    def notes(self, ctx: PlanContext, params: P, doc: Mapping[str, Any]) -> Sequence[str]:
        """Extra one-line remarks for the change's note (who is cut off, and the like)."""
        return ()

    def describe(self, doc: Mapping[str, Any], changed: Mapping[str, Any]) -> list[str]:
        """The note's ``path: old -> new`` parts for the changed paths."""
        return [f"{path.removeprefix('properties.')}: {_show(get_path(doc, path, _MISSING))} -> {_show(v)}"
                for path, v in changed.items()]

    # --- derived contract -----------------------------------------------------------------------

    def _absent(self, path: str) -> Any:
        """ARM's value for an absent ``path``: the setting's ``absent``, or for a path under a
        setting whose ``absent`` is an object, the value at the rest of the path in it."""
        for s in self.settings:
            if s.path == path:
                return s.absent
            if path.startswith(s.path + ".") and isinstance(s.absent, Mapping):
                return get_path(s.absent, path[len(s.path) + 1:])
        return None

    def patch_body(self, change: Change) -> Any:
        """The body ``apply`` sends: the merge patch ``before`` → ``after``, with each ``whole``
        path that changes carried whole; for a ``PUT`` type, the whole ``after`` document without
        its read-only paths (empty when nothing changes)."""
        if self.method == "PUT":
            if not merge_patch(change.before, change.after):
                return {}
            doc = dict(change.after or {})
            return without_read_only({k: v for k, v in doc.items() if k not in _ENVELOPE}, self.read_only)
        body = merge_patch(change.before, change.after)
        for path in self.whole:
            if not isinstance(body, dict) or get_path(body, path, _MISSING) is _MISSING:
                continue
            value = get_path(change.after, path, _MISSING)
            if value is not _MISSING:
                body = with_paths(body, {path: value})
        return body

    def plan(self, ctx: PlanContext, params: P) -> list[Change]:
        return self.plan_for(ctx, params, self.target_id(ctx))

    def plan_for(self, ctx: PlanContext, params: P, target: str) -> list[Change]:
        """The plan for the resource ``target`` (what ``plan`` does for ``target_id``)."""
        resource_id, doc = self.document(ctx, target)
        wanted = self.values(ctx, params, doc)
        changed = {path: value for path, value in wanted.items()
                   if not self.same(path, get_path(doc, path, self._absent(path)), value)}
        if not changed:
            return []  # already compliant: nothing to refuse either
        reason = self.refusal(ctx, params, doc)
        if reason:
            raise ActionError(f"refused: {reason}", action=self.name, resource_id=resource_id)
        parts = self.describe(doc, changed)
        parts.extend(self.notes(ctx, params, doc))
        if self.breaks:
            parts.append(f"can break: {self.breaks}")
        if self.irreversible:
            parts.append(f"IRREVERSIBLE: {self.irreversible}")
        return [Change(action=self.name, resource_id=resource_id, operation="update", before=doc,
                       after=with_paths(doc, changed), note="; ".join(parts))]

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        if change.before is None or change.after is None:
            raise ActionError("the change has no before/after documents", action=self.name,
                              resource_id=change.resource_id)
        body = self.patch_body(change)
        if not body:
            return ApplyResult(change=change, detail="nothing to write")
        patch = merge_patch(change.before, change.after)
        if not ids.parse(change.resource_id).subscription_id:
            raise ActionError("not a resource id with a subscription", action=self.name,
                              resource_id=change.resource_id)
        what = f"{self.noun} {label(change.resource_id)}"
        try:
            out = write(clients, "PUT" if self.method == "PUT" else "PATCH", change.resource_id, self.api_version,
                        body=body, if_match=plan_etag(change))
        except HttpResponseError as e:
            raise ActionError(f"{self.method} of {what} failed: {http_error_line(e)}", action=self.name,
                              resource_id=change.resource_id) from None
        written = ", ".join(f"{p.removeprefix('properties.')} {_show(get_path(patch, p))}"
                            for p in patched_paths(patch))
        log.info("patched %s: %s", change.resource_id, written)
        return ApplyResult(change=change, response=out if isinstance(out, Mapping) else None,
                           detail=f"{what}: {written}")

    def verify(self, state: StateReader, change: Change) -> str | None:
        current = state.get(change.resource_id)
        if current is None:
            return f"{ids.parse(change.resource_id).name} no longer exists"
        wrong = []
        for path in patched_paths(merge_patch(change.before or {}, change.after or {})):
            want = get_path(change.after, path, self._absent(path))
            have = get_path(current, path, self._absent(path))
            if not self.same(path, have, want):
                wrong.append(f"{path.removeprefix('properties.')} is {_show(have)}, expected {_show(want)}")
        return "; ".join(wrong) or None

    def weighs(self, change: Change) -> str:
        return f"irreversible: {self.irreversible}" if self.irreversible else ""

    def undo(self, change: Change) -> Change:
        if self.irreversible:
            raise ActionError(f"cannot be undone: {self.irreversible}", action=self.name,
                              resource_id=change.resource_id)
        if change.before is None or change.after is None:
            raise ActionError("this change has no before/after documents to undo", action=self.name,
                              resource_id=change.resource_id)
        paths = patched_paths(merge_patch(change.before, change.after))
        previous = {p: get_path(change.before, p, self._absent(p)) for p in paths}
        # a path the resource did not have, whose absence has no value to write: removed again
        removed = [p for p, v in previous.items() if v is None and get_path(change.before, p, _MISSING) is _MISSING
                   and any(s.path == p for s in self.settings)]
        previous = {p: v for p, v in previous.items() if v is not None}
        if not previous and not removed:
            raise ActionError("nothing to restore: the previous values are unknown", action=self.name,
                              resource_id=change.resource_id)
        shown = ", ".join([f"{p.removeprefix('properties.')} {_show(v)}" for p, v in previous.items()]
                          + [f"{p.removeprefix('properties.')} removed" for p in removed])
        return Change(action=self.name, resource_id=change.resource_id, operation="update",
                      before=without_etag(change.after),
                      after=without_etag(without_paths(with_paths(change.after, previous), removed)),
                      note=f"undo: {shown}")
