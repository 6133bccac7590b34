"""Parts of ``bench_chaos.py``: the worker process, the storage faults and reading the store defensively.

* ``worker_main``: one worker process as ``remediator serve`` runs it (``bot.http.LocalServer``: the
  Slack endpoint on port 0 and the worker thread, ``engine.work()`` and ``engine.sweep()``), the engine
  from ``remediator.app.wiring.build_slack_engine``. The one difference from a deployment: the ARM
  clients carry a FakeArm token naming the executor or the broker instead of a managed identity's.
* ``TcpProxy``: a TCP relay in front of Azurite that can go down for a while (every open connection
  reset, new ones refused), the way a storage outage looks to the SDK.
* ``hold_sqlite``: an exclusive lock on the SQLite file for a while (another process's long write).
* ``corrupt_row`` / ``corrupt_message``: one undecodable remediation row and one queue message that
  is neither base64 nor JSON, written next to the healthy ones.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _util import ensure_repo_on_path

ensure_repo_on_path()

EXECUTOR = "5f0c2a4e-8b1d-4e3f-a6c7-0d9e8f7a6b5c"
BROKER = "6a1d3b5f-9c2e-4f40-b7d8-1e0f9a8b7c6d"
BROKER_CLIENT = "7b2e4c6a-0d3f-4a51-98e9-2f1a0b9c8d7e"
TEAM = "T0CHAOS0001"
CHANNEL = "C0CHAOS"
ONCALL = "S0614TZR7"  # the shipped Slack playbooks' approvers (the example on-call user group)
MEMBERS = tuple(f"U0CHAOS{i:03d}" for i in range(12))
ADMIN = "U0CHAOSADM1"
CORRUPT_ID = "rem-chaos-corrupt-row"
# the shipped playbooks' approver roles, mapped as a deployment maps them (Settings.approver_roles); the
# on-call group (whose members click Approve here) holds the storage playbooks' role
ROLES: dict[str, tuple[str, ...]] = {"security-oncall": (ONCALL,), "security-leads": (ADMIN,),
                                     "platform-owners": (ONCALL,)}


# --- the worker process -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    store_url: str
    connection_string: str  # Azurite's (through the proxy); "" for SQLite
    arm_url: str
    slack_api_url: str
    slack_token: str
    signing_secret: str
    lock_ttl_s: float
    sweep_every_s: float
    url_file: str
    storm_threshold: int = 0  # 0: a message per request (the chaos run); throughput runs: the deployment default

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__))

    @classmethod
    def load(cls, path: Path) -> WorkerConfig:
        return cls(**json.loads(path.read_text()))


def settings_for(cfg: WorkerConfig) -> Any:
    from datetime import timedelta

    from _util import SHIPPED_PLAYBOOKS

    from remediator.config.settings import Settings

    return Settings(store_url=cfg.store_url, playbooks_dir=SHIPPED_PLAYBOOKS, elevation="pim-assign",
                    executor_principal_id=EXECUTOR, broker_client_id=BROKER_CLIENT, pim_duration=timedelta(minutes=5),
                    slack_bot_token=cfg.slack_token, slack_signing_secret=cfg.signing_secret, slack_channel=CHANNEL,
                    slack_api_url=cfg.slack_api_url, slack_team_id=TEAM, admins=(ADMIN,),
                    lock_ttl=timedelta(seconds=cfg.lock_ttl_s), group_wait=timedelta(0),
                    storm_threshold=cfg.storm_threshold,
                    auto_budget_per_hour=100_000, arm_endpoint=cfg.arm_url, approver_roles=ROLES)


def arm_clients(base_url: str, principal_id: str) -> Any:
    """``ArmClients`` as a deployment builds them (default retries), with a FakeArm token for ``principal_id``."""
    from remediator.azure.clients import ArmClients
    from remediator.testing.auth import FakeCredential, StaticAuthPolicy
    from remediator.testing.fake_arm import principal_token

    token = principal_token(principal_id)
    return ArmClients(FakeCredential(token), base_url=base_url, authentication_policy=StaticAuthPolicy(token),
                      polling_interval=0)


def open_store(cfg: WorkerConfig) -> Any:
    from remediator.store import open_store as open_url

    return open_url(cfg.store_url, connection_string=cfg.connection_string or None)


def worker_main(config: Path) -> int:
    """One worker process until SIGTERM (or SIGKILL): ``remediator serve``'s server and worker loop."""
    import logging

    from bot.http import LocalServer
    from remediator.app.wiring import build_slack_engine

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s worker {os.getpid()} %(levelname)s %(name)s: %(message)s")
    cfg = WorkerConfig.load(config)
    settings = settings_for(cfg)
    engine = build_slack_engine(settings, store=open_store(cfg), clients=arm_clients(cfg.arm_url, EXECUTOR),
                                broker=arm_clients(cfg.arm_url, BROKER))
    server = LocalServer(engine, settings, port=0, worker=True, ingest=False, sweep_every=cfg.sweep_every_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        tmp = Path(cfg.url_file + ".tmp")
        tmp.write_text(server.url)
        tmp.replace(cfg.url_file)
        stop.wait()
    return 0


# --- storage faults ---------------------------------------------------------------------------------


class TcpProxy:
    """Relays 127.0.0.1:<port> (port 0: a free one) to ``target``; ``down(seconds)`` resets every open
    connection and refuses new ones (accepted, then reset) for that long."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, name=f"proxy-{target}", daemon=True).start()

    def down(self, seconds: float) -> None:
        with self._lock:
            self._down_until = time.monotonic() + seconds
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                if (a, b) in self._pairs:
                    self._pairs.remove((a, b))
            a.close()
            b.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a connection reset, as when a load balancer drops it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass


def hold_sqlite(path: str, seconds: float) -> None:
    """Hold an exclusive lock on the database for ``seconds`` (nobody else reads or writes meanwhile)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


# --- corrupt data ----------------------------------------------------------------------------------


def corrupt_row(store: Any, cfg: WorkerConfig) -> bool:
    """Copy one stored remediation under a new id with an undecodable document; False if none exists yet."""
    if cfg.store_url.startswith("sqlite:"):
        conn = sqlite3.connect(cfg.store_url.removeprefix("sqlite:///"), timeout=30)
        try:
            row = conn.execute("SELECT state, version FROM remediations LIMIT 1").fetchone()
            if row is None:
                return False
            with conn:
                conn.execute("INSERT INTO remediations (id, dedup_key, state, version, doc, announced) "
                             "VALUES (?, ?, 'pending_approval', ?, ?, 0)",
                             (CORRUPT_ID, "chaos:corrupt", row[1], '{"id": "' + CORRUPT_ID + '", "state": '))
        finally:
            conn.close()
        return True
    table = store._rem  # the remediations table client
    # the remediation entity (RowKey 'r'), not a chain record beside it in its partition (RowKey 'c…'
    # sorts first): a copied record would be a second record at its position, not a corrupt row
    entities = list(table.query_entities("RowKey eq 'r'", results_per_page=1))
    if not entities:
        return False
    entity = dict(entities[0])
    for key in [k for k in entity if k.startswith("Doc")]:  # Doc, or DocParts and Doc0 … DocN
        del entity[key]
    entity["Doc"] = '{"id": "' + CORRUPT_ID + '", "state": '
    entity.update({"PartitionKey": CORRUPT_ID, "Id": CORRUPT_ID, "DedupKey": "chaos:corrupt",
                   "State": "pending_approval", "Announced": False})
    table.upsert_entity(entity)
    return True


def corrupt_message(store: Any, cfg: WorkerConfig) -> None:
    """One job message that is neither base64 nor JSON in the jobs queue."""
    raw = "%% not a job: neither base64 nor {json"
    if cfg.store_url.startswith("sqlite:"):
        conn = sqlite3.connect(cfg.store_url.removeprefix("sqlite:///"), timeout=30)
        try:
            with conn:
                conn.execute("INSERT INTO jobs (id, kind, payload, visible_us) VALUES (?, 'apply', ?, 0)",
                             ("chaos-corrupt-message", raw))
        finally:
            conn.close()
        return
    from azure.storage.queue import QueueClient

    prefix = cfg.store_url.removeprefix("azure://").strip("/") or "remediator"
    QueueClient.from_connection_string(cfg.connection_string, f"{prefix}-jobs").send_message(raw)


def remediations(store: Any) -> tuple[list[Any], int]:
    """Every remediation that decodes, and how many do not (read one by one: a bad row cannot hide the rest)."""
    good: list[Any] = []
    bad = 0
    for rid in store.remediation_ids():
        try:
            rem = store.get(rid)
        except Exception:
            bad += 1
            continue
        if rem is not None:
            good.append(rem)
    return good, bad
