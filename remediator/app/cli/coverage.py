"""``remediator coverage``: which assigned policy definitions remediator fixes, with which playbook.

Sources, read-only:

* live (default): for each ``--subscription`` (else every subscription the identity reads), the
  policy assignments and the latest compliance summary (``remediator.azure.policy_insights``), and
  each definition by id (cached) to tell a custom Modify definition from the rest;
* exports: ``--assignments FILE`` (``az policy assignment list``, or a REST list body) and
  ``--summary FILE`` (``az policy state summarize``, or a SummarizeResults body), repeatable;
  ``--definitions PATH`` adds saved definitions (custom ones, offline);
* ``--demo``: the demo estate (``remediator demo``'s simulated ARM with the sample state), its policy
  assignments and states taken from the sample policy findings, read through the live path;
* ``--catalog``: the shipped catalog of built-in definitions (``remediator/playbooks/policy-catalog.tsv``)
  against the playbooks: ``--output markdown`` is ``docs/coverage.md``.

Text output: one line per assigned definition (non-compliant resources, fixable or not, the
definition, the assignment, the playbook and its actions or why none), then the totals and the roles
the claimed Modify definitions ask PIM for (``modifyRoleIds`` of the deployment template);
``--output json`` one document ``{"definitions": [...], "totals": {...}, "playbooks": {...},
"modify_role_ids": [...]}``.
Exit 0 (a report), 1 on an error (one line).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from remediator.app.cli import inputs
from remediator.app.cli.output import EXIT_OK, emit, write_json
from remediator.errors import InputError, UsageError
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients
    from remediator.planning.coverage import Row
    from remediator.testing import FakeArm

REGENERATE = "python -m remediator coverage --catalog --output markdown > docs/coverage.md"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("coverage", help="which assigned policy definitions remediator fixes, with which playbook")
    p.add_argument("--assignments", action="append", metavar="FILE",
                   help="az policy assignment list output (repeatable); with --summary: offline")
    p.add_argument("--summary", action="append", metavar="FILE",
                   help="az policy state summarize output (repeatable): non-compliant resources per definition")
    p.add_argument("--definitions", metavar="PATH", help="saved policy definitions (custom ones), a file or folder")
    p.add_argument("--subscription", action="append", metavar="ID",
                   help="live: the subscription to read (repeatable; default: every one the identity reads)")
    p.add_argument("--demo", action="store_true",
                   help="the demo estate: the sample state and policy findings on a simulated ARM, read live")
    p.add_argument("--catalog", action="store_true",
                   help="the built-in definitions of remediator's catalog against the playbooks (docs/coverage.md)")
    p.add_argument("--playbooks", metavar="DIR", help="your playbooks folder or file, an overlay of the shipped ones")
    p.add_argument("--output", choices=("text", "json", "markdown"), default="text",
                   help="text (default), json (one document), markdown (with --catalog: docs/coverage.md)")
    p.add_argument("--arm-endpoint", metavar="URL",
                   help="ARM endpoint for live reads (sovereign clouds); env REMEDIATOR_ARM_ENDPOINT")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO, *, clients: ArmClients | None = None) -> int:
    """``clients``: the ARM clients for the live reads (instead of the executor's from the settings)."""
    if getattr(args, "demo", False):
        if args.assignments or args.summary or args.subscription or args.catalog:
            raise UsageError("coverage: --demo reads the demo estate; give no exports, subscriptions or --catalog")
        from remediator.testing import FakeArm  # noqa: PLC0415

        with FakeArm() as arm:
            demo_estate(arm)
            return _run(args, out, arm.clients())
    return _run(args, out, clients)


def _run(args: argparse.Namespace, out: TextIO, clients: ArmClients | None) -> int:
    from remediator.planning.coverage import Coverage, by_playbook, modify_roles, totals  # noqa: PLC0415

    offline = bool(args.assignments or args.summary)
    if args.catalog and (offline or args.subscription):
        raise UsageError("coverage: --catalog compares the catalog with the playbooks; it reads no assignments")
    if args.output == "markdown" and not args.catalog:
        raise UsageError("coverage: --output markdown is the catalog page; add --catalog")
    if offline and args.subscription:
        raise UsageError("coverage: give exports (--assignments/--summary) or --subscription, not both")
    playbooks = _playbooks(args)
    saved: dict[str, dict[str, Any]] = {}
    if args.definitions:
        from remediator.azure.definitions import load_definitions  # noqa: PLC0415

        saved = load_definitions(args.definitions)
    if args.catalog:
        coverage = Coverage(playbooks, _lookup(saved, None))
        rows = coverage.catalog()
    elif offline:
        coverage = Coverage(playbooks, _lookup(saved, None))
        rows = coverage.tenant(_read_all(args.assignments or [], "assignments"),
                               _read_all(args.summary or [], "summary"))
    else:
        from remediator.azure import policy_insights  # noqa: PLC0415
        from remediator.azure.reader import LiveState  # noqa: PLC0415

        clients = clients or inputs.reader_clients(args)
        coverage = Coverage(playbooks, _lookup(saved, LiveState(clients)))
        rows = []
        for sub in args.subscription or policy_insights.subscriptions(clients):
            rows.extend(coverage.tenant(policy_insights.assignments(clients, sub),
                                        [policy_insights.summarize(clients, sub)]))
    if args.output == "json":
        write_json(out, {"definitions": [r.to_json() for r in rows], "totals": totals(rows),
                         "playbooks": by_playbook(rows, playbooks), "modify_role_ids": modify_roles(rows, playbooks)})
    elif args.output == "markdown":
        emit(out, markdown(rows, playbooks))
    else:
        roles = modify_roles(rows, playbooks)
        tail = f"policy.apply-modify asks PIM for: {', '.join(roles)} (the deployment's modifyRoleIds)\n"
        emit(out, text(rows, catalog=args.catalog) + (tail if roles else ""))
    return EXIT_OK


def demo_estate(arm: FakeArm) -> None:
    """Seed ``arm`` as ``remediator demo`` does (the sample state), plus the policy assignments and
    states the sample policy findings report: an assignment that reports several definitions is an
    initiative (a policy set named after it)."""
    from remediator.app.demo import sample_records  # noqa: PLC0415
    from remediator.app.paths import SAMPLES  # noqa: PLC0415
    from remediator.azure.state import SavedState  # noqa: PLC0415
    from remediator.findings.model import Finding  # noqa: PLC0415

    arm.load(SavedState.from_path(SAMPLES / "state").documents())
    policy = [r for r in sample_records() if isinstance(r, Finding) and r.kind == "policy"
              and r.policy_assignment_id and r.policy_definition_id]
    by_assignment: dict[str, list[Finding]] = {}
    for f in policy:
        by_assignment.setdefault(str(f.policy_assignment_id), []).append(f)
    for aid, findings in by_assignment.items():
        definitions = list(dict.fromkeys(str(f.policy_definition_id) for f in findings))
        scope, name = aid.split("/providers/", 1)[0], aid.rstrip("/").rsplit("/", 1)[-1]
        target = definitions[0] if len(definitions) == 1 else \
            f"{scope}/providers/Microsoft.Authorization/policySetDefinitions/{name}"
        arm.add({"id": aid, "name": name, "type": "Microsoft.Authorization/policyAssignments",
                 "properties": {"displayName": name, "policyDefinitionId": target, "scope": scope,
                                "enforcementMode": "Default", "notScopes": []}})
        for f in findings:
            arm.add_policy_state(resource_id=f.resource_id, assignment_id=aid,
                                 definition_id=str(f.policy_definition_id),
                                 set_definition_id=target if len(definitions) > 1 else "")


def _playbooks(args: argparse.Namespace) -> Any:
    if args.catalog and not args.playbooks:  # the page is about what ships, wherever it is run
        from remediator.app.paths import SHIPPED_PLAYBOOKS  # noqa: PLC0415
        from remediator.playbooks import load_playbooks  # noqa: PLC0415

        return load_playbooks(SHIPPED_PLAYBOOKS)
    return inputs.load_playbooks(args.playbooks)


def _lookup(saved: dict[str, dict[str, Any]], live: Any) -> Any:
    from remediator import ids  # noqa: PLC0415

    def find(definition_id: str) -> dict[str, Any] | None:
        doc = saved.get(ids.key(definition_id))
        if doc is None and live is not None:
            got: dict[str, Any] | None = live.get(definition_id)
            return got
        return doc

    return find


def _read_all(paths: Sequence[str], what: str) -> list[dict[str, Any]]:
    """The JSON objects of the export files: an array (az … list), ``{"value": [...]}`` (REST) stays one
    object for the summary (SummarizeResults) and is unpacked for assignments."""
    from remediator import _json  # noqa: PLC0415

    out: list[dict[str, Any]] = []
    for name in paths:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
        try:
            values = _json.decode(data, finite=True)
        except _json.DecodeError as e:
            raise InputError(f"{name}{f':{e.line}' if e.line else ''}: not JSON: {e.message}") from None
        for _line, value in values:
            items = value if isinstance(value, list) else \
                value["value"] if what == "assignments" and isinstance(value, dict) and \
                isinstance(value.get("value"), list) else [value]
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    shape = "a policy assignment" if what == "assignments" else "a policy states summary"
                    raise InputError(f"{name}[{i}]: expected a JSON object ({shape}), found {_json.kind(item)}")
                if what == "assignments" and not str(item.get("id") or "").lower().count("/policyassignments/"):
                    raise InputError(f"{name}[{i}]: not a policy assignment (no id …/providers/Microsoft.Authorization/"
                                     "policyAssignments/<name>; expected az policy assignment list output)")
                if what == "summary" and "policyAssignments" not in item and not isinstance(item.get("value"), list):
                    raise InputError(f"{name}[{i}]: not a policy states summary (no policyAssignments; expected "
                                     "az policy state summarize output)")
                out.append(item)
    return out


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def text(rows: Sequence[Row], *, catalog: bool = False) -> str:
    from remediator.planning.coverage import totals  # noqa: PLC0415

    lines = []
    for r in sorted(rows, key=lambda r: (not r.fixable, -(r.non_compliant or 0), r.display_name.lower())):
        count = "-" if r.non_compliant is None else str(r.non_compliant)
        where = "" if catalog else f"  [{r.assignment_id.rstrip('/').rsplit('/', 1)[-1] or '?'}]"
        verdict = f"fix: {r.playbook} ({r.reason})" if r.fixable else f"not fixable: {r.reason}"
        lines.append(f"{count:>6}  {_short(r.display_name, 70)}{where}  {verdict}")
    t = totals(rows)
    head = ("resources  definition [assignment]  playbook or why not" if not catalog
            else "resources  definition  playbook or why not")
    noun = "catalog definition" if catalog else "assigned definition"
    tail = (f"{plural(t['definitions'], noun)}: {t['fixable']} fixable by a playbook"
            + ("" if catalog else f", covering {t['non_compliant_fixable']} of {t['non_compliant_resources']} "
               "non-compliant resources"))
    return "\n".join([head, *lines, "", tail]) + "\n"


def markdown(rows: Sequence[Row], playbooks: Any) -> str:
    """``docs/coverage.md``: the catalog against the playbooks, by category."""
    from remediator.planning.coverage import by_playbook, totals  # noqa: PLC0415
    from remediator.playbooks.catalog import CATALOG_SOURCE, by_id  # noqa: PLC0415

    t = totals(rows)
    klass = Counter(r.catalog_class for r in rows)
    claimed = Counter(r.catalog_class for r in rows if r.fixable)
    out = ["# Coverage: the shipped playbooks against Azure Policy's built-in definitions", "",
           f"Generated by `{REGENERATE}`; do not edit (a test checks it is current).", "",
           f"The catalog: {len(rows)} built-in definitions of {CATALOG_SOURCE} "
           "(`remediator/playbooks/policy-catalog.tsv`). Its `class` is a judgement: a = a shipped playbook "
           "matches it (or the Defender recommendation mirroring it), b0 = an existing action makes the change, "
           "b = a property change, c = more logic (private endpoint, diagnostic setting, key), d = not a "
           "configuration change. A definition counts as claimed when a shipped playbook lists its id and its "
           "resource types; Modify definitions can also be claimed by a deployment's own playbook running "
           "`policy.apply-modify` (`examples/playbooks-modify/`).", "",
           f"**Claimed: {t['fixable']} of {len(rows)}** "
           f"(of the {klass['a'] + klass['b0'] + klass['b']} of class a, b0 and b: "
           f"{claimed['a'] + claimed['b0'] + claimed['b']}).", "",
           "`Modify` counts the definitions whose effect can be Modify: a deployment's playbook running "
           "`policy.apply-modify` claims them once it opts in (`match.policy_categories` or `match.policies`).", "",
           "| category | definitions | claimed | Modify | a | b0 | b | c | d |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    categories = sorted({r.category for r in rows})
    for c in categories:
        mine = [r for r in rows if r.category == c]
        k = Counter(r.catalog_class for r in mine)
        modify = sum(1 for r in mine if (entry := by_id().get(r.definition_id.rsplit("/", 1)[-1].lower()))
                     and entry.can_modify)
        out.append(f"| {c} | {len(mine)} | {sum(r.fixable for r in mine)} | {modify} | {k['a']} | {k['b0']} | "
                   f"{k['b']} | {k['c']} | {k['d']} |")
    out += ["", "## Playbooks", "", "| playbook | definitions claimed |", "|---|---:|"]
    out += [f"| `{name}` | {n} |" for name, n in sorted(by_playbook(rows, playbooks).items())]
    for c in categories:
        out += ["", f"## {c}", "", "| definition | id | class | playbook or why not |", "|---|---|---|---|"]
        for r in (r for r in rows if r.category == c):
            verdict = f"`{r.playbook}`" if r.fixable else r.reason
            name = r.display_name.replace("|", "\\|")
            out.append(f"| {name} | `{r.definition_id.rsplit('/', 1)[-1]}` | {r.catalog_class} | "
                       f"{verdict.replace('|', '/')} |")
    return "\n".join(out) + "\n"
