"""Build an ``Engine`` from ``Settings``: the one place that turns configuration into parts.

``remediator serve``, the Azure Functions runtime and the demo all call ``build_engine`` (with
Slack: ``build_slack_engine``); each passes the parts it owns (the chat, the directory, test
doubles of Azure) and gets the rest built from the settings:

* the store from ``store_url`` (SQLite by default, ``azure://`` for Tables/Queues);
* Azure through ``azure_wiring``: the cloud (``arm_endpoint``, ``authority_host``), the executor
  (``AZURE_CLIENT_ID``) and, for ``pim-assign``, the broker (``broker_client_id``), each as
  ``ArmClients`` over a ``FreshTokenCredential`` (``remediator.azure.credentials``). ``doctor``,
  ``plan`` and ``scan`` (live reads) and the report's policy snapshot use the same function, so
  every entry point acts as the same identities in the same cloud;
* the state reader (live, read-only; plan jobs read in bulk from Resource Graph first), the
  playbooks (``playbooks_dir`` as an overlay of the shipped ones; every approver role they name
  must be mapped in ``approver_roles``, else ``PlaybookError`` naming each), the exemptions and
  the elevator.

Nothing here imports an Azure SDK or a Slack library at module import time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediator.azure.clients import ArmClients
from remediator.azure.credentials import EXECUTOR_CLIENT_ID_ENV, Cloud, Identity, Wiring
from remediator.azure.state import StateReader
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Directory
from remediator.lifecycle.chat import ChatPort
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.store import Store

if TYPE_CHECKING:
    from remediator.azure.directory import DirectoryClient
    from remediator.planning.names import DefinitionReader, NameResolver
    from remediator.playbooks import PlaybookSet


def azure_wiring(settings: Settings, env: Mapping[str, str] | None = None) -> Wiring:
    """The cloud and identities for ``settings``: the executor's client id from ``env``
    (``AZURE_CLIENT_ID``; default ``os.environ``), the broker's from the settings (``pim-assign``)."""
    env = os.environ if env is None else env
    broker = Identity(role="broker", client_id=settings.broker_client_id) \
        if settings.elevation == "pim-assign" else None
    return Wiring(cloud=Cloud(arm_endpoint=settings.arm_endpoint, authority_host=settings.authority_host),
                  executor=Identity(role="executor", client_id=env.get(EXECUTOR_CLIENT_ID_ENV) or None),
                  broker=broker)


def name_resolver(settings: Settings, *, definitions: DefinitionReader | None = None,
                  directory: DirectoryClient | None = None, env: Mapping[str, str] | None = None,
                  clock: Callable[[], float] | None = None,
                  report: Callable[[str], None] | None = None, graph: bool = True) -> NameResolver:
    """Names beside ids for ``settings``: Microsoft Graph at ``settings.graph()`` as the executor (unless
    ``directory`` is given; none when names are off or the cloud has no known Graph endpoint), policy
    definitions through ``definitions`` (a state reader), the built-ins from the catalog, kept ``names_ttl``;
    ``graph=False``: no Graph client is built (principals stay ids unless ``directory`` is given)."""
    from remediator.planning.names import NameResolver  # noqa: PLC0415

    if directory is None and graph and settings.graph() is not None:
        directory = azure_wiring(settings, env).directory(str(settings.graph()))
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return NameResolver(directory=directory, definitions=definitions, ttl=settings.names_ttl, report=report, **kwargs)


def deployment_playbooks(settings: Settings) -> PlaybookSet:
    """The deployment's playbooks (``playbooks_dir`` as an overlay of the shipped ones), refused
    (``PlaybookError``, every problem) while an approver role they name is mapped to nobody: nobody
    could approve its requests. Offline: ``serve`` runs it before it asks Slack anything."""
    from remediator.app.paths import SHIPPED_PLAYBOOKS, settings_playbooks_dir  # noqa: PLC0415
    from remediator.config.roles import check_roles  # noqa: PLC0415
    from remediator.playbooks import load_playbooks  # noqa: PLC0415

    playbooks = load_playbooks(settings_playbooks_dir(settings.playbooks_dir), base=SHIPPED_PLAYBOOKS)
    check_roles(playbooks, settings.approver_roles)
    return playbooks


def build_engine(settings: Settings, *, chat: ChatPort | None = None, directory: Directory | None = None,
                 store: Store | None = None, clients: ArmClients | None = None,
                 broker: ArmClients | None = None, state: StateReader | None = None,
                 clock: Callable[[], datetime] | None = None, env: Mapping[str, str] | None = None,
                 names: NameResolver | None = None) -> Engine:
    """An engine for ``settings``; every part not given is built from the settings (Azure from
    ``azure_wiring(settings, env)``)."""
    from remediator.azure.reader import LiveState  # noqa: PLC0415
    from remediator.playbooks import load_exemptions  # noqa: PLC0415
    from remediator.privilege.elevation import make_elevator  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    playbooks = deployment_playbooks(settings)
    store = store if store is not None else open_store(settings.store_url, clock=clock)
    azure = azure_wiring(settings, env)
    clients = clients if clients is not None else azure.executor_clients()
    if broker is None:
        broker = azure.broker_clients()
    elevator = make_elevator(settings.elevation_settings(), broker=broker, executor=clients)
    exemptions = load_exemptions(settings.exemptions_file) if settings.exemptions_file else None
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    if state is None:  # live state: plan jobs read their resources from Resource Graph in bulk
        from remediator.azure.graph import Graph  # noqa: PLC0415

        state, kwargs["graph"] = LiveState(clients), Graph(clients)
    from remediator.app.doctor import deployment_preflight  # noqa: PLC0415
    from remediator.evidence.report import period_totals  # noqa: PLC0415

    return Engine(store=store, settings=settings, playbooks=playbooks,
                  state=state, clients=clients, elevator=elevator,
                  chat=chat, directory=directory, exemptions=exemptions,
                  preflight=deployment_preflight(settings, store=store, playbooks=playbooks, executor=clients,
                                                 broker=getattr(elevator, "requester", None)),
                  evidence=period_totals(store, playbooks), names=names, **kwargs)



def build_slack_engine(settings: Settings, *, monotonic: Callable[[], float] = time.time,
                       sleep: Callable[[float], None] = time.sleep, **parts: Any) -> Engine:
    """``build_engine`` with the Slack parts (``bot``) wired as they must be.

    The worker's ``SlackChat`` (``worker_client``: paced, 429 Retry-After honoured), the digest
    index on the engine's store (so "Approve all" finds a digest's members without a scan), and a
    ``SlackDirectory`` on the acknowledgement client (lookups happen inside Slack's 3 seconds).
    ``parts`` go to ``build_engine`` (a store, ARM clients, a clock, ``env`` …; ``names``: the name lookups,
    by default ``name_resolver`` of the settings, shared by the chat and the App). For
    ``remediator serve`` (HTTP or Socket Mode) and the Functions app. Posts are paced per channel
    across every instance on the store (``SharedPacer``: one-second windows of wall-clock time, so
    ``monotonic`` must be the same clock on every instance: Unix time by default), ``sleep`` is the
    pacer's and the Retry-After waits' (tests pass a virtual clock and sleep).
    """
    from bot.chat import SharedPacer, SlackChat, StoreDigestIndex, ack_client, worker_client  # noqa: PLC0415
    from bot.directory import SlackDirectory  # noqa: PLC0415

    chat = SlackChat(worker_client(settings, sleep=sleep), settings)
    directory = SlackDirectory(ack_client(settings), team_id=settings.slack_team_id)
    names = parts.pop("names", None)
    if names is None:  # names beside ids: Graph as the executor, policy definitions read as the executor reads
        from remediator.azure.reader import LiveState  # noqa: PLC0415

        given = parts.get("clients") is not None  # Azure handed in (a test's fakes): Graph is the caller's to give
        if not given:
            parts["clients"] = azure_wiring(settings, parts.get("env")).executor_clients()
        state = parts.get("state")
        names = name_resolver(settings, definitions=state if state is not None else LiveState(parts["clients"]),
                              env=parts.get("env"), graph=not given)
    chat.names = names
    engine = build_engine(settings, chat=chat, directory=directory, names=names, **parts)
    chat.requirement = engine.requirement
    chat.digests = StoreDigestIndex(engine.store)
    chat.pacer = SharedPacer(engine.store, clock=monotonic, sleep=sleep)
    return engine
