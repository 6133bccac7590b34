"""``SlackDirectory``: who is in a Slack user group, cached, failing closed.

The engine authorises an Approve click against the playbook's approvers, which may be user
groups (``S…``). Membership comes from ``usergroups.users.list`` (Tier 2, about 20 calls a
minute), so it is cached for ``ttl`` seconds, and concurrent clicks on a cold cache make one
call, not fifty. Any error (rate limit, ``no_such_subteam``, ``plan_upgrade_required``, a
timeout, a malformed answer) gives the empty set: nobody is approved by a group Slack cannot
confirm. A failure is remembered for ``failure_ttl`` seconds so that a broken Slack is not
asked again on every click. ``invalidate`` drops the cache (on ``subteam_members_changed``).

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


@dataclass(frozen=True, slots=True)
class _Entry:
    members: frozenset[str]
    expires: float


class SlackDirectory:
    """``remediator.engine.Directory`` backed by ``usergroups.users.list``."""

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
            return hit
        with self._group_lock(group_id):
            hit = self._fresh(group_id)  # another thread may have fetched it meanwhile
            if hit is not None:
                return hit
            members, ok = self._fetch(group_id)
            ttl = self.ttl if ok else self.failure_ttl
            with self._guard:
                self._cache[group_id] = _Entry(members, self.clock() + ttl)
            return members

    def invalidate(self, group_id: str | None = None) -> None:
        with self._guard:
            if group_id is None:
                self._cache.clear()
            else:
                self._cache.pop(group_id, None)

    def _fresh(self, group_id: str) -> frozenset[str] | None:
        with self._guard:
            entry = self._cache.get(group_id)
        if entry is not None and self.clock() < entry.expires:
            return entry.members
        return None

    def _group_lock(self, group_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(group_id, threading.Lock())

    def _fetch(self, group_id: str) -> tuple[frozenset[str], bool]:
        with self._guard:
            self.lookups += 1
        try:
            kwargs = {"team_id": self.team_id} if self.team_id else {}
            resp = self.client.usergroups_users_list(usergroup=group_id, include_disabled=False, **kwargs)
            users = resp.get("users")
        except Exception as exc:  # fail closed on anything: API errors, timeouts, bad JSON
            log.warning("usergroups.users.list %s failed, treating the group as empty: %s", group_id, exc)
            return frozenset(), False
        if not isinstance(users, list):
            log.warning("usergroups.users.list %s: no user list in the answer; treating the group as empty", group_id)
            return frozenset(), False
        return frozenset(u for u in users if isinstance(u, str) and _USER_ID.fullmatch(u)), True
