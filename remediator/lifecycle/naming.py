"""Names for what a message about remediations shows: one lookup per message (or digest), never per line.

``names_for(resolver, remediations)`` looks up every id the remediations could show (their findings,
changes, warnings, errors, and any ``texts`` the message adds) in one batch; the adapter renders the
message inside ``remediator.planning.names.naming(names)``, and its text helpers put each name before
its id. The findings' own GUIDs that name no principal (assessment keys, subscriptions) are never
sent to Microsoft Graph. ``fetch=False``: what is cached only (an answer due within Slack's 3 seconds).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence

from remediator.lifecycle.model import Remediation
from remediator.planning.names import NO_NAMES, NameResolver, Names, not_principals

log = logging.getLogger("remediator.lifecycle.naming")


def remediation_texts(remediations: Iterable[Remediation]) -> list[str]:
    """Every text of ``remediations`` a message could show, as strings to find ids in."""
    out: list[str] = []
    for rem in remediations:
        out.append(json.dumps({"finding": rem.finding, "changes": rem.changes, "warnings": list(rem.warnings),
                               "error": rem.error, "resource": rem.resource_id}, default=str, ensure_ascii=False))
    return out


def names_for(resolver: NameResolver | None, remediations: Sequence[Remediation], *, texts: Iterable[str] = (),
              fetch: bool = True) -> Names:
    """The names of one message about ``remediations`` (``NO_NAMES`` without a resolver; never raises)."""
    if resolver is None:
        return NO_NAMES
    try:
        return resolver.resolve([*remediation_texts(remediations), *texts],
                                skip=not_principals(r.finding for r in remediations), fetch=fetch)
    except Exception:  # a name is never worth a message: shown without names
        log.exception("names could not be looked up; ids shown")
        return NO_NAMES
