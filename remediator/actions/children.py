"""Child resources: actions that create, update and delete whole resources by id.

An NSG's security rules, a virtual network's peerings, policy exemptions and role assignments are
each written as a whole document, not patched. :class:`ChildResourceAction` is that write path,
once; a declaration plans its changes (``delete``, ``update`` or ``create`` of one resource each,
with the full documents before and after) and says what a PUT carries and what verify compares:

* ``apply``: ``DELETE`` by id, or ``PUT`` of :meth:`ChildResourceAction.body` by id, through
  azure-mgmt-resource's generic client at the profile's API version, following the long-running
  operation (``remediator.azure.lro.write``); an error is one line, ``<verb> of <noun> <name> failed: <status> <code>:
  <message>``;
* ``verify``: a deleted resource is gone; a written one exists and :meth:`mismatch` finds nothing;
* ``undo``: from the plan's documents: a delete becomes a create of ``before``, an update an update
  back to ``before``, a create a delete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Action, ApplyResult, Params, label
from remediator.actions.change import Change, plan_etag, without_etag
from remediator.azure.lro import write
from remediator.azure.state import StateReader
from remediator.errors import ActionError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Params)
_PAST = {"delete": "deleted", "create": "created", "update": "wrote"}


def props(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A document's ``properties`` (``{}`` when absent or not an object)."""
    value = (doc or {}).get("properties")
    return value if isinstance(value, Mapping) else {}


class ChildResourceAction(Action[P]):
    """Base of the actions that write whole resources by id; see the module docstring."""

    reversible = True
    writable: ClassVar[tuple[str, ...]] = ()
    """The properties a PUT carries (those that are set); see :meth:`body`."""
    id_hint: ClassVar[str] = ""
    """What an id of the type looks like, for the refusal of another id."""

    # --- hooks ----------------------------------------------------------------------------------------

    def body(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The PUT body for a planned document: its ``writable`` properties that are set."""
        have = props(doc)
        return {"properties": {k: json_copy(have[k]) for k in self.writable if have.get(k) is not None}}

    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        """What in the resource read back (``have``) is not what the plan wrote (``want``)."""
        return []

    def mismatch(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> str | None:
        """The verify problem with a written resource (after its noun and name), or None."""
        diffs = self.differences(want, have)
        return f"differs from the plan: {'; '.join(diffs)}" if diffs else None

    def written(self, change: Change) -> str:
        """What a PUT wrote, for the apply result's detail (``": allowForwardedTraffic false"``)."""
        return ""

    def undo_note(self, change: Change) -> str:
        """What the undo of ``change`` puts back, beyond re-creating, restoring or deleting it."""
        return ""

    # --- the contract ---------------------------------------------------------------------------------

    def check_id(self, resource_id: str) -> None:
        if ids.type_key(ids.resource_type(resource_id)) != ids.type_key(self.profile.type if self.profile else ""):
            raise ActionError(f"not a {self.noun} id{f' (expected {self.id_hint})' if self.id_hint else ''}",
                              action=self.name, resource_id=resource_id)

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415  (lazy SDK import)

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        rid = change.resource_id
        self.check_id(rid)
        what = f"{self.noun} {label(rid)}"
        if change.operation not in ("delete", "update", "create") or \
                (change.operation != "delete" and change.after is None):
            raise ActionError(f"cannot apply a {change.operation!r} change", action=self.name, resource_id=rid)
        try:
            if change.operation == "delete":
                write(clients, "DELETE", rid, self.api_version, if_match=plan_etag(change))
                out = None
            else:
                out = write(clients, "PUT", rid, self.api_version, body=self.body(change.after or {}),
                            if_match=plan_etag(change))
        except HttpResponseError as e:
            verb = {"delete": "delete", "create": "create"}.get(change.operation, "write")
            raise ActionError(f"{verb} of {what} failed: {http_error_line(e)}", action=self.name,
                              resource_id=rid) from None
        log.info("%s %s", _PAST[change.operation], rid)
        detail = f"{_PAST[change.operation]} {what}" + ("" if change.operation == "delete" else self.written(change))
        return ApplyResult(change=change, response=out if isinstance(out, Mapping) else None, detail=detail)

    def verify(self, state: StateReader, change: Change) -> str | None:
        current = state.get(change.resource_id)
        what = f"{self.noun} {ids.parse(change.resource_id).name}"
        if change.operation == "delete":
            return None if current is None else f"{what} still exists"
        if current is None:
            return f"{what} does not exist"
        problem = self.mismatch(change.after or {}, current)
        return f"{what} {problem}" if problem else None

    def undo(self, change: Change) -> Change:
        what = f"{self.noun} {ids.parse(change.resource_id).name}"
        extra = self.undo_note(change)
        extra = f" ({extra})" if extra else ""
        rid = change.resource_id
        if change.operation == "delete" and change.before is not None:
            return Change(action=self.name, resource_id=rid, operation="create", before=None,
                          after=without_etag(change.before), note=f"undo: re-create {what}{extra}")
        if change.operation == "update" and change.before is not None and change.after is not None:
            return Change(action=self.name, resource_id=rid, operation="update", before=without_etag(change.after),
                          after=without_etag(change.before), note=f"undo: restore {what}{extra}")
        if change.operation == "create" and change.after is not None:
            return Change(action=self.name, resource_id=rid, operation="delete", before=without_etag(change.after),
                          after=None, note=f"undo: delete {what} again{extra}")
        return super().undo(change)
