"""``remediator doctor``: a preflight of a deployment, one line per check, ok or what to fix.

Every problem is reported in one run: a setting that is wrong is one line and left at its default
(``read_settings``), the others are still checked. Checks, in order (a check whose prerequisite
failed says so instead of running):

1. **settings**: well formed (one line per wrong value), plus one line per setting a deployment
   needs beyond a local run: the Slack token, signing secret and channel; the executor's object id
   and, for ``pim-assign``, the broker's client id;
2. **playbooks**: the playbooks folder loads (``remediator.app.paths.settings_playbooks_dir``, over
   the shipped ones); **approver roles**: every role the playbooks name is mapped in
   ``approver_roles`` (and ``bot.doctor`` checks that every mapped Slack id exists in the workspace);
3. **store**: reachable (SQLite opens and reads; Tables and the jobs queue answer). Nothing is
   created: a store the app has not created yet passes with a note when it could be (``check_store``);
   **quarantine**: empty (a failing line counts the rows and messages that could not be decoded and
   were moved there);
4. **slack**: token valid with every scope the bot needs, its workspace, the channel reachable with
   the bot in it (``bot.doctor``, given as ``slack``: this module imports no Slack library; both report
   ``remediator.config.preflight.Check``); without a token Slack is not called;
5. **arm**: the ARM endpoint answers each identity (the executor; the broker for ``pim-assign``),
   and lists the subscriptions it can see; ARM's message is kept whole (``arm_error``);
6. **roles**: at each subscription the playbooks act on (their ``match.subscriptions``, else every
   subscription the executor sees), the executor can read; with ``pim-assign`` the broker may create
   role assignments (``Microsoft.Authorization/roleAssignments/write`` and ``delete``, through
   ARM's permissions API as the broker itself); with ``pim-activate`` the executor is eligible for
   every role the playbooks' actions need; with ``standing`` it holds each of those roles;
7. **defender plans**: at each of those subscriptions, the Defender plans the playbooks would turn on
   (``defender.enable-plan`` steps) are at Standard: a plan at Free means Defender raises no alert
   for those resources, and remediator sees nothing of them (read as the executor; ARM's list of the
   subscription's pricings, 2024-01-01);
8. **PIM role settings**: when the playbooks make standing access eligible (``rbac.make-eligible`` steps), at
   each of those subscriptions the PIM settings of each role the steps name are read (as the executor:
   ``roleManagementPolicyAssignments``, 2020-10-01): what governs activation (approval, MFA, the longest
   activation) is shown, and a step's ``duration`` over the role's eligibility maximum fails; settings that
   cannot be read fail (PIM needs Microsoft Entra ID P2 or Microsoft Entra ID Governance);
9. **continuous export**: at each scanned subscription (``scan_subscriptions``, else each the executor sees),
   next to its Defender plans, an enabled ``Microsoft.Security/automations`` exports ``export_sources`` to
   ``export_event_hub_id``: present, enabled, destination and sources, or what is wrong (without the setting one
   line says it is not watched);
10. **log destination**: when the playbooks send resource logs (``monitor.enable-diagnostic-logs``), a
   destination is set (``diagnostics_workspace_id`` and/or ``diagnostics_storage_account_id``) and each
   write can use it: ARM checks ``workspaces/sharedKeys/action`` (``storageAccounts/listKeys/action``)
   there as a linked scope; the fix asks a grant at the destination, so with ``pim-assign`` the broker
   may grant there, with ``standing`` the executor holds it.
   An Event Hub's is checked at its namespace (``authorizationRules/listkeys/action``). A destination some
   playbook names (``destinations: [storage]``, ``[event_hub]``) and the deployment has not set is said,
   not failed: those playbooks refuse until it is (an archive or a SIEM stream is the deployment's choice);
11. **custom roles**: at each of those subscriptions, every custom role the playbooks' actions grant
   (``remediator.actions.custom_roles``, resolved through ``custom_roles``) exists, is assignable there and holds
   the operations the actions write (its definition read as the executor, whose Reader may); a failing line says
   how to create it (``infra/custom-roles.bicep``) or which setting maps your own;
12. **names**: Microsoft Graph (``graph_endpoint``, default the ARM endpoint's cloud's) names principals:
    the executor's own object id is looked up with ``getByIds`` as the executor; a refusal names the
    permission (``Directory.Read.All``). Names off, or no Graph endpoint known for the cloud, passes with
    a note (principals are then shown by id);
11. **application permissions**: when the playbooks remove Microsoft Graph application permissions
    (``entra.remove-app-role-assignment``: ``Action.directory_permissions``), the executor holds each
    permission they need (``AppRoleAssignment.ReadWrite.All``) as an app role assignment to Microsoft Graph's
    service principal, read through Microsoft Graph (``check_directory_permissions``). No Azure role and no
    PIM grant covers a Graph application permission, so it is checked here and never in **roles**.

A new check is a function returning ``Check`` values, appended in ``preflight`` (every entry point:
``run_all`` for the CLI, ``deployment_preflight`` for ``/remediate doctor``).

Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remediator import ids
from remediator.actions import REGISTRY
from remediator.config.preflight import Check as Check  # noqa: PLC0414 (re-exported: doctor.Check)
from remediator.config.preflight import passed as passed  # noqa: PLC0414 (re-exported: doctor.passed)
from remediator.config.preflight import render as render  # noqa: PLC0414 (re-exported: doctor.render)
from remediator.config.settings import Settings
from remediator.errors import ConfigError, RemediatorError, UsageError, error_line, one_line
from remediator.lifecycle.reports import Preflight, PreflightReport, SlackChecks
from remediator.playbooks import PlaybookSet
from remediator.words import plural

SUBSCRIPTIONS_API = "2022-12-01"
PERMISSIONS_API = "2022-04-01"
ELIGIBILITY_API = "2020-10-01"
BROKER_ACTIONS = ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete")


# -- settings, playbooks, store -----------------------------------------------------------------


Loaded = Settings | tuple[Settings, Sequence[str]]  # load_settings' answer, or read_settings' (with the problems)


def check_settings(load: Callable[[], Loaded]) -> tuple[list[Check], Settings | None]:
    """``load`` is ``remediator.config.settings.read_settings`` (the settings without their wrong values,
    and every problem) or ``load_settings`` bound to the environment and file. One line per problem:
    each wrong value, then each setting a deployment needs that is not set."""
    try:
        loaded = load()
    except ConfigError as e:
        return [Check(name="settings", ok=False, message=one_line(p)) for p in e.problems or (str(e),)], None
    except RemediatorError as e:
        return [Check(name="settings", ok=False, message=error_line(e))], None
    settings, problems = loaded if isinstance(loaded, tuple) else (loaded, ())
    checks = [Check(name="settings", ok=False, message=one_line(p)) for p in problems]
    missing = []
    if not settings.slack_bot_token:
        missing.append("SLACK_BOT_TOKEN (the Bot User OAuth Token, xoxb-…)")
    elif not settings.slack_bot_token.startswith("xoxb-"):
        missing.append("SLACK_BOT_TOKEN: not a bot token (it starts with xoxb-; copy the Bot User OAuth Token)")
    if not settings.slack_signing_secret:
        missing.append("SLACK_SIGNING_SECRET (Basic Information → Signing Secret)")
    if not settings.slack_channel:
        missing.append("REMEDIATOR_SLACK_CHANNEL (the approval channel's id, C…)")
    if settings.elevation != "standing" and not settings.executor_principal_id:
        missing.append("REMEDIATOR_EXECUTOR_PRINCIPAL_ID (the executor identity's object id)")
    if settings.elevation == "pim-assign" and not settings.broker_client_id:
        missing.append("REMEDIATOR_BROKER_CLIENT_ID (the broker identity's client id)")
    checks += [Check(name="settings", ok=False, message="set " + m) for m in missing]
    if checks:
        return checks, settings
    return [Check(name="settings", ok=True,
                  message=f"well formed (store {settings.store_url}, elevation {settings.elevation})")], settings


def check_playbooks(settings: Settings, load: Callable[[Any], PlaybookSet]) -> tuple[Check, PlaybookSet | None]:
    from remediator.app.paths import settings_playbooks_dir  # noqa: PLC0415

    folder = settings_playbooks_dir(settings.playbooks_dir)
    try:
        playbooks = load(folder)
    except RemediatorError as e:
        return Check(name="playbooks", ok=False, message=error_line(e)), None
    if not len(playbooks):
        return Check(name="playbooks", ok=False,
                     message=f"{folder}: no playbooks (REMEDIATOR_PLAYBOOKS_DIR)"), playbooks
    return Check(name="playbooks", ok=True, message=f"{len(playbooks)} loaded from {folder}"), \
        playbooks


def check_approver_roles(settings: Settings, playbooks: PlaybookSet) -> Check:
    """Every approver role the playbooks name is mapped (``approver_roles``), and the quorums can be met."""
    from remediator.config.roles import role_issues  # noqa: PLC0415

    issues = role_issues(playbooks, settings.approver_roles)
    if issues:
        shown = "; ".join(f"{i.message} ({i.file}:{i.line})" for i in issues[:5])
        more = f"; and {len(issues) - 5} more (remediator validate --config)" if len(issues) > 5 else ""
        return Check(name="approver roles", ok=False, message=shown + more)
    roles = sorted({r for p in playbooks for r in p.approval.roles})
    return Check(name="approver roles", ok=True,
                 message=f"{', '.join(roles)} mapped" if roles else "the playbooks name no roles")


def check_store(settings: Settings, open_store: Callable[[str], Any], *, close: bool = True) -> list[Check]:
    """``open_store(url)`` opens it (``remediator.store.open_store`` with ``must_exist=True``: a preflight
    creates nothing; or the running engine's store with ``close=False``); a read of the flags (and, on
    Azure, of the jobs queue) proves it. A store not created yet passes with a note when it could be:
    the app creates it on first start (SQLite: its folder is writable; Azure: the account answered).
    Then the quarantine: a failing line when rows or messages could not be decoded and were moved there."""
    try:
        store = open_store(settings.store_url)
    except UsageError:
        created = _not_created(settings.store_url)
        return [created, Check(name="quarantine", ok=True, message="empty (no store yet)")] if created.ok else [created]
    except Exception as e:
        return [Check(name="store", ok=False, message=f"{settings.store_url}: cannot open: {error_line(e)}")]
    try:
        store.get_flag("paused")
        ping = getattr(store, "ping", None)
        detail = ping() if callable(ping) else "reads"
        quarantined = int(store.quarantine_count())
    except Exception as e:
        return [Check(name="store", ok=False, message=f"{settings.store_url}: not reachable: {error_line(e)}")]
    finally:
        closer = getattr(store, "close", None)
        if close and callable(closer):
            closer()
    checks = [Check(name="store", ok=True, message=f"{settings.store_url}: {detail}")]
    if quarantined:
        checks.append(Check(name="quarantine", ok=False, message=(
            f"{plural(quarantined, 'stored row or queued message', 'stored rows or queued messages')} could not "
            "be decoded and were quarantined "
            "(each is audited as 'quarantined'; Store.quarantined() lists the error, key and text): "
            "repair or discard them")))
    else:
        checks.append(Check(name="quarantine", ok=True, message="empty"))
    return checks


def _not_created(url: str) -> Check:
    if url.strip().startswith("azure://"):  # missing_tables() read the account: it answered, with these keys
        return Check(name="store", ok=True, message=f"{url}: the storage account answers; its tables are not "
                                                    "created yet (the app creates them on first start)")
    path = Path(url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url)
    folder = path.parent if str(path.parent) else Path()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path())
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return Check(name="store", ok=True, message=f"{url}: not created yet; the app creates it on first start "
                                                    f"(in {folder.resolve()}, writable)")
    return Check(name="store", ok=False, message=f"{url}: does not exist, and the app cannot create it: "
                                                 f"{existing.resolve()} is not a writable folder")


# -- ARM and the identities' roles ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """An identity the doctor checks: its name in messages and the ``ArmClients`` that act as it."""

    name: str  # "executor" or "broker"
    clients: Any  # ArmClients


def _get(clients: Any, subscription: str, path: str, api_version: str, *, pages: int = 50) -> Any:
    """A GET through a management client's own pipeline (the identity's token, retries, endpoint);
    a list's pages (``nextLink``) are followed and joined into one ``value``."""
    from azure.core.rest import HttpRequest  # noqa: PLC0415

    # the multi-API client keeps its ARM pipeline (auth, retries) in _client; it has no public send_request
    pipeline = clients.authorization(subscription)._client
    url: str | None = f"{clients.base_url}{path}{'&' if '?' in path else '?'}api-version={api_version}"
    values: list[Any] = []
    body: Any = {}
    for _ in range(pages):
        if url is None:
            break
        response = pipeline.send_request(HttpRequest("GET", url))
        response.raise_for_status()
        body = response.json()
        values.extend(body.get("value") or [])
        url = body.get("nextLink") or None
    return {**body, "value": values}


def arm_error(e: BaseException) -> str:
    """An ARM failure as one whole line: ``403 AuthorizationFailed: <ARM's message>`` (status, code and
    message once, never cut: the message names the scope and the action to grant), or the error itself
    (a credential or transport failure)."""
    from remediator.azure.reader import http_error_line  # noqa: PLC0415

    if getattr(e, "status_code", None) is not None:
        return http_error_line(e)
    return error_line(e, limit=None)


def _subscriptions(identity: Identity) -> list[str]:
    body = _get(identity.clients, "00000000-0000-0000-0000-000000000000", "/subscriptions", SUBSCRIPTIONS_API)
    return [str(s.get("subscriptionId") or ids.parse(str(s["id"])).subscription_id) for s in body.get("value") or []]


def check_arm(settings: Settings, identities: Sequence[Identity]) -> tuple[list[Check], dict[str, list[str]]]:
    checks: list[Check] = []
    seen: dict[str, list[str]] = {}
    for identity in identities:
        try:
            subs = _subscriptions(identity)
        except Exception as e:
            checks.append(Check(name=f"arm ({identity.name})", ok=False,
                                message=f"{settings.arm_endpoint}: {arm_error(e)} (check REMEDIATOR_ARM_ENDPOINT, "
                                        f"REMEDIATOR_AUTHORITY_HOST and the {identity.name} identity)"))
            continue
        seen[identity.name] = subs
        if not subs:
            checks.append(Check(name=f"arm ({identity.name})", ok=False,
                                message=f"{settings.arm_endpoint}: reachable, but the {identity.name} sees no "
                                        "subscription: assign it Reader on the subscriptions to remediate"))
            continue
        checks.append(Check(name=f"arm ({identity.name})", ok=True,
                            message=f"{settings.arm_endpoint}: reachable; {len(subs)} subscription"
                                    f"{'' if len(subs) == 1 else 's'} visible"))
    return checks, seen


def needed_roles(playbooks: PlaybookSet, custom_roles: Mapping[str, str] | None = None) -> dict[str, str]:
    """Role definition GUID → name, of every action the playbooks use (an action whose role each plan
    chooses, policy.apply-modify, names none: its definitions' roles are the deployment's modifyRoleIds); a
    custom role by the id ``custom_roles`` maps it to, else its own."""
    from remediator.actions.base import CustomRole  # noqa: PLC0415

    out: dict[str, str] = {}
    for playbook in playbooks:
        for step in playbook.steps:
            action = REGISTRY.get(step.action)
            if action is not None and not action.writes_nothing and not action.directory_permissions:
                # advice asks for no grant; a Graph application permission is no Azure role (check 11)
                for declared in (() if action.role_from_plan else (action.role,)) + action.extra_roles:
                    role = declared.mapped(custom_roles) if isinstance(declared, CustomRole) else declared
                    out[role.id] = role.name
    return out


def needed_custom_roles(playbooks: PlaybookSet, custom_roles: Mapping[str, str] | None = None,
                        ) -> list[tuple[Any, tuple[str, ...]]]:
    """Each custom role the playbooks' actions grant (mapped through ``custom_roles``) with the operations those
    actions write, in key order."""
    from remediator.actions.base import CustomRole  # noqa: PLC0415

    ops: dict[str, set[str]] = {}
    roles: dict[str, CustomRole] = {}
    for playbook in playbooks:
        for step in playbook.steps:
            action = REGISTRY.get(step.action)
            if action is not None and isinstance(action.role, CustomRole):
                roles[action.role.key] = action.role.mapped(custom_roles)
                ops.setdefault(action.role.key, set()).update(action.permissions)
    return [(roles[k], tuple(sorted(ops[k]))) for k in sorted(roles)]


def check_custom_roles(settings: Settings, playbooks: PlaybookSet, executor: Identity,
                       visible: Sequence[str]) -> list[Check]:
    """Per subscription: every custom role the playbooks grant exists there, is assignable there and holds the
    operations (one line per subscription; each problem names the role, its setting and how to create it)."""
    from remediator.actions.custom_roles import ROLE_DEFINITIONS_API, definition_id, problem, refusal_line  # noqa: PLC0415

    needed = needed_custom_roles(playbooks, settings.custom_roles)
    if not needed:
        return []
    checks: list[Check] = []
    for sub in scopes(playbooks, visible):
        scope = f"/subscriptions/{sub}"
        wrong: list[str] = []
        for role, operations in needed:
            try:
                doc = _get(executor.clients, sub, definition_id(role, sub), ROLE_DEFINITIONS_API)
            except Exception as e:
                if getattr(e, "status_code", None) != 404:
                    wrong.append(f"cannot read custom role '{role.name}' ({role.id}): {arm_error(e)}")
                    continue
                doc = None
            found = problem(role, doc, scope, operations)
            if found:
                wrong.append(refusal_line(role, found))
        name = f"custom roles ({scope})"
        if wrong:
            checks.append(Check(name=name, ok=False, message="; ".join(wrong)))
        else:
            checks.append(Check(name=name, ok=True, message=f"{', '.join(r.name for r, _ in needed)}: exist, "
                                                            "assignable here, with the operations the fixes write"))
    return checks


def needed_reads(playbooks: PlaybookSet) -> list[str]:
    reads = {f"{t}/read" for p in playbooks for s in p.steps if s.action in REGISTRY
             for t in REGISTRY[s.action].resource_types if "/" in t and not REGISTRY[s.action].directory_permissions}
    return sorted(reads)


def scopes(playbooks: PlaybookSet, visible: Sequence[str]) -> list[str]:
    """The subscriptions the playbooks act on: those they name, else every visible one."""
    named = sorted({s.lower() for p in playbooks for s in p.match.subscriptions})
    unrestricted = any(not p.match.subscriptions for p in playbooks)
    return sorted(set(named) | ({s.lower() for s in visible} if unrestricted else set()))


def _allows(permissions: Iterable[Mapping[str, Any]], operation: str) -> bool:
    """ARM's permissions semantics: some entry's ``actions`` match and none of its ``notActions``."""
    op = operation.lower()
    for entry in permissions:
        if any(fnmatch.fnmatchcase(op, a.lower()) for a in entry.get("actions") or ()) and \
                not any(fnmatch.fnmatchcase(op, n.lower()) for n in entry.get("notActions") or ()):
            return True
    return False


def check_roles(settings: Settings, playbooks: PlaybookSet, executor: Identity, broker: Identity | None,
                visible: Sequence[str]) -> list[Check]:
    checks: list[Check] = []
    roles = needed_roles(playbooks, settings.custom_roles)
    for sub in scopes(playbooks, visible):
        scope = f"/subscriptions/{sub}"
        checks.append(_can(executor, scope, needed_reads(playbooks), fix="assign it Reader at the subscription"))
        if settings.elevation == "pim-assign" and broker is not None:
            checks.append(_can(broker, scope, list(BROKER_ACTIONS),
                               fix="assign it Role Based Access Control Administrator at the subscription "
                                   "(infra/subscription-roles.bicep, with its ABAC condition)"))
        elif settings.elevation == "pim-activate":
            checks.append(_eligible(executor, scope, roles, settings.executor_principal_id or ""))
        elif settings.elevation == "standing":
            checks.append(_holds(executor, scope, roles, settings.executor_principal_id))
    return checks


def defender_plans(playbooks: PlaybookSet) -> list[str]:
    """The Defender plans the playbooks turn on (their ``defender.enable-plan`` steps' ``plan``), sorted."""
    return sorted({str(getattr(step.params, "plan", "") or "") for p in playbooks for step in p.steps
                   if step.action == "defender.enable-plan"} - {""})


def check_defender_plans(playbooks: PlaybookSet, executor: Identity, visible: Sequence[str]) -> list[Check]:
    """Per subscription: the playbooks' Defender plans that are not at Standard (one line each subscription)."""
    from remediator.actions.defender import PRICING_TYPE  # noqa: PLC0415
    from remediator.actions.profiles import DEFENDER_PLAN  # noqa: PLC0415

    wanted = defender_plans(playbooks)
    if not wanted:
        return []
    checks: list[Check] = []
    for sub in scopes(playbooks, visible):
        name = f"defender plans (/subscriptions/{sub})"
        try:
            listed = _get(executor.clients, sub, f"/subscriptions/{sub}/providers/{PRICING_TYPE}",
                          DEFENDER_PLAN.api_version).get("value") or []
        except Exception as e:
            checks.append(Check(name=name, ok=False, message=f"cannot read the subscription's Defender plans: "
                                                             f"{arm_error(e)} (the executor needs Reader there)"))
            continue
        tiers = {str(d.get("name", "")).lower(): str((d.get("properties") or {}).get("pricingTier") or "Free")
                 for d in listed if isinstance(d, Mapping)}
        off = [p for p in wanted if tiers.get(p.lower()) != "Standard"]
        if off:
            checks.append(Check(name=name, ok=False, message=(
                f"off: {', '.join(off)}; Defender raises no alert for those resources, so remediator sees nothing "
                "of them (the defender-enable-* playbooks plan each on, with two approvers, when Defender or "
                "Azure Policy reports it)")))
        else:
            checks.append(Check(name=name, ok=True, message=f"on: {', '.join(wanted)}"))
    return checks


def check_exports(settings: Settings, executor: Identity, visible: Sequence[str]) -> list[Check]:
    """Per scanned subscription (``scan_subscriptions``, else every one the executor sees): an enabled Defender
    continuous export sends ``export_sources`` to ``export_event_hub_id`` (``remediator.actions.continuous_export``;
    read as the executor, what the daily reconcile reads). One line each: present, enabled, destination, sources."""
    from remediator.actions.continuous_export import automations_of, export_status  # noqa: PLC0415
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    hub = settings.export_event_hub_id
    if not hub:
        return [Check(name="continuous export", ok=True, message=(
            "not watched: set REMEDIATOR_EXPORT_EVENT_HUB_ID (the Event Hub Defender exports to) and doctor and the "
            "daily reconcile check every scanned subscription's export, and restore it when it goes"))]
    reader = LiveState(executor.clients)
    checks: list[Check] = []
    for sub in sorted({s.lower() for s in (settings.scan_subscriptions or tuple(visible))}):
        name = f"continuous export (/subscriptions/{sub})"
        try:
            status = export_status(sub, automations_of(reader, sub), hub=hub, sources=settings.export_sources)
        except Exception as e:
            checks.append(Check(name=name, ok=False, message=f"cannot read the subscription's continuous exports: "
                                                             f"{arm_error(e)} (the executor needs Reader there)"))
            continue
        fix = "" if status.ok else " (the daily reconcile raises it; the defender-restore-export playbook puts it back)"
        checks.append(Check(name=name, ok=status.ok, message=status.line() + fix))
    return checks


def by_subscription(*groups: Sequence[Check]) -> list[Check]:
    """Checks named ``… (/subscriptions/<id>)`` side by side per subscription (a subscription's Defender plans,
    then its export), each group's order kept; checks without a subscription first."""
    def sub_of(check: Check) -> str:
        return check.name.rsplit("(/subscriptions/", 1)[1].rstrip(")") if "(/subscriptions/" in check.name else ""

    indexed = [(sub_of(c), g, i, c) for g, group in enumerate(groups) for i, c in enumerate(group)]
    return [c for *_, c in sorted(indexed, key=lambda t: (t[0], t[1], t[2]))]


def check_pim_settings(playbooks: PlaybookSet, executor: Identity, visible: Sequence[str]) -> list[Check]:
    """Per subscription: the PIM settings of the roles the ``rbac.make-eligible`` steps name (one line each)."""
    from remediator.actions.eligible import POLICIES, role_settings  # noqa: PLC0415
    from remediator.actions.eligible import minutes as to_minutes  # noqa: PLC0415
    from remediator.findings.roles import PRIVILEGED_ROLES, role_guid  # noqa: PLC0415

    steps = [(p.name, step.params) for p in playbooks for step in p.steps if step.action == "rbac.make-eligible"]
    if not steps:
        return []
    wanted = sorted({g for _, params in steps for g in params.role_ids()})  # type: ignore[attr-defined]
    checks: list[Check] = []
    for sub in scopes(playbooks, visible):
        name = f"pim role settings (/subscriptions/{sub})"
        try:
            listed = _get(executor.clients, sub, f"/subscriptions/{sub}/providers/{POLICIES}", ELIGIBILITY_API)
        except Exception as e:
            why = f"cannot read PIM role settings: {arm_error(e)} (PIM needs Microsoft Entra ID P2 or ID Governance; " \
                  "the executor needs Reader)"
            checks.append(Check(name=name, ok=False, message=why))
            continue
        found = {role_guid((d.get("properties") or {}).get("roleDefinitionId")): d
                 for d in reversed(listed.get("value") or []) if isinstance(d, Mapping)}
        lines, problems = [], []
        for guid in wanted:
            role = PRIVILEGED_ROLES.get(guid, guid)
            if guid not in found:
                problems.append(f"{role}: PIM lists no settings")
                continue
            activation, maximum = role_settings(found[guid])
            lines.append(f"{role}: {activation}" + (f", eligible up to {maximum}" if maximum else ""))
            for playbook, params in steps:
                duration = str(getattr(params, "duration", ""))
                named = guid in params.role_ids()  # type: ignore[attr-defined]
                if named and maximum and to_minutes(duration) > to_minutes(maximum):
                    problems.append(f"{playbook}: duration {duration} is longer than {role}'s eligibility maximum "
                                    f"{maximum}")
        checks.append(Check(name=name, ok=not problems, message="; ".join(problems or lines)))
    return checks


def check_log_destinations(settings: Settings, playbooks: PlaybookSet, executor: Identity,
                           broker: Identity | None) -> list[Check]:
    """The diagnostic-settings fixes' destinations: set, and usable for each write. ARM checks the right to use
    a destination as a linked scope of the write; the fix asks a grant there (``EnableDiagnosticLogs.grants``):
    with ``pim-assign`` the broker must be able to grant at the destination, with ``standing`` the executor
    must hold the right there itself."""
    from remediator.actions.diagnostics import (  # noqa: PLC0415
        DESTINATION_SETTINGS,
        EVENT_HUB_RULE_SETTING,
        LINKED_OPERATIONS,
        EnableDiagnosticLogs,
        event_hub_namespace,
    )

    steps = [(p.name, step) for p in playbooks for step in p.steps if step.action == EnableDiagnosticLogs.name]
    if not steps:
        return []
    roles = dict(EnableDiagnosticLogs.destination_roles)
    configured = [(name, str(getattr(settings, name))) for name in roles if getattr(settings, name)]
    configured = [(n, event_hub_namespace(v) if n == EVENT_HUB_RULE_SETTING else v) for n, v in configured]
    waiting: dict[str, list[str]] = {}  # an unset setting -> the playbooks that refuse until it is set
    for playbook, step in steps:
        for destination in getattr(step.params, "destinations", None) or []:
            for name in DESTINATION_SETTINGS[destination]:
                if not getattr(settings, name):
                    waiting.setdefault(name, []).append(playbook)
    if not configured:
        return [Check(name="log destination", ok=False, message=(
            "set REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID (a Log Analytics workspace id) or "
            "REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID: without either every diagnostic-settings plan is refused"))]
    checks: list[Check] = []
    for name, dest in configured:
        if settings.elevation == "pim-assign" and broker is not None:
            checks.append(_can(broker, dest, list(BROKER_ACTIONS), fix=(
                f"extend its Role Based Access Control Administrator assignment to cover it: every diagnostic-"
                f"setting write grants the executor {roles[name].name} there (a linked scope of the write)")))
        elif settings.elevation == "standing":
            checks.append(_can(executor, dest, [LINKED_OPERATIONS[name]], fix=(
                f"assign it {roles[name].name} there: ARM checks this on the destination of every diagnostic-"
                "setting write (a linked scope)")))
    if waiting:  # a deployment's choice (an archive, a SIEM stream), not a fault: said, not failed
        checks.append(Check(name="log destination", ok=True, message="not set, so these playbooks refuse: " + "; ".join(
            f"REMEDIATOR_{name.upper()} ({', '.join(sorted(set(names)))})" for name, names in sorted(waiting.items()))))
    return checks


def _can(identity: Identity, scope: str, operations: Sequence[str], *, fix: str) -> Check:
    name = f"roles ({identity.name}, {scope})"
    try:
        body = _get(identity.clients, ids.parse(scope).subscription_id or "",
                    f"{scope}/providers/Microsoft.Authorization/permissions", PERMISSIONS_API)
    except Exception as e:
        return Check(name=name, ok=False, message=f"cannot read its permissions: {arm_error(e)}")
    missing = [op for op in operations if not _allows(body.get("value") or [], op)]
    if missing:
        return Check(name=name, ok=False, message=f"may not {', '.join(missing)}: {fix}")
    return Check(name=name, ok=True, message=f"may {', '.join(operations)}")


def _eligible(identity: Identity, scope: str, roles: Mapping[str, str], principal: str) -> Check:
    name = f"roles ({identity.name}, {scope})"
    try:
        body = _get(identity.clients, ids.parse(scope).subscription_id or "",
                    f"{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?$filter=asTarget()",
                    ELIGIBILITY_API)
    except Exception as e:
        return Check(name=name, ok=False, message=f"cannot read its PIM eligibility: {arm_error(e)}")
    have = {str((i.get("properties") or {}).get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
            for i in body.get("value") or [] if ids.is_under(scope, str((i.get("properties") or {}).get("scope", "")))}
    missing = [f"{n} ({r})" for r, n in roles.items() if r.lower() not in have]
    if missing:
        return Check(name=name, ok=False, message=f"not eligible for {', '.join(missing)}: make {principal or 'it'} "
                                                  "eligible in PIM at the subscription")
    return Check(name=name, ok=True, message=f"eligible for {', '.join(roles.values())}")


def _holds(identity: Identity, scope: str, roles: Mapping[str, str], principal: str | None) -> Check:
    name = f"roles ({identity.name}, {scope})"
    if not principal:
        return Check(name=name, ok=False, message="set REMEDIATOR_EXECUTOR_PRINCIPAL_ID to check its roles")
    sub = ids.parse(scope).subscription_id or ""
    try:
        assigned = identity.clients.authorization(sub).role_assignments.list_for_scope(
            scope=scope, filter=f"principalId eq '{principal}'")
        have = {str(a.role_definition_id).rsplit("/", 1)[-1].lower() for a in assigned
                if ids.is_under(scope, str(a.scope))}
    except Exception as e:
        return Check(name=name, ok=False, message=f"cannot list its role assignments: {arm_error(e)}")
    missing = [f"{n} ({r})" for r, n in roles.items() if r.lower() not in have]
    if missing:
        return Check(name=name, ok=False, message=f"elevation is standing but it lacks {', '.join(missing)}")
    return Check(name=name, ok=True, message=f"holds {', '.join(roles.values())} (standing privilege)")


def directory_permissions(playbooks: PlaybookSet) -> dict[str, list[str]]:
    """Microsoft Graph application permission → the playbooks whose actions need it."""
    out: dict[str, list[str]] = {}
    for playbook in playbooks:
        for step in playbook.steps:
            action = REGISTRY.get(step.action)
            for permission in action.directory_permissions if action is not None else ():
                names = out.setdefault(permission, [])
                if playbook.name not in names:
                    names.append(playbook.name)
    return out


def check_directory_permissions(settings: Settings, playbooks: PlaybookSet, executor: Identity) -> list[Check]:
    """The executor holds every Microsoft Graph application permission the playbooks' actions need (check 10)."""
    from remediator.azure.approles import graph_service_principal  # noqa: PLC0415
    from remediator.findings.approles import PERMISSION_IDS  # noqa: PLC0415

    needed = directory_permissions(playbooks)
    if not needed:
        return []
    name = "application permissions (executor)"
    principal = settings.executor_principal_id
    if not principal:
        return [Check(name=name, ok=False, message="set REMEDIATOR_EXECUTOR_PRINCIPAL_ID to check its Microsoft Graph "
                                                   "application permissions")]
    try:
        graph = executor.clients.msgraph()
        graph_sp = str(graph_service_principal(graph)["id"]).lower()
        held = {str(a.get("appRoleId") or "").lower() for a in graph.app_role_assignments(principal)
                if str(a.get("resourceId") or "").lower() == graph_sp}
    except RemediatorError as e:
        return [Check(name=name, ok=False, message=f"cannot read them through Microsoft Graph: {error_line(e)}")]
    missing = [p for p in needed if PERMISSION_IDS.get(p.lower(), p.lower()) not in held]
    if missing:
        users = sorted({n for p in missing for n in needed[p]})
        return [Check(name=name, ok=False, message=f"{principal} lacks the Microsoft Graph application permission"
                      f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} that {', '.join(users)} need"
                      f"{'s' if len(users) == 1 else ''}: grant it with admin consent (docs/deploy.md, "
                      "\"Application permissions\"); PIM cannot grant it")]
    return [Check(name=name, ok=True, message=f"holds {', '.join(needed)} (Microsoft Graph, standing: PIM does not "
                                              "apply to application permissions)")]


def check_private_link(settings: Settings, executor: Identity, broker: Identity | None) -> list[Check]:
    """Each subnet of ``private_link_subnets`` and zone of ``private_dns_zones`` exists (the executor reads
    it) and, with pim-assign, the broker may grant on it (the permissions API at that resource): the
    private endpoint fix grants there (``remediator.actions.private_link``)."""
    from remediator.azure.reader import LiveState  # noqa: PLC0415

    link = settings.private_link()
    if link is None:
        return []
    reader = LiveState(executor.clients)
    checks: list[Check] = []
    targets = [*(("subnet", f"private_link_subnets.{k}", v) for k, v in link.subnets.items()),
               *(("zone", f"private_dns_zones.{k}", v) for k, v in link.zones.items())]
    for what, key, rid in targets:
        name = f"private link ({key})"
        try:
            found = reader.get(rid) is not None
        except Exception as e:
            checks.append(Check(name=name, ok=False, message=f"cannot read {rid}: {arm_error(e)}"))
            continue
        if not found:
            checks.append(Check(name=name, ok=False, message=f"{rid} not found (or not readable by the executor): "
                                                             f"fix the {what} id in the settings"))
            continue
        if settings.elevation == "pim-assign" and broker is not None:
            can = _can(broker, rid, list(BROKER_ACTIONS), fix=f"the broker cannot grant on this {what}; extend its "
                                                              "Role Based Access Control Administrator assignment "
                                                              "to cover it")
            checks.append(Check(name=name, ok=can.ok, message=f"{what} exists; broker {can.message}"))
        else:
            checks.append(Check(name=name, ok=True, message=f"{what} exists"))
    return checks


# -- all of it -------------------------------------------------------------------------------


def identities(settings: Settings, executor: Any, broker: Any | None) -> tuple[Identity, Identity | None]:
    ex = Identity(name="executor", clients=executor)
    br = Identity(name="broker", clients=broker) if settings.elevation == "pim-assign" and broker is not None \
        else None
    return ex, br


def check_names(settings: Settings, directory: Any | None) -> Check:
    """Whether Microsoft Graph names principals: the executor's object id looked up (``directory``: a
    ``remediator.azure.directory.DirectoryClient`` acting as the executor; None: names are off)."""
    from remediator.errors import NamesUnavailable  # noqa: PLC0415

    if directory is None:
        why = "graph_endpoint is off" if settings.graph_endpoint == "off" else \
            f"no Microsoft Graph endpoint is known for {settings.arm_endpoint}; set graph_endpoint to name them"
        return Check(name="names", ok=True, message=f"principals are shown by object id only ({why})")
    if not settings.executor_principal_id:
        return Check(name="names", ok=False, message="not checked: set executor_principal_id (the id looked up)")
    try:
        found = directory.get_by_ids([settings.executor_principal_id])
    except NamesUnavailable as e:
        return Check(name="names", ok=False, message=f"{error_line(e)}; messages show object ids until this is fixed")
    me = found.get(settings.executor_principal_id.lower())
    if me is None or not me.display_name:
        return Check(name="names", ok=False, message=(
            f"Microsoft Graph at {directory.endpoint} does not name the executor {settings.executor_principal_id}: "
            "check executor_principal_id, and that the executor holds Directory.Read.All (application permission)"))
    return Check(name="names", ok=True, message=f"Microsoft Graph at {directory.endpoint} names principals "
                                                f"(the executor is {one_line(me.display_name, 80)})")


def preflight(settings: Settings, *, store: Callable[[], list[Check]], playbooks: Callable[[], tuple[Check, Any]],
              slack: Callable[[Settings], list[Check]] | None, executor: Any, broker: Any | None,
              directory: Callable[[Settings], Any | None] | None = None) -> list[Check]:
    """Every check after the settings': playbooks, store, Slack, ARM, roles; names when ``directory``
    (settings → the executor's Graph client, or None when names are off) is given."""
    checks: list[Check] = []
    pb_check, loaded = playbooks()
    checks.append(pb_check)
    if loaded is not None:
        checks.append(check_approver_roles(settings, loaded))
    checks.extend(store())
    if slack is not None:
        checks.extend(slack(settings))
    ex, br = identities(settings, executor, broker)
    if settings.elevation == "pim-assign" and br is None:
        checks.append(Check(name="arm (broker)", ok=False, message="no broker identity configured "
                                                                   "(REMEDIATOR_BROKER_CLIENT_ID)"))
    arm_checks, seen = check_arm(settings, [i for i in (ex, br) if i is not None])
    checks.extend(arm_checks)
    if loaded is None:
        checks.append(Check(name="roles", ok=False, message="not checked: the playbooks did not load"))
    elif "executor" not in seen:
        checks.append(Check(name="roles", ok=False, message="not checked: ARM did not answer the executor"))
    else:
        checks.extend(check_roles(settings, loaded, ex, br if br is not None and br.name in seen else None,
                                  seen["executor"]))
        checks.extend(by_subscription(check_defender_plans(loaded, ex, seen["executor"]),
                                      check_exports(settings, ex, seen["executor"])))
        checks.extend(check_pim_settings(loaded, ex, seen["executor"]))
        checks.extend(check_log_destinations(settings, loaded, ex, br if br is not None and br.name in seen else None))
        checks.extend(check_custom_roles(settings, loaded, ex, seen["executor"]))
    if loaded is not None:
        checks.extend(check_directory_permissions(settings, loaded, ex))
    if "executor" in seen:
        checks.extend(check_private_link(settings, ex, br if br is not None and br.name in seen else None))
    if directory is not None:
        checks.append(check_names(settings, directory(settings)))
    return checks


def run_all(read: Callable[[], Loaded], *, open_store: Callable[[str], Any],
            load_playbooks: Callable[[Any], PlaybookSet], slack: Callable[[Settings], list[Check]] | None,
            identities: Callable[[Settings], tuple[Any, Any | None]],
            directory: Callable[[Settings], Any | None] | None = None) -> list[Check]:
    """``remediator doctor``: the settings (``read``: ``remediator.config.settings.read_settings`` bound to
    the environment and file), then every other check on what could be read, so one run names every
    problem. ``identities(settings)`` gives the executor's and broker's ``ArmClients``, ``directory(settings)``
    the executor's Microsoft Graph client (None: names off)."""
    checks, settings = check_settings(read)
    if settings is None:
        return checks
    executor, broker = identities(settings)
    return checks + preflight(settings, playbooks=lambda: check_playbooks(settings, load_playbooks),
                              store=lambda: check_store(settings, open_store), slack=slack,
                              executor=executor, broker=broker, directory=directory)


def deployment_preflight(settings: Settings, *, store: Any, playbooks: PlaybookSet, executor: Any,
                         broker: Any | None) -> Preflight:
    """``/remediate doctor``'s checks on a running deployment, for its engine (``Engine(preflight=…)``):
    the playbooks it loaded, the store it uses (left open), the ARM identities and roles, and the
    Slack side's checks the bot adds (``slack``)."""

    def run(*, slack: SlackChecks | None) -> PreflightReport:
        checks = preflight(
            settings, playbooks=lambda: (Check(name="playbooks", ok=bool(len(playbooks)),
                                               message=f"{len(playbooks)} loaded"), playbooks),
            store=lambda: check_store(settings, lambda _url: store, close=False),
            slack=None if slack is None else (lambda s: list(slack(s))), executor=executor, broker=broker)
        return PreflightReport(passed=passed(checks), failed=tuple(c.name for c in checks if not c.ok),
                               text=render(checks))

    return run
