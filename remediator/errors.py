"""Errors a user can cause, and errors the system reports loudly.

The tree::

    RemediatorError                 base; ``str(err)`` is one line meant for a human
    ├── InputError                  something the user handed us is wrong; names where
    │   ├── PayloadError            a finding payload: not JSON, or no known shape
    │   ├── PlaybookError           one or more playbook problems (``issues``: file:line: path: message)
    │   ├── ExemptionsError         the exemptions file
    │   ├── StateError              saved resource state (``--resources``)
    │   ├── ConfigError             configuration / environment
    │   └── UsageError              the command line names what does not exist (a store, a control,
    │                               a playbook); the CLI exits 2, like a usage error
    ├── ActionError                 an action could not plan, apply or verify a change
    │   ├── VerifyError             apply finished but the resource is not in the planned state
    │   └── ChangedSincePlan        ARM refused a write conditional on the plan's ETag (412): stale
    ├── StoreUnavailable            a store call failed where the caller must not mistake it for
    │                               anything else's failure (an apply's trail write): it decides nothing
    └── NamesUnavailable            a name lookup (Microsoft Graph, ARM policy definitions) failed: the
                                    caller shows ids instead, with one warning; never fails a plan

Every message names the file, the line or the field, and what would be valid. The CLI prints
``str(err)`` on one line to stderr and exits 1; nothing prints a traceback for these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RemediatorError(Exception):
    """Base of every error the project raises on purpose."""


class InputError(RemediatorError):
    """The input (a file, a payload, a setting) is wrong; the message says where and why."""


class PayloadError(InputError):
    """A finding payload is not JSON, or is JSON of no known Defender/Policy shape."""


class StateError(InputError):
    """Saved resource state (``--resources``) cannot be read."""


class ConfigError(InputError):
    """A setting is missing or invalid. ``problems`` holds every one (one line each; ``str()`` is the
    first, with how many more), so a deployment learns all it must fix at once."""

    def __init__(self, message: str = "", *, problems: Sequence[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or ((message,) if message else ())
        if not message and self.problems:
            more = len(self.problems) - 1
            message = self.problems[0] + (f" (and {more} more)" if more else "")
        super().__init__(message)


class UsageError(InputError):
    """The command line names something that does not exist (``--store typo.db``, ``--control 'MCSB XX-1'``):
    refused, never answered as if it were empty; the CLI exits 2 (``EXIT_USAGE``)."""


class ExemptionsError(InputError):
    """The exemptions file is invalid."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a YAML file: where, which field, what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return text.translate(ONE_LINE)  # a YAML key may hold a newline: the issue stays one line


ONE_LINE = str.maketrans(dict.fromkeys([*map(chr, range(32)), "\x7f", "\x85", "\u2028", "\u2029"], " "))
"""``str.translate`` table: control and line-separator characters become spaces (messages stay one line)."""

LINE_LIMIT = 1000
"""How long a message may be anywhere a person reads it as one line (a reply, the audit, a check,
a plan's reason). Slack's own limits are the Slack adapter's to apply (``bot.blocks.clip``)."""


def one_line(value: object, limit: int | None = LINE_LIMIT) -> str:
    """``value`` as one line: control and line-separator characters and runs of white space become
    one space; past ``limit`` characters it is cut at a word boundary where one is near, with ``…``
    (``limit=None``: never cut)."""
    flat = " ".join(str(value).translate(ONE_LINE).split())
    if limit is None or len(flat) <= limit:
        return flat
    cut = flat[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space >= limit * 0.8:  # a word boundary close to the limit: do not cut a word in two
        cut = cut[:space]
    return cut + "…"


def error_line(exc: BaseException, limit: int | None = LINE_LIMIT) -> str:
    """An exception as one line: remediator's errors as they are (they name what is wrong), any
    other prefixed with its type (``TimeoutError: …``); never empty."""
    text = str(exc) if isinstance(exc, RemediatorError) else f"{type(exc).__name__}: {exc}"
    return one_line(text, limit) or type(exc).__name__


class PlaybookError(InputError):
    """One or more playbook problems; ``str()`` is the first, ``issues`` holds them all."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        first = str(self.issues[0]) if self.issues else "invalid playbooks"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first + more)


class ActionError(RemediatorError):
    """An action could not plan, apply or verify; carries the action and resource."""

    def __init__(self, message: str, *, action: str = "", resource_id: str = "") -> None:
        self.action = action
        self.resource_id = resource_id
        prefix = f"{action}: " if action else ""
        suffix = f" ({resource_id})" if resource_id else ""
        super().__init__(f"{prefix}{message}{suffix}")


class VerifyError(ActionError):
    """After apply, the resource does not hold the planned state."""


class ChangedSincePlan(ActionError):
    """ARM answered 412 PreconditionFailed to a write sent with ``If-Match`` of the ETag the plan read:
    the resource changed since; nothing was written, and the plan is stale (not failed)."""


class StoreUnavailable(RemediatorError):
    """A store call failed (an outage: azure-core's connection errors or a 5xx from Table or Queue
    Storage; SQLite's "database is locked" past its busy timeout; anything else it raised), raised
    where the caller must tell that from a failure of what it was doing (``remediator.lifecycle
    .runtime.store_call``: an apply tells "the trail could not be written" from "ARM refused the
    write" by where the error came from, since on Azure both are azure-core errors). It decides
    nothing: the job that met it is delivered again and recovers from what the store holds. The
    original error is its ``__cause__``."""


class NamesUnavailable(RemediatorError):
    """Display names could not be read (Microsoft Graph or ARM unreachable, refused, too slow): whoever
    asked shows the ids instead and says so once; nothing else fails for a missing name."""
