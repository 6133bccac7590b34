"""FakeArm's hooks for the chaos benchmark: a write slower than its caller waits, the requests in flight."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import pytest

from remediator.testing import FakeArm

ACCOUNT = ("/subscriptions/00000000-0000-4000-8000-00000000c4a0/resourceGroups/rg/providers/"
           "Microsoft.Storage/storageAccounts/stchaos")


def _patch(arm: FakeArm, body: dict[str, Any], *, timeout: float | None = None,
           started: threading.Event | None = None, port: list[int] | None = None) -> int:
    conn = http.client.HTTPConnection(arm.base_url.removeprefix("http://"), timeout=timeout)
    conn.connect()
    if port is not None:
        port.append(conn.sock.getsockname()[1])
    if started is not None:
        started.set()
    conn.request("PATCH", ACCOUNT + "?api-version=2023-05-01", json.dumps(body),
                 {"Content-Type": "application/json"})
    try:
        return conn.getresponse().status
    finally:
        conn.close()


def _wait(predicate: Any, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_a_slow_write_lands_after_the_caller_gave_up_and_is_listed_in_flight_with_its_caller() -> None:
    with FakeArm() as arm:
        arm.add({"id": ACCOUNT, "name": "stchaos", "type": "Microsoft.Storage/storageAccounts",
                 "properties": {"allowBlobPublicAccess": True}})
        arm.slow_writes(0.5, times=1)
        port: list[int] = []
        with pytest.raises(socket.timeout):  # TimeoutError: the answer never reached the caller
            _patch(arm, {"properties": {"allowBlobPublicAccess": False}}, timeout=0.05, port=port)
        (held,) = arm.in_flight()
        assert (held.method, held.path, held.client[1], held.held) == ("PATCH", ACCOUNT, port[0], 0.5)
        _wait(lambda: not arm.in_flight())
        doc = arm.get(ACCOUNT)
        assert doc is not None
        assert doc["properties"]["allowBlobPublicAccess"] is False  # it landed
        assert [r.status for r in arm.resource_writes] == [200]
        # only the next write was held: this one answers at once
        assert _patch(arm, {"properties": {"allowBlobPublicAccess": True}}, timeout=5) == 200
        _wait(lambda: not arm.in_flight())


def test_slow_writes_refuses_nonsense() -> None:
    arm = FakeArm()
    with pytest.raises(ValueError, match="seconds"):
        arm.slow_writes(-1)
    with pytest.raises(ValueError, match="times"):
        arm.slow_writes(1, times=0)
