"""The fencing check before every ARM write, and what a write whose answer was lost means.

A worker applies a change while it holds a lease on the resource (``remediator.lifecycle.lease``).
``fenced(check)`` installs ``check`` for the current context (a ``contextvars`` variable, so each
worker thread has its own); ``FencePolicy``, which ``ArmClients`` puts in every client's pipeline
after the retry policy (Key Vault's ``SecretClient``: as its ``raw_request_hook``), calls it
immediately before each attempt of every request that is not a read (``GET``/``HEAD``/``OPTIONS``):
PUT, PATCH, DELETE, POST actions, PIM requests and Key Vault writes alike. A check that fails
raises ``LeaseLost``, which is not an ``AzureError``, so no retry policy and no action's error
handling turns it into an ordinary failure: the request is not sent.
Outside ``fenced`` nothing is checked (plans, the CLI, reads).

``answer_lost(exc)``: the request may have reached ARM but its answer did not come back (a read
timeout, a connection reset or dropped): ``ServiceResponseError``, and ``ServiceRequestError``
(azure-core says nothing was sent, but a reset while sending cannot tell). The caller must re-read
before it declares anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("remediator_fence", default=None)


class LeaseLost(Exception):
    """This worker no longer holds the lease it writes under: it must not write (another holds it)."""


@contextlib.contextmanager
def fenced(check: Callable[[], None]) -> Iterator[None]:
    """Run the block with ``check`` called before every ARM write made from this context."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)


def _no_check() -> None:
    return None


def unfenced() -> contextlib.AbstractContextManager[None]:
    """Run the block with no fencing check (what is always allowed: removing a grant)."""
    return fenced(_no_check)


def check_fence() -> None:
    """Run the current context's check (``LeaseLost`` when the lease is gone); nothing outside ``fenced``."""
    check = _CHECK.get()
    if check is not None:
        check()


def fence_policy() -> Any:
    """An azure-core policy calling ``check_fence`` before each attempt of every write (azure.core on first use)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: PLC0415

    class FencePolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            fence_hook(request)

    return FencePolicy()


def fence_hook(request: Any) -> None:
    """``check_fence`` as azure-core's ``raw_request_hook`` (for clients that take no extra policies)."""
    if str(request.http_request.method).upper() not in _READS:
        check_fence()


def answer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or one on its cause/context chain) is a write whose answer did not arrive."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError  # noqa: PLC0415

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, (ServiceResponseError, ServiceRequestError)):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False
