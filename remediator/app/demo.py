"""``remediator demo``: the whole loop on the sample findings, with no Azure and no Slack.

1. the dry run: every sample payload planned by the shipped playbooks, one line per record (the
   command that prints every property of every change closes it);
2. ingest and plan: the engine receives the findings, plans them against the simulated state,
   opens remediations, applies the low-risk one on its own and asks for approval of the rest
   (the "Slack" messages are printed, one line per change);
3. later: a jailbreak attempt on the AI estate arrives through Defender's continuous export (its prompt text
   withheld), then someone deletes that export and the daily reconcile's check raises it; both are asked;
4. approvals, answered at the terminal (or all of them with ``--approve-all``), by simulated
   approvers who belong to the playbooks' approver groups;
5. the worker applies each approved plan under a PIM grant scoped to the one resource (the
   simulated ARM refuses any write without one), verifies it, releases the grant;
6. the audit trail, briefly: per remediation its life on one line and each write on one (grant,
   write, release, verify); ``remediator audit`` prints the long form.

Names beside ids: the estate's principals are seeded into ``FakeMsGraph`` from
``remediator/samples/directory.json`` and the built-in policy definitions are named from the catalog,
so every message, plan line and trail line reads ``name (id)``; ``--graph-unreachable`` runs the same
demo with Microsoft Graph down (the ids, and one warning).

Each step fits a screen, and every line about a request names it (``briefs.label``).

Azure is simulated by ``FakeArm`` (a real HTTP server on localhost seeded with the ARM documents
in ``remediator/samples/state``) and reached through the real Azure SDK clients; the store is
SQLite (a temporary file, or ``--store PATH`` to keep it for ``remediator audit``).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from remediator import ids
from remediator.app.paths import SAMPLES, SHIPPED_PLAYBOOKS
from remediator.app.paths import playbooks_dir as find_playbooks
from remediator.findings.model import Record
from remediator.findings.parse import parse_file
from remediator.playbooks import PlaybookSet, load_playbooks
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.azure.state import StateReader
    from remediator.config.settings import Settings
    from remediator.lifecycle.engine import Engine
    from remediator.lifecycle.model import AuditEvent, Remediation
    from remediator.planning.names import NameResolver
    from remediator.planning.planner import Planner
    from remediator.testing import FakeArm, FakeMsGraph

# The simulated identities: the executor writes (and is never revoked), the broker asks PIM.
DEMO_EXECUTOR = "5f0c2a4e-8b1d-4e3f-a6c7-0d9e8f7a6b5c"
DEMO_BROKER = "7a3e9c1d-2b4f-4d6a-8e0c-1f2a3b4c5d6e"
DEMO_ADMIN = "U0DEMOADMN1"
DEMO_ADMIN_OBJECT = "2c4e6a8b-0d1f-4a3c-9e5b-7d9f1b3d5f7a"  # a person in the portal (not the executor: no grant needed)
DEMO_APPROVERS = ("U0DEMOALIC1", "U0DEMOBOB01")  # members of every approver group in the demo
# The demo workspace's approver roles (a deployment sets approver_roles the same way)
DEMO_ROLES: dict[str, tuple[str, ...]] = {"security-oncall": ("S0DEMOSECOP",), "security-leads": ("S0DEMOLEADS",),
                                          "platform-owners": ("S0DEMOPLATF",)}


def sample_records() -> list[Record]:
    records: list[Record] = []
    for path in sorted((SAMPLES / "findings").glob("*.json")):
        records.extend(parse_file(path))
    return records


def _roles(playbooks: PlaybookSet) -> dict[str, tuple[str, ...]]:
    """``DEMO_ROLES``, plus any other role the playbooks name (held by the on-call group)."""
    others = {r for p in playbooks for r in p.approval.roles if r not in DEMO_ROLES}
    return {**DEMO_ROLES, **dict.fromkeys(sorted(others), DEMO_ROLES["security-oncall"])}


def _groups(playbooks: PlaybookSet, roles: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    groups = {a for p in playbooks for a in p.approval.groups} | {i for ids in roles.values() for i in ids
                                                                 if i.startswith("S")}
    return {g: list(DEMO_APPROVERS) for g in sorted(groups)}


# -- the AI estate's landing zone: Private Link ------------------------------------------------------------
# The sample estate's hub: a private endpoint subnet in Sweden Central and the central private DNS zones,
# linked to the hub VNet (remediator/samples/state/private-link.json). With them the private-link playbook
# moves the public OpenAI account contoso-openai-chat behind a private endpoint (endpoint, DNS zone group,
# then public access closed) instead of refusing; ``remediator plan --config`` reads the same file.
DEMO_SETTINGS = SAMPLES / "settings.yaml"
DEMO_DIRECTORY = SAMPLES / "directory.json"  # the estate's principals, as Microsoft Graph answers getByIds


def with_demo_private_link(settings: Settings) -> Settings:
    """``settings`` with the ``private_link_subnets`` and ``private_dns_zones`` of the demo's settings file, and its
    continuous-export hub (``export_event_hub_id``, ``export_resource_group``); the environment ignored: the demo
    is the same on every machine."""
    from dataclasses import replace  # noqa: PLC0415

    from remediator.config.settings import load_settings  # noqa: PLC0415

    loaded = load_settings(env={}, file=DEMO_SETTINGS)
    return replace(settings, private_link_subnets=dict(loaded.private_link_subnets),
                   private_dns_zones=dict(loaded.private_dns_zones), export_event_hub_id=loaded.export_event_hub_id,
                   export_resource_group=loaded.export_resource_group)


# -- later that day: a jailbreak attempt, and the export that feeds remediator deleted ------------------------
# remediator/samples/later/: what Defender's continuous export brings after the backlog (a jailbreak attempt on
# contoso-openai's gpt-4o-reco deployment that Prompt Shields detected but did not block: the shape of
# tests/fixtures/crafted/crafted__export-alert__AI.Azure_Jailbreak.ContentFiltering.DetectedAttempt.json, whose
# extended-property names are unverified); then someone deletes the subscription's export
# (remediator/samples/state/security.json), and the daily reconcile's check finds it gone.
LATER = SAMPLES / "later"
DEMO_EXPORT = ("/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-security/providers/"
               "Microsoft.Security/automations/ExportToEventHub")


def later_records() -> list[Record]:
    records: list[Record] = []
    for path in sorted(LATER.glob("*.json")):
        records.extend(parse_file(path))
    return records


def _section(out: TextIO, title: str) -> None:
    out.write(f"\n=== {title} {'=' * max(0, 74 - len(title))}\n\n")


def run_demo(*, out: TextIO, approve_all: bool = False, ask: Callable[[str], str] = input,
             playbooks_dir: str | Path | None = None, store_path: str | Path | None = None,
             graph_unreachable: bool = False) -> int:
    from remediator.app.briefs import brief_counts  # noqa: PLC0415
    from remediator.app.console import ConsoleChat, GroupDirectory, answer_pending  # noqa: PLC0415
    from remediator.app.wiring import build_engine  # noqa: PLC0415
    from remediator.azure.reader import LiveState  # noqa: PLC0415
    from remediator.azure.state import SavedState  # noqa: PLC0415
    from remediator.config.settings import Settings  # noqa: PLC0415
    from remediator.planning.planner import Planner  # noqa: PLC0415
    from remediator.planning.render import outcome_count  # noqa: PLC0415
    from remediator.store import SQLiteStore  # noqa: PLC0415
    from remediator.testing import FakeArm, FakeMsGraph  # noqa: PLC0415

    playbooks_path = find_playbooks(playbooks_dir)
    playbooks = load_playbooks(playbooks_path, base=SHIPPED_PLAYBOOKS)
    saved = SavedState.from_path(SAMPLES / "state")
    records = sample_records()
    # group_wait 0: every sample arrives in one delivery, so nothing is gained by waiting for more
    settings = with_demo_private_link(Settings(admins=(DEMO_ADMIN,), approver_roles=_roles(playbooks),
                                           executor_principal_id=DEMO_EXECUTOR, elevation="pim-assign",
                                           playbooks_dir=playbooks_path, group_wait=timedelta(0)))
    out.write(f"remediator demo: {plural(len(records), 'sample record')}, {plural(len(playbooks), 'playbook')}, "
              f"{plural(len(saved), 'simulated resource')} (no Azure, no Slack)\n")

    with tempfile.TemporaryDirectory() as tmp, FakeArm() as arm, FakeMsGraph() as graph, \
            SQLiteStore(Path(store_path) if store_path else Path(tmp) / "demo.db") as store:
        names = _demo_names(graph, saved, out, unreachable=graph_unreachable)

        _section(out, "1. Dry run: what the playbooks would change (nothing is written)")
        _dry_run(out, Planner(playbooks=playbooks, state=saved, protected_principals=settings.protected_principals,
                              settings=settings.for_actions(), private_link=settings.private_link()), records, names)

        arm.load(saved.documents())
        arm.enforce_grants(DEMO_EXECUTOR)  # the executor holds no standing role: every write needs a grant
        clients = arm.clients(principal_id=DEMO_EXECUTOR)
        directory = GroupDirectory(_groups(playbooks, dict(settings.approver_roles)))
        chat = ConsoleChat(out, names=names)
        engine = build_engine(settings, chat=chat, directory=directory, store=store, clients=clients,
                              broker=arm.clients(principal_id=DEMO_BROKER), state=LiveState(clients))
        chat.requirement = engine.requirement

        _section(out, "2. Ingest: low risk is applied on its own, the rest is asked in Slack")
        received = engine.ingest(records, source="demo")
        planned = engine.plan([str(r.record["id"]) for r in received if r.outcome == "queued"])
        outcomes = [r.outcome for r in received if r.outcome != "queued"] + [p.outcome for p in planned]
        out.write(f"  {plural(len(received), 'record')} received: "
                  f"{', '.join(outcome_count(outcomes.count(o), o) for o in sorted(set(outcomes)))}\n")
        engine.work()

        _later(out, engine, arm)

        _section(out, "4. Approvals (as the playbooks' approvers would click in Slack)")
        if not engine.pending():
            out.write("  nothing is waiting for approval\n")
        answer_pending(engine, out=out, directory=directory, approve_all=approve_all, ask=ask)

        _section(out, "5. Worker: PIM grant on the one resource, apply, verify, release")
        engine.work()
        rems = {r.id: r for r in store.list()}
        states = [r.state for r in rems.values()]
        out.write(f"  {plural(len(arm.resource_writes), 'ARM write')}, each under one of "
                  f"{plural(len(arm.pim_grants(DEMO_EXECUTOR, active_only=False)), 'PIM grant')} (scoped to the "
                  f"resource, released after); active grants left: {len(arm.pim_grants(DEMO_EXECUTOR))}\n")
        out.write(f"  remediations: {brief_counts(states)}\n")

        _section(out, "6. Audit trail, briefly (who approved, which grant, what was written)")
        _trail(out, names, engine.audit_trail(), rems)
        out.write(f"Every field of every event: remediator audit --store "
                  f"{_shell(store_path) if store_path else 'demo.db'}"
                  + ("" if store_path else "  (after remediator demo --store demo.db)") + "\n")
        failed = states.count("failed")
    if failed:
        out.write(f"\n{plural(failed, 'remediation')} failed: see the audit trail above.\n")
        return 1
    return 0


def _later(out: TextIO, engine: Engine, arm: FakeArm) -> None:
    """Step 3: the jailbreak alert arrives through the export (its prompt text withheld), someone deletes the
    export, the daily reconcile's check raises it; both requests are posted."""
    from remediator.actions.continuous_export import API_VERSION  # noqa: PLC0415
    from remediator.azure.lro import write  # noqa: PLC0415
    from remediator.lifecycle.export_watch import EXPORT_ROUTE  # noqa: PLC0415

    _section(out, "3. Later: a jailbreak attempt, and the export that feeds remediator is deleted")
    records = later_records()
    received = engine.ingest(records, source=EXPORT_ROUTE)
    engine.plan([str(r.record["id"]) for r in received if r.outcome == "queued"])
    for record in records:
        out.write(f"  Defender's export brings: {record.summary()['type']} on {ids.parse(str(record.resource_id)).name}"
                  " (its prompt text is withheld: never copied)\n")
    write(arm.clients(principal_id=DEMO_ADMIN_OBJECT), "DELETE", DEMO_EXPORT, API_VERSION)
    name = ids.parse(DEMO_EXPORT).name
    out.write(f"  someone deletes continuous export {name}: Defender stops sending remediator anything\n")
    sub = str(ids.parse(DEMO_EXPORT).subscription_id)
    report = engine.check_exports([sub])
    out.write(f"  daily reconcile: the continuous export of subscription {sub[:8]}… is {report[sub]}: a finding\n")
    engine.work()


def _demo_names(graph: FakeMsGraph, saved: StateReader, out: TextIO, *, unreachable: bool) -> NameResolver:
    """The demo's name lookups: the estate's principals in the simulated Graph (down when ``unreachable``),
    policy definitions from the catalog and the saved state; a failure is one ``warning:`` line."""
    from remediator.planning.names import NameResolver  # noqa: PLC0415

    graph.load(json.loads(DEMO_DIRECTORY.read_text(encoding="utf-8")))
    if unreachable:
        graph.unreachable()
    def warn(problem: str) -> None:
        out.write(f"warning: {problem}\n")

    return NameResolver(directory=graph.client(timeout=2.0), definitions=saved, report=warn)


def _trail(out: TextIO, names: NameResolver, trail: list[AuditEvent], rems: Mapping[str, Remediation]) -> None:
    """Step 5: the trail's lines, with the names of every id they show (one lookup)."""
    from remediator.app.briefs import trail_lines  # noqa: PLC0415
    from remediator.lifecycle.naming import names_for  # noqa: PLC0415
    from remediator.planning.names import naming  # noqa: PLC0415

    with naming(names_for(names, list(rems.values()), texts=[json.dumps(e.detail, default=str) for e in trail])):
        out.write("".join(line + "\n" for line in trail_lines(trail, rems)))


def _dry_run(out: TextIO, planner: Planner, records: list[Record], names: NameResolver) -> None:
    """Step 1: one line per record (names beside ids, looked up once for the whole plan), the plan's closing
    tally, and the command that prints every property."""
    from remediator.app.briefs import result_line  # noqa: PLC0415
    from remediator.planning.names import naming, not_principals  # noqa: PLC0415
    from remediator.planning.render import plan_tally  # noqa: PLC0415

    results = planner.plan(records)
    found = names.resolve([json.dumps(r.to_json(), default=str) for r in results],
                          skip=not_principals(r.finding for r in results))
    with naming(found):
        out.write("".join(result_line(r) + "\n" for r in results))
    out.write(f"{plan_tally(results)}\n")
    out.write(f"Every property of every change: remediator plan {_shell(SAMPLES / 'findings')}/*.json "
              f"--resources {_shell(SAMPLES / 'state')} \\\n    --config {_shell(DEMO_SETTINGS)}\n")


def _shell(path: str | Path) -> str:
    """``path`` as a shell word, relative to the working directory when it is below it (a checkout),
    quoted when it holds a space or a shell character."""
    import os  # noqa: PLC0415
    import shlex  # noqa: PLC0415

    text = str(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:  # another drive (Windows)
        relative = text
    return shlex.quote(text if relative.startswith("..") else relative)
