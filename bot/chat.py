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

Across instances (several Functions workers post to one channel), ``SharedPacer`` keeps the same
one-per-second-per-channel pace through the store (``Store.incr_counter`` of the channel's
one-second window: the first taker of a window posts in it, the others take a later one).

Failures become ``remediator.lifecycle.chat.ChatError`` naming the call and Slack's answer ("Slack
chat.postMessage answered 500"), marked transient (5xx, a timeout or dropped connection, a rate
limit past the retries, ``internal_error``/``fatal_error``/``service_unavailable``) or not
(``channel_not_found``, ``invalid_blocks``, …), and whether the call may have taken effect all the
same (a timeout, a 5xx, ``fatal_error``). Approval and digest messages, and thread replies, carry
message ``metadata`` (``event_type`` ``remediator_request`` / ``remediator_digest`` /
``remediator_reply``, ``event_payload`` ``{"remediation_id"}`` / ``{"digest_id"}`` /
``{"reply_id"}``), and ``find_posted`` reads the channel's recent history (``conversations.history``
with ``include_all_metadata``; bot scopes ``channels:history`` and ``groups:history``), or a
reply's thread (``conversations.replies``, the same scopes), to find a message whose post timed
out. Message metadata is visible to anyone in the workspace (Slack's docs): it carries only opaque
ids.

The clock and the sleep function are injectable, so tests check pacing and Retry-After without
waiting for real seconds.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot import blocks
from remediator.lifecycle.chat import ChatError, MessageRef, MessageTag, ResultDigest, ResultKind
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.naming import names_for
from remediator.planning.names import NameResolver, naming

if TYPE_CHECKING:
    from remediator.config.settings import Settings
    from remediator.lifecycle.approval import Need

log = logging.getLogger("bot.chat")

DEFAULT_API_URL = "https://slack.com/api/"
ACK_TIMEOUT_SECONDS = 2
WORKER_TIMEOUT_SECONDS = 30
RATE_LIMIT_RETRIES = 5
POST_INTERVAL_SECONDS = 1.0

HISTORY_PAGE = 200  # messages per conversations.history page when looking for a tagged message
HISTORY_PAGES = 5  # pages read at most (the look back is bounded: 1,000 messages)
HISTORY_SKEW = timedelta(minutes=10)  # the look back starts this long before the first attempt (clock skew)
SHARED_PACE_AHEAD = 30  # one-second windows a post looks ahead for a free one before it waits and tries again
EVENT_TYPES = {"request": "remediator_request", "digest": "remediator_digest", "reply": "remediator_reply",
               "notice": "remediator_notice", "alarm": "remediator_alarm", "results": "remediator_results"}
PAYLOAD_KEYS = {"request": "remediation_id", "digest": "digest_id", "reply": "reply_id", "notice": "remediation_id",
                "alarm": "alarm_id", "results": "digest_id"}
# ok:false answers that say Slack is unwell rather than that the call is wrong; the first two may
# have done part of the work ("It's possible some aspect of the operation succeeded", Slack's docs)
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "ratelimited"})
MAYBE_DONE_ERRORS = frozenset({"internal_error", "fatal_error"})

Clock = Callable[[], float]
Sleep = Callable[[float], None]
T = TypeVar("T")


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


class CounterStore(Protocol):
    def incr_counter(self, name: str, window_start: datetime) -> int: ...


class SharedPacer(ChannelPacer):
    """``ChannelPacer`` across processes: a post takes a one-second window of its channel in the
    store (``incr_counter("slack-post:<channel>", window)`` answers 1 to the first taker only), the
    current one or, when taken, the next free one of the following ``SHARED_PACE_AHEAD``, and waits
    for it. ``clock`` is wall-clock seconds (every instance must agree on the windows); the
    in-process lock still orders this process's own posts."""

    PREFIX = "slack-post:"

    def __init__(self, store: CounterStore, interval: float = POST_INTERVAL_SECONDS, *, clock: Clock = time.time,
                 sleep: Sleep = time.sleep) -> None:
        super().__init__(interval, clock=clock, sleep=sleep)
        self.store = store

    @contextmanager
    def slot(self, channel: str) -> Iterator[float]:
        with self._lock(channel):
            while True:
                now = self.clock()
                first = math.floor(now / self.interval)
                window = next((w for w in range(first, first + SHARED_PACE_AHEAD) if self._take(channel, w)), None)
                if window is None:
                    self.sleep(SHARED_PACE_AHEAD * self.interval)  # every window ahead is taken: a long queue
                    continue
                if window * self.interval > now:
                    self.sleep(window * self.interval - now)
                    now = self.clock()
                if now < (window + 1) * self.interval:
                    break  # inside the window taken (a thread that overslept it takes another)
            with self._guard:
                self.sent.append((channel, now))
            yield now

    def _take(self, channel: str, window: int) -> bool:
        at = datetime.fromtimestamp(window * self.interval, UTC)
        return self.store.incr_counter(self.PREFIX + channel, at) == 1


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

    ``engine_requirement(remediation)`` gives what approval still needs (a ``Need``), rendered as the
    "1 of 2 approvals from …" line: the engine's ``requirement``, by default the same function
    (``remediator.lifecycle.approval.need``), so the chat can be built before the engine that uses
    it. ``digests`` (a ``StoreDigestIndex`` on the engine's store) remembers each digest's members
    for the App's "Approve all". ``names`` (a ``NameResolver``): each message's ids are looked up in
    one batch and shown as ``name (id)`` (``remediator.lifecycle.naming``); without it, ids only.
    Runs on the worker: use ``worker_client`` (429 Retry-After honoured).
    Errors from Slack become ``ChatError`` (see the module docstring), which the worker retries
    with backoff; a failure to render the requirement line only drops that line.
    """

    def __init__(self, client: WebClient, settings: Settings,
                 engine_requirement: Callable[[Remediation], Need] | None = None,
                 *, pacer: ChannelPacer | None = None, channel: str | None = None,
                 digests: DigestIndex | None = None, names: NameResolver | None = None) -> None:
        self.client = client
        self.digests = digests
        self.names = names
        self.settings = settings
        self.requirement = engine_requirement or partial(_requirement_text, settings=settings)
        self.pacer = pacer or ChannelPacer()
        self.channel = channel or settings.slack_channel
        if not self.channel:
            raise ValueError("no Slack channel configured (slack_channel)")

    # --- ChatPort ------------------------------------------------------------------------------

    def post_approval(self, remediation: Remediation) -> MessageRef:
        with self._naming([remediation]):
            msg = blocks.approval_message(remediation, self._requirement(remediation))
        return self._post(self.channel, msg, tag=MessageTag(kind="request", key=remediation.id))

    def post_digest(self, remediations: Sequence[Remediation], *, playbook: str, group: str,
                    digest_id: str = "") -> MessageRef:
        requirement = self._requirement(remediations[0]) if remediations else ""
        with self._naming(remediations):
            msg = blocks.digest_message(remediations, playbook=playbook, group=group, requirement=requirement)
        ref = self._post(self.channel, msg, tag=MessageTag(kind="digest", key=digest_id) if digest_id else None)
        if self.digests is not None:
            try:
                self.digests.remember(ref, [r.id for r in remediations])
            except Exception:  # the App falls back to scanning pending remediations
                log.exception("could not index digest %s/%s", ref.channel, ref.ts)
        return ref

    def find_posted(self, tag: MessageTag, *, since: datetime, thread: MessageRef | None = None) -> MessageRef | None:
        """The channel's message carrying ``tag``, looking back from now to ``since`` (less
        ``HISTORY_SKEW``), at most ``HISTORY_PAGES`` pages: ``ChatError`` (not transient) when the
        window holds more, or when the history is not readable (``missing_scope``: add
        ``channels:history``/``groups:history``). With ``thread`` (a reply): that thread's messages
        (``conversations.replies``, the same scopes and ``include_all_metadata``; Slack's reference:
        docs.slack.dev/reference/methods/conversations.replies)."""
        oldest = f"{max((since - HISTORY_SKEW).timestamp(), 0):.6f}"
        event_type, key = EVENT_TYPES[tag.kind], PAYLOAD_KEYS[tag.kind]
        channel = thread.channel if thread is not None else self.channel
        method = "conversations.replies" if thread is not None else "conversations.history"
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            args: dict[str, Any] = {"channel": channel, "oldest": oldest, "limit": HISTORY_PAGE,
                                    "include_all_metadata": True, "cursor": cursor}
            if thread is not None:
                read = partial(self.client.conversations_replies, ts=thread.ts, **args)
            else:
                read = partial(self.client.conversations_history, **args)
            page = _call(method, read)
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == event_type and str(payload.get(key, "")) == tag.key:
                    return MessageRef(channel=channel, ts=str(message["ts"]))
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not page.get("has_more") or not cursor:
                return None
        raise ChatError(f"Slack {method}: more than {HISTORY_PAGE * HISTORY_PAGES} messages in "
                        f"{channel} since {since.isoformat()}; cannot tell whether the {tag.kind} was posted",
                        transient=False)

    def update_approval(self, remediation: Remediation) -> None:
        ref = message_ref(remediation)
        if ref is None:
            log.info("remediation %s has no message to update", remediation.id)
            return
        with self._naming([remediation]):
            msg = blocks.approval_message(remediation, self._requirement(remediation))
        _call("chat.update", lambda: self.client.chat_update(channel=ref.channel, ts=ref.ts, text=msg.text,
                                                             blocks=msg.blocks, parse="none"))

    def post_result(self, remediation: Remediation, *, kind: ResultKind, text: str,
                    undo_available: bool = False, tag: MessageTag | None = None) -> None:
        ref = message_ref(remediation)
        with self._naming([remediation], texts=[text]):
            msg = blocks.result_message(remediation, kind=kind, text=text, undo_available=undo_available)
        if ref is None:
            self._post(self.channel, msg, tag=tag)
        else:
            self._post(ref.channel, msg, thread_ts=ref.ts, tag=tag)

    def post_results(self, digest: ResultDigest) -> MessageRef:
        msg = blocks.results_message(digest)
        return self._post(self.channel, msg, tag=MessageTag(kind="results", key=digest.id))

    def update_results(self, ref: MessageRef, digest: ResultDigest) -> None:
        msg = blocks.results_message(digest)
        _call("chat.update", lambda: self.client.chat_update(channel=ref.channel, ts=ref.ts, text=msg.text,
                                                             blocks=msg.blocks, parse="none"))

    def post_notice(self, remediation: Remediation, *, lines: Sequence[str]) -> MessageRef:
        with self._naming([remediation], texts=lines):
            msg = blocks.notice_message(remediation, lines)
        return self._post(self.channel, msg, tag=MessageTag(kind="notice", key=remediation.id))

    def post_alarm(self, *, key: str, title: str, lines: Sequence[str]) -> MessageRef:
        return self._post(self.channel, blocks.alarm_message(key, title, lines), tag=MessageTag(kind="alarm", key=key))

    # --- more than the port ------------------------------------------------------------------

    def update_digest(self, ref: MessageRef, remediations: Sequence[Remediation], *, playbook: str, group: str,
                      status: str | None = None) -> None:
        """Re-render a digest message in place (``status`` replaces its buttons)."""
        requirement = self._requirement(remediations[0]) if remediations else ""
        with self._naming(remediations, texts=[status or ""]):
            msg = blocks.digest_message(remediations, playbook=playbook, group=group, requirement=requirement,
                                        status=status)
        _call("chat.update", lambda: self.client.chat_update(channel=ref.channel, ts=ref.ts, text=msg.text,
                                                             blocks=msg.blocks, parse="none"))

    def _naming(self, remediations: Sequence[Remediation], *,
                texts: Sequence[str] = ()) -> AbstractContextManager[None]:
        """Render inside this: the message's ids looked up in one batch (nothing without ``names``)."""
        return naming(names_for(self.names, remediations, texts=texts))

    def _requirement(self, remediation: Remediation) -> str:
        try:
            return blocks.markup(self.requirement(remediation).text())
        except Exception:
            log.exception("could not describe the approval requirement of %s", remediation.id)
            return ""

    def _post(self, channel: str, msg: blocks.Rendered, *, thread_ts: str | None = None,
              tag: MessageTag | None = None) -> MessageRef:
        kwargs: dict[str, Any] = {"channel": channel, "text": msg.text, "blocks": msg.blocks,
                                  "unfurl_links": False, "unfurl_media": False, "parse": "none"}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if tag is not None:
            kwargs["metadata"] = {"event_type": EVENT_TYPES[tag.kind],
                                  "event_payload": {PAYLOAD_KEYS[tag.kind]: tag.key}}
        with self.pacer.slot(channel):
            resp = _call("chat.postMessage", lambda: self.client.chat_postMessage(**kwargs))
        return MessageRef(channel=str(resp.get("channel") or channel), ts=str(resp["ts"]))


def _call(method: str, fn: Callable[[], T]) -> T:
    """``fn()`` (one Web API call), its failures as ``ChatError`` (see the module docstring)."""
    try:
        return fn()
    except SlackApiError as e:
        raise chat_error(method, e) from e
    except (TimeoutError, URLError, ConnectionError, http.client.HTTPException) as e:
        what = "did not answer in time" if isinstance(e, TimeoutError) else f"could not be reached ({e})"
        raise ChatError(f"Slack {method} {what}", transient=True, maybe_done=True) from e
    except SlackClientError as e:
        raise ChatError(f"Slack {method} failed: {e}", transient=False) from e


def chat_error(method: str, e: SlackApiError) -> ChatError:
    """What a Slack error answer means for a retry (``ChatError``)."""
    response = e.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error") or "") if isinstance(data, Mapping) else ""
    if status >= 500:
        return ChatError(f"Slack {method} answered {status}", transient=True, maybe_done=True)
    if status == 429:
        return ChatError(f"Slack {method} answered 429 (rate limited past the retries)", transient=True)
    error = error[:80] or str(status)
    if error == "missing_scope" and isinstance(data, Mapping):
        error += f" (needs {str(data.get('needed') or '?')[:60]})"
    return ChatError(f"Slack {method} answered {error}", transient=error in TRANSIENT_ERRORS,
                     maybe_done=error in MAYBE_DONE_ERRORS)


def message_ref(remediation: Remediation) -> MessageRef | None:
    """The stored approval message of a remediation (``{"channel", "ts"}``), if it has one."""
    msg: Mapping[str, str] = remediation.message or {}
    channel, ts = msg.get("channel"), msg.get("ts")
    return MessageRef(channel=channel, ts=ts) if channel and ts else None


def _requirement_text(remediation: Remediation, *, settings: Settings) -> Need:
    from remediator.lifecycle.approval import need  # noqa: PLC0415 (the approval module loads playbooks)

    return need(remediation, settings)
