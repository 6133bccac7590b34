"""Build an ``Engine`` from ``Settings``: the one place that turns configuration into parts.

``remediator serve``, the Azure Functions runtime and the demo all call ``build_engine``; each
passes the parts it owns (the chat, the directory, test doubles of Azure) and gets the rest built
from the settings:

* the store from ``store_url`` (SQLite by default, ``azure://`` for Tables/Queues);
* the executor's ARM clients (``DefaultAzureCredential`` wrapped in ``FreshTokenCredential`` so
  role-propagation retries get a fresh token; ``AZURE_CLIENT_ID`` selects a user-assigned identity);
* the broker's clients for ``pim-assign`` (``ManagedIdentityCredential(client_id=broker_client_id)``);
* the state reader (live, read-only; plan jobs read in bulk from Resource Graph first), the
  playbooks, the exemptions and the elevator.

Nothing here imports an Azure SDK at module import time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from remediator.azure.clients import ArmClients
from remediator.azure.state import StateReader
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Directory
from remediator.lifecycle.chat import ChatPort
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.store import Store


def _credential(settings: Settings, *, client_id: str | None = None) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential  # noqa: PLC0415

    kwargs: dict[str, Any] = {"authority": settings.authority_host} if settings.authority_host else {}
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(**kwargs)


def executor_clients(settings: Settings) -> ArmClients:
    """The writing identity's clients; tokens refreshable for RBAC propagation retries."""
    from remediator.privilege.elevation import FreshTokenCredential  # noqa: PLC0415

    return ArmClients(FreshTokenCredential(lambda: _credential(settings)), base_url=settings.arm_endpoint)


def broker_clients(settings: Settings) -> ArmClients | None:
    """The PIM broker's clients (only ``pim-assign`` uses them)."""
    if settings.elevation != "pim-assign":
        return None
    from remediator.privilege.elevation import FreshTokenCredential  # noqa: PLC0415

    return ArmClients(FreshTokenCredential(lambda: _credential(settings, client_id=settings.broker_client_id)),
                      base_url=settings.arm_endpoint)


def build_engine(settings: Settings, *, chat: ChatPort | None = None, directory: Directory | None = None,
                 store: Store | None = None, clients: ArmClients | None = None,
                 broker: ArmClients | None = None, state: StateReader | None = None,
                 clock: Callable[[], datetime] | None = None) -> Engine:
    """An engine for ``settings``; every part not given is built from the settings."""
    from remediator.azure.reader import LiveState  # noqa: PLC0415
    from remediator.playbooks import load_exemptions, load_playbooks  # noqa: PLC0415
    from remediator.privilege.elevation import make_elevator  # noqa: PLC0415
    from remediator.store import open_store  # noqa: PLC0415

    store = store if store is not None else open_store(settings.store_url, clock=clock)
    clients = clients if clients is not None else executor_clients(settings)
    if broker is None and settings.elevation == "pim-assign":
        broker = broker_clients(settings)
    elevator = make_elevator(settings.elevation_settings(), broker=broker, executor=clients)
    exemptions = load_exemptions(settings.exemptions_file) if settings.exemptions_file else None
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    if state is None:  # live state: plan jobs read their resources from Resource Graph in bulk
        from remediator.azure.graph import Graph  # noqa: PLC0415

        state, kwargs["graph"] = LiveState(clients), Graph(clients)
    from remediator.app.doctor import deployment_preflight  # noqa: PLC0415
    from remediator.evidence.report import period_totals  # noqa: PLC0415

    playbooks = load_playbooks(settings.playbooks_dir)
    return Engine(store=store, settings=settings, playbooks=playbooks,
                  state=state, clients=clients, elevator=elevator,
                  chat=chat, directory=directory, exemptions=exemptions,
                  preflight=deployment_preflight(settings, store=store, playbooks=playbooks, executor=clients,
                                                 broker=getattr(elevator, "requester", None)),
                  evidence=period_totals(store, playbooks), **kwargs)
