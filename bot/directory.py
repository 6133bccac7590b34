"""``SlackDirectory``: who is in a Slack user group, cached, failing closed.

The engine authorises an Approve click against the playbook's approvers, which may be user
groups (``S…``). Membership comes from ``usergroups.users.list`` (Tier 2, about 20 calls a
minute), so it is cached for ``ttl`` seconds, and concurrent clicks on a cold cache make one
call, not fifty. Any error (rate limit, ``no_such_subteam``, ``plan_upgrade_required``, a
timeout, a malformed answer) raises ``DirectoryUnavailable``: nobody is approved by a group
Slack cannot confirm, and the engine tells the clicker that membership could not be checked
(rather than that they are not a member). A failure is remembered for ``failure_ttl`` seconds so
that a broken Slack is not asked again on every click. ``invalidate`` drops the cache (on ``subteam_members_changed``).

Lookups happen while Slack waits for the answer to a click, so they must never sleep on a 429:
whatever client it is given, the directory calls Slack through a copy with no retry handlers
and a timeout of at most ``MAX_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient

log = logging.getLogger("bot.directory")

MAX_TIMEOUT_SECONDS = 2
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,30}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


class DirectoryUnavailable(LookupError):
    """Slack could not say who is in a user group (the lookup failed; retry later)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    members: frozenset[str]
    expires: float
    error: str | None = None

    def value(self) -> frozenset[str]:
        if self.error is not None:
            raise DirectoryUnavailable(self.error)
        return self.members


class SlackDirectory:
    """``remediator.lifecycle.engine.Directory`` backed by ``usergroups.users.list``."""

    def __init__(self, client: WebClient, *, ttl: float = 300.0, failure_ttl: float = 10.0,
                 team_id: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = WebClient(token=client.token, base_url=client.base_url, retry_handlers=[],
                                timeout=min(client.timeout, MAX_TIMEOUT_SECONDS))
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.team_id = team_id
        self.clock = clock
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.lookups = 0  # calls made to Slack, for tests and metrics

    def members(self, group_id: str) -> frozenset[str]:
        if not _GROUP_ID.fullmatch(group_id):
            return frozenset()
        hit = self._fresh(group_id)
        if hit is not None:
            return hit.value()
        with self._group_lock(group_id):
            hit = self._fresh(group_id)  # another thread may have fetched it meanwhile
            if hit is None:
                members, error = self._fetch(group_id)
                hit = _Entry(members, self.clock() + (self.ttl if error is None else self.failure_ttl), error)
                with self._guard:
                    self._cache[group_id] = hit
            return hit.value()

    def invalidate(self, group_id: str | None = None) -> None:
        with self._guard:
            if group_id is None:
                self._cache.clear()
            else:
                self._cache.pop(group_id, None)

    def _fresh(self, group_id: str) -> _Entry | None:
        with self._guard:
            entry = self._cache.get(group_id)
        if entry is not None and self.clock() < entry.expires:
            return entry
        return None

    def _group_lock(self, group_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(group_id, threading.Lock())

    def _fetch(self, group_id: str) -> tuple[frozenset[str], str | None]:
        """The members, or an empty set and why the lookup failed."""
        with self._guard:
            self.lookups += 1
        try:
            kwargs = {"team_id": self.team_id} if self.team_id else {}
            resp = self.client.usergroups_users_list(usergroup=group_id, include_disabled=False, **kwargs)
            users = resp.get("users")
        except Exception as exc:  # fail closed on anything: API errors, timeouts, bad JSON
            log.warning("usergroups.users.list %s failed; nobody is approved through it: %s", group_id, exc)
            return frozenset(), f"usergroups.users.list {group_id} failed ({type(exc).__name__})"
        if not isinstance(users, list):
            log.warning("usergroups.users.list %s: no user list in the answer; nobody is approved through it", group_id)
            return frozenset(), f"usergroups.users.list {group_id} gave no user list"
        return frozenset(u for u in users if isinstance(u, str) and _USER_ID.fullmatch(u)), None
