"""Changes and the plan fingerprint: what an action plans, and what an approval binds to.

A ``Change`` is one write to one ARM resource with the full documents before and after.
The fingerprint is the SHA-256 of the canonical JSON of what the changes write and the values
they overwrite (:func:`binding`): an approval binds to it, and apply refuses to write when a
re-plan gives a different fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from remediator import ids
from remediator._json import json_copy

Operation = Literal["update", "delete", "create", "invoke"]
OPERATIONS: tuple[Operation, ...] = ("update", "delete", "create", "invoke")


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """One write. ``before``/``after`` are full ARM documents (``None`` where none exists).

    For ``invoke`` (a POST action such as ``regenerateCredential``) ``resource_id`` is the action
    URL path and ``after`` the request body. ``note`` is a one-line human summary.
    """

    action: str
    resource_id: str
    operation: Operation
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource_id": self.resource_id,
            "operation": self.operation,
            "before": self.before,
            "after": self.after,
        }


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def merge_patch(before: Any, after: Any) -> Any:
    """The RFC 7396 merge patch that turns ``before`` into ``after`` (objects recurse, ``None``
    removes a key, anything else, arrays included, is replaced whole)."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return json_copy(after)
    patch: dict[str, Any] = {}
    for key, value in after.items():
        if key not in before:
            patch[key] = json_copy(value)
        elif before[key] != value:
            patch[key] = merge_patch(before[key], value) if isinstance(value, Mapping) and \
                isinstance(before[key], Mapping) else json_copy(value)
    for key in before:
        if key not in after:
            patch[key] = None
    return patch

def patched_paths(patch: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted leaf paths a merge patch writes."""
    out: list[str] = []
    for key, value in patch.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(patched_paths(value, path + "."))
        else:
            out.append(path)
    return out


_NOT_SET = "<not set>"


def _at(doc: Any, path: str) -> Any:
    node = doc
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _NOT_SET
        node = node[key]
    return node


def binding(change: Change) -> dict[str, Any]:
    """What an approval of ``change`` binds to: the write, and the values it replaces.

    An update binds to its merge patch (exactly what is written) and to the ``before`` value of
    every path the patch writes, not to the rest of the document: a property the change does not
    touch may move (another approved fix on the same resource, a tag, a provisioning timestamp)
    without invalidating the approval, while any change to what it writes or overwrites does. The
    worker always writes its fresh re-plan, never the approved copy, so the untouched rest is
    current. A delete, a create or an invoke binds to its whole documents.
    """
    if change.operation == "update" and isinstance(change.before, Mapping) and isinstance(change.after, Mapping):
        patch = merge_patch(change.before, change.after)
        return {"action": change.action, "resource_id": change.resource_id, "operation": change.operation,
                "patch": patch, "replaces": {p: _at(change.before, p) for p in patched_paths(patch)}}
    return change.to_json()


def fingerprint(changes: Sequence[Change]) -> str:
    """``sha256:<hex>`` of the canonical JSON of the changes' bindings (see :func:`binding`), in order."""
    body = canonical_json([binding(c) for c in changes]).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest()


_AUTHZ_EXTENSION = re.compile(r"/providers/Microsoft\.Authorization/", re.IGNORECASE)
_PROVIDERS = re.compile(r"/providers/", re.IGNORECASE)


def is_arm_scope(resource_id: str) -> bool:
    """ARM ids start with ``/``; Key Vault data-plane URLs (``https://…``) are not ARM scopes."""
    return resource_id.strip().startswith("/")


def grant_scope(change: Change) -> str:
    """The ARM scope a grant for ``change`` covers: the one resource, or the narrowest existing scope.

    * an ``invoke`` targets an action URL (``…/registries/r/regenerateCredential``): the resource
      that owns the action;
    * a ``Microsoft.Authorization`` extension resource (a role assignment ``{scope}/providers/
      Microsoft.Authorization/roleAssignments/{name}``): the scope it is attached to, where
      ``roleAssignments/write|delete`` is evaluated;
    * any other extension resource (``{resource}/providers/Microsoft.Insights/diagnosticSettings/
      {name}``: a second ``/providers/``): the resource it is attached to, created or not (a role
      at a resource covers its extension resources);
    * a setting of the subscription itself, a provider resource with no resource group
      (``/subscriptions/{id}/providers/Microsoft.Security/pricings/{plan}``): the subscription
      (role assignments are made at a management group, subscription, resource group or resource;
      Azure Policy's own Defender-plan remediations deploy at the subscription);
    * a ``create``: the new resource does not exist yet and PIM cannot assign at a scope that does not
      exist, so the parent resource (a security rule → its NSG), or the resource group for a
      top-level resource;
    * otherwise the resource itself.

    Key Vault data-plane URLs are returned unchanged: they are not ARM scopes and are covered by the
    deployment's role on the vault, not by a grant (``elevate`` returns a ``NotRequired`` grant).
    """
    rid = change.resource_id.strip().rstrip("/")
    if not is_arm_scope(rid):
        return rid
    if change.operation == "invoke" and "/" in rid:
        return rid.rsplit("/", 1)[0]
    m = _AUTHZ_EXTENSION.search(rid)
    if m is not None:
        return rid[: m.start()] or "/"
    cuts = [p.start() for p in _PROVIDERS.finditer(rid)]
    if len(cuts) > 1:
        return rid[: cuts[-1]]
    parsed = ids.parse(rid)
    if parsed.subscription_id and not parsed.resource_group and parsed.namespace and cuts:
        return rid[: cuts[0]]
    if change.operation == "create":
        parent = ids.parse(rid).parent()
        if parent is not None:
            return parent.id
        return re.split(r"/providers/", rid, maxsplit=1, flags=re.IGNORECASE)[0] or "/"
    return rid


def plan_etag(change: Change) -> str | None:
    """The ETag of the document the plan read (``change.before``), for a write conditional on it
    (``If-Match``); None for the types whose documents carry none (storage accounts, registries, …)."""
    etag = (change.before or {}).get("etag") if isinstance(change.before, Mapping) else None
    return etag if isinstance(etag, str) and etag else None


def without_etag(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``doc`` without its ``etag``: an undo's documents are what remediator wrote, whose ETag is stale
    by construction (the applier puts the current one back after its check: ``with_etag``)."""
    return None if doc is None else {k: v for k, v in doc.items() if k != "etag"}


def with_etag(change: Change, etag: str | None) -> Change:
    """``change`` with ``etag`` in both its documents (a write conditional on it; the patch between
    the two stays the same); ``change`` itself when there is none."""
    if not etag or change.before is None:
        return change
    after = None if change.after is None else {**change.after, "etag": etag}
    return replace(change, before={**change.before, "etag": etag}, after=after)
