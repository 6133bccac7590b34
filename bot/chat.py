"""``SlackChat``: the engine's chat port on Slack, and the two Web API clients.

Two clients, on purpose:

* ``worker_client(settings)`` is for the queue worker (``SlackChat``): a normal timeout, a
  connection-error retry, and ``RetryAfterHandler`` (a ``RateLimitErrorRetryHandler``) that
  honours 429 ``Retry-After`` by waiting in the worker thread. ``SlackChat`` also paces
  ``chat.postMessage`` to at most one message per second per channel (``ChannelPacer``), Slack's
  documented rate for posting, so a storm is posted as fast as Slack allows and no faster.
* ``ack_client(settings)`` is for the bolt App answering Slack's requests: a short timeout and no
  retry handlers at all. A 429 there surfaces at once as an error (logged; the worker updates the
  message later) instead of sleeping through Slack's 3-second limit.

The clock and the sleep function are injectable, so tests check pacing and Retry-After without
waiting for real seconds.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot import blocks
from remediator.lifecycle.chat import MessageRef, ResultKind
from remediator.lifecycle.model import Remediation

if TYPE_CHECKING:
    from remediator.config.settings import Settings
    from remediator.lifecycle.engine import Engine

log = logging.getLogger("bot.chat")

DEFAULT_API_URL = "https://slack.com/api/"
ACK_TIMEOUT_SECONDS = 2
WORKER_TIMEOUT_SECONDS = 30
RATE_LIMIT_RETRIES = 5
POST_INTERVAL_SECONDS = 1.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def api_url(settings: Settings) -> str:
    """The Web API base URL (GovSlack and tests set their own), with the trailing slash."""
    url = (settings.slack_api_url or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


class RetryAfterHandler(RateLimitErrorRetryHandler):
    """Retry a 429 after its ``Retry-After`` seconds (plus up to ``jitter`` seconds).

    slack_sdk's own handler sleeps with ``time.sleep``; this one takes the sleep function, so
    tests need not wait, and it remembers the waits it made (``waits``).
    """

    def __init__(self, *, max_retry_count: int = RATE_LIMIT_RETRIES, sleep: Sleep = time.sleep,
                 jitter: float = 1.0, max_wait: float = 300.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.sleep = sleep
        self.jitter = jitter
        self.max_wait = max_wait
        self.waits: list[float] = []

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        if response is None:  # only reached for a 429 response; keep the base class's contract
            raise error or RuntimeError("rate-limit retry without a response")
        state.next_attempt_requested = True
        retry_after = 1.0
        for name, values in response.headers.items():
            if name.lower() == "retry-after" and values:
                try:
                    retry_after = float(values[0])
                except ValueError:
                    retry_after = 1.0
        wait = min(max(retry_after, 0.0) + random.random() * self.jitter, self.max_wait)  # noqa: S311 (jitter)
        self.waits.append(wait)
        log.warning("Slack rate limit on %s: waiting %.1fs (Retry-After %s)", request.url, wait, retry_after)
        self.sleep(wait)
        state.increment_current_attempt()


def worker_client(settings: Settings, *, sleep: Sleep = time.sleep, jitter: float = 1.0,
                  timeout: int = WORKER_TIMEOUT_SECONDS, max_rate_limit_retries: int = RATE_LIMIT_RETRIES) -> WebClient:
    """The queue worker's client: honours 429 Retry-After (waiting in this thread), retries a dropped connection."""
    handlers: list[RetryHandler] = [
        ConnectionErrorRetryHandler(),
        RetryAfterHandler(max_retry_count=max_rate_limit_retries, sleep=sleep, jitter=jitter),
    ]
    return WebClient(token=settings.slack_bot_token or None, base_url=api_url(settings), timeout=timeout,
                     retry_handlers=handlers)


def ack_client(settings: Settings, *, timeout: int = ACK_TIMEOUT_SECONDS) -> WebClient:
    """The acknowledgement path's client: short timeout, no retries (never sleeps on a 429)."""
    return WebClient(token=settings.slack_bot_token or None, base_url=api_url(settings), timeout=timeout,
                     retry_handlers=[])


class ChannelPacer:
    """At most one message per ``interval`` seconds per channel, across threads.

    ``with pacer.slot(channel): post(...)`` waits until the channel's previous post is at least
    ``interval`` old, then holds the channel while posting (a 429 wait inside the slot delays the
    channel's next post too). ``sent`` keeps (channel, clock time) of every slot, for tests.
    """

    def __init__(self, interval: float = POST_INTERVAL_SECONDS, *, clock: Clock = time.monotonic,
                 sleep: Sleep = time.sleep) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._last: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.sent: list[tuple[str, float]] = []

    def _lock(self, channel: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(channel, threading.Lock())

    @contextmanager
    def slot(self, channel: str) -> Iterator[float]:
        with self._lock(channel):
            last = self._last.get(channel)
            now = self.clock()
            if last is not None and now < last + self.interval:
                self.sleep(last + self.interval - now)
                now = self.clock()
            self._last[channel] = now
            with self._guard:
                self.sent.append((channel, now))
            yield now


class DigestIndex(Protocol):
    """Which remediations a digest message stands for, so "Approve all" needs no scan of every pending one."""

    def remember(self, ref: MessageRef, remediation_ids: Sequence[str]) -> None: ...
    def members(self, channel: str, ts: str) -> list[str] | None: ...


class FlagStore(Protocol):
    def get_flag(self, name: str) -> str | None: ...
    def set_flag(self, name: str, value: str | None) -> None: ...


class StoreDigestIndex:
    """``DigestIndex`` in the store's shared flags (``slack-digest:<channel>:<ts>`` → JSON list of ids).

    Written by the worker when it posts a digest, read by the App when someone clicks "Approve
    all": a storm of 10,000 pending remediations would otherwise be decoded on Slack's 3-second
    path just to find the 500 of one message.
    """

    PREFIX = "slack-digest:"

    def __init__(self, store: FlagStore) -> None:
        self.store = store

    def remember(self, ref: MessageRef, remediation_ids: Sequence[str]) -> None:
        self.store.set_flag(f"{self.PREFIX}{ref.channel}:{ref.ts}", json.dumps(list(remediation_ids)))

    def members(self, channel: str, ts: str) -> list[str] | None:
        raw = self.store.get_flag(f"{self.PREFIX}{channel}:{ts}")
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return [str(v) for v in value] if isinstance(value, list) else None


class SlackChat:
    """``remediator.lifecycle.chat.ChatPort`` on Slack: approval and digest messages, in-place updates, thread replies.

    ``engine_requirement(remediation)`` gives the "1 of 2 approvals from …" line: the engine's
    ``requirement``, by default the same function (``remediator.lifecycle.approval.requirement_text``), so
    the chat can be built before the engine that uses it. ``digests`` (a ``StoreDigestIndex`` on
    the engine's store) remembers each digest's members for the App's "Approve all".
    Runs on the worker: use ``worker_client`` (429 Retry-After honoured).
    Errors from Slack (``SlackApiError``) propagate, so the engine's job is retried; a failure
    to render the requirement line only drops that line.
    """

    def __init__(self, client: WebClient, settings: Settings,
                 engine_requirement: Callable[[Remediation], str] | None = None,
                 *, pacer: ChannelPacer | None = None, channel: str | None = None,
                 digests: DigestIndex | None = None) -> None:
        self.client = client
        self.digests = digests
        self.settings = settings
        self.requirement = engine_requirement or partial(_requirement_text, settings=settings)
        self.pacer = pacer or ChannelPacer()
        self.channel = channel or settings.slack_channel
        if not self.channel:
            raise ValueError("no Slack channel configured (slack_channel)")

    # --- ChatPort ------------------------------------------------------------------------------

    def post_approval(self, remediation: Remediation) -> MessageRef:
        msg = blocks.approval_message(remediation, self._requirement(remediation))
        return self._post(self.channel, msg)

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str) -> MessageRef:
        requirement = self._requirement(remediations[0]) if remediations else ""
        msg = blocks.digest_message(remediations, playbook=playbook, group=group, requirement=requirement)
        ref = self._post(self.channel, msg)
        if self.digests is not None:
            try:
                self.digests.remember(ref, [r.id for r in remediations])
            except Exception:  # the App falls back to scanning pending remediations
                log.exception("could not index digest %s/%s", ref.channel, ref.ts)
        return ref

    def update_approval(self, remediation: Remediation) -> None:
        ref = message_ref(remediation)
        if ref is None:
            log.info("remediation %s has no message to update", remediation.id)
            return
        msg = blocks.approval_message(remediation, self._requirement(remediation))
        self.client.chat_update(channel=ref.channel, ts=ref.ts, text=msg.text, blocks=msg.blocks, parse="none")

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False) -> None:
        ref = message_ref(remediation)
        msg = blocks.result_message(remediation, kind=kind, text=text, undo_available=undo_available)
        if ref is None:
            self._post(self.channel, msg)
        else:
            self._post(ref.channel, msg, thread_ts=ref.ts)

    # --- more than the port ------------------------------------------------------------------

    def update_digest(self, ref: MessageRef, remediations: Sequence[Remediation], *, playbook: str, group: str,
                      status: str | None = None) -> None:
        """Re-render a digest message in place (``status`` replaces its buttons)."""
        requirement = self._requirement(remediations[0]) if remediations else ""
        msg = blocks.digest_message(remediations, playbook=playbook, group=group, requirement=requirement,
                                    status=status)
        self.client.chat_update(channel=ref.channel, ts=ref.ts, text=msg.text, blocks=msg.blocks, parse="none")

    def _requirement(self, remediation: Remediation) -> str:
        try:
            return self.requirement(remediation)
        except Exception:
            log.exception("could not describe the approval requirement of %s", remediation.id)
            return ""

    def _post(self, channel: str, msg: blocks.Rendered, *, thread_ts: str | None = None) -> MessageRef:
        kwargs: dict[str, Any] = {"channel": channel, "text": msg.text, "blocks": msg.blocks,
                                  "unfurl_links": False, "unfurl_media": False, "parse": "none"}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        with self.pacer.slot(channel):
            resp = self.client.chat_postMessage(**kwargs)
        return MessageRef(channel=str(resp.get("channel") or channel), ts=str(resp["ts"]))


def build_slack_engine(settings: Settings, *, monotonic: Clock = time.monotonic, sleep: Sleep = time.sleep,
                       **parts: Any) -> Engine:
    """``remediator.app.wiring.build_engine`` with the Slack parts wired as they must be.

    The worker's ``SlackChat`` (``worker_client``: paced, 429 Retry-After honoured), the digest
    index on the engine's store (so "Approve all" finds a digest's members without a scan), and a
    ``SlackDirectory`` on the acknowledgement client (lookups happen inside Slack's 3 seconds).
    ``parts`` go to ``build_engine`` (a store, ARM clients, a clock …). ``monotonic`` and ``sleep``
    are the pacer's time and the Retry-After waits' (tests pass a virtual one). For ``remediator
    serve`` and ``python -m bot.socket``.
    """
    from bot.directory import SlackDirectory  # noqa: PLC0415
    from remediator.app.wiring import build_engine  # noqa: PLC0415 (builds the Azure clients lazily)

    chat = SlackChat(worker_client(settings, sleep=sleep), settings, pacer=ChannelPacer(clock=monotonic, sleep=sleep))
    directory = SlackDirectory(ack_client(settings), team_id=settings.slack_team_id)
    engine = build_engine(settings, chat=chat, directory=directory, **parts)
    chat.requirement = engine.requirement
    chat.digests = StoreDigestIndex(engine.store)
    return engine


def message_ref(remediation: Remediation) -> MessageRef | None:
    """The stored approval message of a remediation (``{"channel", "ts"}``), if it has one."""
    msg: Mapping[str, str] = remediation.message or {}
    channel, ts = msg.get("channel"), msg.get("ts")
    return MessageRef(channel=channel, ts=ts) if channel and ts else None


def _requirement_text(remediation: Remediation, *, settings: Settings) -> str:
    from remediator.lifecycle.approval import requirement_text  # noqa: PLC0415 (the approval module loads playbooks)

    return requirement_text(remediation, settings)
