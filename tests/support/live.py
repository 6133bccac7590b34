"""Resource documents as live Azure returns them (tests/fixtures/live/, see its SOURCES.md)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "live"

# The estate the live-shaped documents describe (tests/fixtures/live): its subscription, the AI resource
# group, the hub's private-endpoint subnet, the central private DNS zones, an OpenAI account, and the
# executor and broker identities the scenario tests run as.
SUB = "6a2f1c3e-9b4d-4e1a-8c7f-2d5e8b9a0c41"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-ai-prod"
SUBNET = (f"/subscriptions/{SUB}/resourceGroups/rg-hub-network/providers/Microsoft.Network/virtualNetworks/"
          "vnet-hub-weu/subnets/snet-private-endpoints")
DNS = f"/subscriptions/{SUB}/resourceGroups/rg-private-dns/providers/Microsoft.Network/privateDnsZones"
OPENAI = f"{RG}/providers/Microsoft.CognitiveServices/accounts/oai-contoso-prod"
ZONE = f"{DNS}/privatelink.openai.azure.com"
EXEC = "5d1e7c3a-2b9f-4e68-a0c4-9f3b1d7e2a58"
BROKER = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"


@cache
def _load(name: str) -> Any:
    return json.loads((LIVE / name).read_text(encoding="utf-8"))


def live(name: str) -> dict[str, Any]:
    """A fresh copy of one document (``live("keyvault__vault.json")``)."""
    doc = _load(name)
    if not isinstance(doc, dict):
        raise ValueError(f"{name} holds {len(doc)} documents; use live_documents()")
    return copy.deepcopy(doc)


def live_documents() -> list[dict[str, Any]]:
    """Fresh copies of every document: the whole estate, ready for ``FakeArm.load``."""
    out: list[dict[str, Any]] = []
    for path in sorted(LIVE.glob("*.json")):
        doc = _load(path.name)
        out.extend(copy.deepcopy(doc) if isinstance(doc, list) else [copy.deepcopy(doc)])
    return out
