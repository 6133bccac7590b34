"""The bolt App: Approve/Reject/Undo clicks, the reject-reason modal, digests and ``/remediate``.

``build_app(engine, settings)`` returns an ``App`` for HTTP mode (and Socket Mode) that:

* verifies every request's signature (bolt's ``RequestVerification``; 401 otherwise) and makes no
  network call to start: ``authorize=`` returns a static ``AuthorizeResult`` from the settings,
  so there is no ``auth.test`` here. The settings must name the workspace (``slack_team_id``: the
  entry points learn it from ``auth.test`` first, ``bot.workspace.learn_workspace``); without it
  ``build_app`` refuses, since every request's workspace check would be open;
* runs with ``process_before_response=True``: each listener runs to completion before the HTTP
  answer, so it only does fast work: the engine's decision (a compare-and-set plus an enqueued
  job, never ARM), at most one Slack call on the acknowledgement client (short timeout, no
  rate-limit retries), and the answer. Applying happens on the worker.
* identifies the clicker from the signed payload only (``user.id``, ``user.team_id``,
  ``enterprise.id``), refuses users of another workspace or organisation before asking the
  engine, and answers any refusal with an ephemeral message (or modal errors), never with an
  HTTP error that would show Slack's generic failure.

Button values are opaque remediation ids; everything else is read from the engine.

Listeners (action ids from ``bot.blocks``):

==========================  =====================================================================
``remediator.approve``      ``engine.approve`` → update the message in place (``chat.update``)
``remediator.reject``       open the reason modal (``views.open`` in the ack: trigger_id lives 3 s)
reject modal submission     ``engine.reject`` with the reason → close the modal, update the message
``remediator.undo``         ``engine.request_undo`` (a new remediation, asked for approval)
``remediator.show_plan``    the full plan in a modal
``remediator.digest_*``     approve every pending member of a digest message / list them
``/remediate``              ``list``, ``status ID``, ``pause``, ``resume``, ``report [period]``, ``doctor``,
                            ``help``
==========================  =====================================================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.kwargs_injection import Args
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient

from bot import blocks
from bot.chat import DigestIndex, StoreDigestIndex, ack_client, message_ref
from remediator import ids
from remediator.errors import ConfigError
from remediator.lifecycle.applying import grants_alive
from remediator.lifecycle.approval import Actor, Decision, Need, org_reason
from remediator.lifecycle.model import AuditEvent, Remediation
from remediator.lifecycle.naming import names_for
from remediator.lifecycle.text import Text
from remediator.planning.names import naming
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.config.settings import Settings

log = logging.getLogger("bot.app")

COMMAND = "/remediate"
LIST_MAX = 20
DIGEST_SCAN_MAX = 100_000
T = TypeVar("T")

HELP = (
    "*{cmd}* — remediations waiting for approval\n"
    "• `{cmd} list` pending approvals\n"
    "• `{cmd} status` waiting, paused, quarantined; `{cmd} status ID` one remediation: state, plan, votes\n"
    "• `{cmd} pause` stop all applying and auto-remediation (admins)\n"
    "• `{cmd} resume` start again (admins)\n"
    "• `{cmd} doctor` preflight: settings, store, Slack, ARM and roles (admins)\n"
    "• `{cmd} report [period]` evidence summary: `q3`, `2026-Q3`, `last 30d`, `2026-07-01..2026-09-30`\n"
    "• `{cmd} help` this text"
)
FAILED = "Something went wrong and nothing was recorded. Try again in a moment; if it persists, check the logs."


DOCTOR_LINE_MAX = 400  # one check's line in the Slack reply (remediator doctor prints it whole)
DOCTOR_BUDGET = 2_700  # of a reply's 3,000 characters (blocks.FALLBACK_TEXT_MAX): the fence, the title, escaping


def _middle(line: str, limit: int) -> str:
    """``line`` within ``limit`` characters, cut in the middle: a check's head says what it checked and its
    tail what to do about it (``…: assign it Reader at the subscription``)."""
    if len(line) <= limit:
        return line
    head = limit * 2 // 3
    return f"{line[:head]} … {line[len(line) - (limit - head - 3):]}"


def _fit_checks(text: str, budget: int = DOCTOR_BUDGET) -> str:
    """The preflight's lines within ``budget``: every problem (FAIL) and the verdict (the last line) always;
    ``ok`` lines as they fit, the rest counted on one line that names the command printing them all.
    Cut at the end instead, a long estate lost the verdict and the problems after the cut."""
    lines = text.rstrip("\n").splitlines()
    if len(text) <= budget or len(lines) < 2:
        return text
    # a line naming every operation a role lacks runs to thousands of characters: its head says what to do
    lines = [_middle(line, DOCTOR_LINE_MAX) for line in lines]
    *checks, verdict = lines
    room = budget - sum(len(line) + 1 for line in (*checks, verdict) if not line.startswith("ok")) - 80
    shown: list[str] = []
    more = 0
    for line in checks:  # in the preflight's order
        if not line.startswith("ok"):
            shown.append(line)
        elif more or room - len(line) - 1 < 0:
            more += 1
        else:
            shown.append(line)
            room -= len(line) + 1
    tail = [f"ok    … and {more} more passed checks (remediator doctor prints every one)"] if more else []
    return "\n".join([*shown, *tail, verdict])


class ApprovalEngine(Protocol):
    """What the Slack side needs from ``remediator.lifecycle.engine.Engine``."""

    def approve(self, remediation_id: str, actor: Actor) -> Decision: ...
    def reject(self, remediation_id: str, actor: Actor, reason: str) -> Decision: ...
    def request_undo(self, remediation_id: str, actor: Actor) -> Decision: ...
    def approve_digest(self, remediation_ids: Sequence[str], actor: Actor) -> Decision: ...
    def pause(self, actor: Actor) -> Decision: ...
    def resume(self, actor: Actor) -> Decision: ...
    def paused(self) -> bool: ...
    def get(self, remediation_id: str) -> Remediation | None: ...
    def pending(self) -> list[Remediation]: ...
    def requirement(self, remediation: Remediation) -> Need: ...
    def audit_trail(self, remediation_id: str | None = None) -> list[AuditEvent]: ...


def actor_of(body: Mapping[str, Any]) -> Actor:
    """Who acted, from the signed payload: interactions carry ``user``/``team``/``enterprise``
    objects, slash commands flat ``user_id``/``team_id``/``enterprise_id`` fields.

    ``context.team_id`` is deliberately not used: it names the installation, not the clicker
    (a Slack Connect user of another organisation clicks in our workspace).
    """
    if isinstance(body.get("user"), Mapping):
        user: Mapping[str, Any] = body["user"]
        team, enterprise = _obj(body, "team"), _obj(body, "enterprise")
        return Actor(
            user_id=str(user.get("id") or ""),
            team_id=_str(user.get("team_id")) or _str(team.get("id")),
            enterprise_id=_str(enterprise.get("id")) or _str(team.get("enterprise_id")),
            name=str(user.get("username") or user.get("name") or ""),
        )
    return Actor(
        user_id=str(body.get("user_id") or ""),
        team_id=_str(body.get("team_id")),
        enterprise_id=_str(body.get("enterprise_id")),
        name=str(body.get("user_name") or ""),
    )


def _obj(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    return value if isinstance(value, Mapping) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def org_refusal(actor: Actor, settings: Settings) -> str | None:
    """Why this actor may not act at all (no user, another workspace or organisation); None if they may.

    The same rule as the engine's ``same_org`` requirement, applied here to every interaction
    (also read-only ones such as ``/remediate list`` or "Show full plan").
    """
    if not actor.user_id:
        return "Slack did not say who you are; nothing was recorded"
    return org_reason(actor, settings)


def static_authorize(settings: Settings, token: str | None) -> Callable[..., AuthorizeResult]:
    """``authorize=`` for a single workspace: the configured ids and token, without ``auth.test``."""
    result = AuthorizeResult(enterprise_id=settings.slack_enterprise_id or None,
                             team_id=settings.slack_team_id or None, bot_token=token)

    def authorize() -> AuthorizeResult:
        return result

    return authorize


def build_app(engine: ApprovalEngine, settings: Settings, *, client: WebClient | None = None,
              digests: DigestIndex | None = None, name: str = "remediator") -> App:
    """The bolt App for HTTP mode (``bot.http``) and Socket Mode (``bot.socket``).

    ``client`` is the acknowledgement-path Web API client (default ``ack_client(settings)``:
    short timeout, no retries); its ``base_url``, ``timeout`` and retry handlers carry over to the
    per-request clients bolt builds, its token (or the settings' one) is the bot token.
    ``digests`` finds a digest's members (default: ``StoreDigestIndex`` on ``engine.store``, the
    index ``SlackChat`` writes; without one, pending remediations are scanned).
    """
    if not settings.slack_team_id:  # fail closed: an unknown workspace would let any workspace's requests in
        raise ConfigError("the Slack workspace is unknown: learn it from auth.test (bot.workspace.learn_workspace) "
                          "or set REMEDIATOR_SLACK_TEAM_ID")
    base = client or ack_client(settings)
    token = base.token or settings.slack_bot_token or None
    if not settings.slack_signing_secret:
        log.warning("no Slack signing secret configured: every HTTP request will fail its signature check")
    bolt_log = logging.getLogger("bot.bolt")
    if not any(isinstance(f, _NoTokenNotice) for f in bolt_log.filters):
        bolt_log.addFilter(_NoTokenNotice())
    app = App(
        name=name,
        signing_secret=settings.slack_signing_secret or "",
        # token-less clone: the token comes from authorize=, so bolt neither warns nor calls auth.test
        client=WebClient(token=None, base_url=base.base_url, timeout=base.timeout,
                         retry_handlers=list(base.retry_handlers)),
        authorize=static_authorize(settings, token),
        process_before_response=True,
        request_verification_enabled=True,
        logger=bolt_log,
    )
    _quiet_verification_log()
    app.middleware(_refuse_lazy_markers)
    if digests is None:
        store = getattr(engine, "store", None)
        if store is not None and hasattr(store, "get_flag"):
            digests = StoreDigestIndex(store)
    listeners = Listeners(engine, settings, digests)
    app.action(blocks.ACTION_APPROVE)(listeners.approve)
    app.action(blocks.ACTION_REJECT)(listeners.reject)
    app.action(blocks.ACTION_UNDO)(listeners.undo)
    app.action(blocks.ACTION_SHOW_PLAN)(listeners.show_plan)
    app.action(blocks.ACTION_DIGEST_APPROVE)(listeners.digest_approve)
    app.action(blocks.ACTION_DIGEST_LIST)(listeners.digest_list)
    app.view(blocks.CALLBACK_REJECT)(listeners.reject_submitted)
    app.command(getattr(settings, "slack_command", None) or COMMAND)(listeners.command)
    return app


class _NoBodies(logging.Filter):
    """Bolt's ``RequestVerification`` logs a failing request's whole body at INFO: keep the line, drop the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Invalid request signature detected"):
            record.msg, record.args = "Invalid request signature detected (body not logged)", ()
        return True


class _NoTokenNotice(logging.Filter):
    """Bolt's ``App`` reads ``SLACK_BOT_TOKEN`` from the environment when no ``token=`` is given and then,
    given our ``client=``, warns "As you gave client as well, token will be unused." on every start.
    ``build_app`` passes no token on purpose (it comes from ``authorize=``, the same value): drop that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("As you gave `client` as well"))


def _quiet_verification_log() -> None:
    """Install ``_NoBodies`` on bolt's verification logger (once). ``bot.endpoint`` verifies every HTTP
    request before bolt sees it, so this only matters for a caller that dispatches to the App directly."""
    from slack_bolt.middleware.request_verification import RequestVerification  # noqa: PLC0415

    logger = logging.getLogger(f"slack_bolt.{RequestVerification.__name__}")
    if not any(isinstance(f, _NoBodies) for f in logger.filters):
        logger.addFilter(_NoBodies())


def _refuse_lazy_markers(req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
    """No lazy listeners here: a request marked for a lazy re-run did not come from Slack (``bot.http`` strips them)."""
    if req.lazy_only or req.lazy_function_name:
        return BoltResponse(status=400, body={"error": "invalid request"})
    return next()


class Listeners:
    """The listener functions; each takes bolt's typed ``Args`` (no injection by parameter name)."""

    def __init__(self, engine: ApprovalEngine, settings: Settings, digests: DigestIndex | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.digests = digests

    def _naming(self, remediations: Sequence[Remediation]) -> AbstractContextManager[None]:
        """Render inside this: names beside ids from what the engine's name cache holds (never a request:
        these answers are due within Slack's 3 seconds; the worker's messages looked the names up)."""
        return naming(names_for(getattr(self.engine, "names", None), remediations, fetch=False))

    # --- buttons -----------------------------------------------------------------------------

    def _clicker(self, args: Args) -> Actor | None:
        """Acknowledge a button click and return who clicked, or None (after telling them) when
        they belong to another Slack workspace or Enterprise Grid org than the configured one."""
        args.ack()
        actor = actor_of(args.body)
        if refusal := org_refusal(actor, self.settings):
            self._ephemeral(args, refusal)
            return None
        return actor

    def approve(self, args: Args) -> None:
        actor = self._clicker(args)
        if actor is None:
            return
        rid = _value(args)
        decision = self._guard(lambda: self.engine.approve(rid, actor))
        if decision is None or not decision.ok:
            self._ephemeral(args, decision.message if decision else FAILED)
            return
        self._update_in_place(args, rid, decision.remediation)

    def reject(self, args: Args) -> None:
        rem = self._clicked(args, "This remediation does not exist (any more); nothing was recorded.")
        if rem is None:
            return
        if rem.state != "pending_approval":
            self._ephemeral(args, f"This remediation is {rem.state.replace('_', ' ')}; there is nothing to reject.")
            return
        channel, ts = _container(args.body)
        ref = message_ref(rem)
        view = blocks.reject_modal(rem, channel=ref.channel if ref else channel, ts=ref.ts if ref else ts)
        self._open_view(args, view, "the reject reason",
                        "Could not open the reason dialog (Slack allows 3 seconds); click Reject again.")

    def reject_submitted(self, args: Args) -> None:
        view: Mapping[str, Any] = args.view or {}
        actor = actor_of(args.body)
        try:
            meta = json.loads(str(view.get("private_metadata") or "{}"))
        except ValueError:
            meta = {}
        rid = str(meta.get("id") or "") if isinstance(meta, dict) else ""
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get(blocks.REJECT_BLOCK) or {}).get(blocks.REJECT_INPUT) or {}).get("value") or "")
        refusal = org_refusal(actor, self.settings)
        decision = None if refusal else self._guard(lambda: self.engine.reject(rid, actor, reason.strip()))
        if refusal or decision is None or not decision.ok:
            message = refusal or (decision.message if decision else FAILED)
            args.ack(response_action="errors", errors={blocks.REJECT_BLOCK: blocks.clip(blocks.markup(message), 300)})
            return
        args.ack()
        hint = (str(meta.get("channel") or ""), str(meta.get("ts") or "")) if isinstance(meta, dict) else ("", "")
        self._update_in_place(args, rid, decision.remediation, hint=hint)

    def undo(self, args: Args) -> None:
        actor = self._clicker(args)
        if actor is None:
            return
        rid = _value(args)
        decision = self._guard(lambda: self.engine.request_undo(rid, actor))
        self._ephemeral(args, decision.message if decision else FAILED)

    def show_plan(self, args: Args) -> None:
        rem = self._clicked(args, "This remediation does not exist (any more).")
        if rem is None:
            return
        with self._naming([rem]):
            view = blocks.plan_modal(rem)
        self._open_view(args, view, "the full plan",
                        f"Could not open the plan; `{COMMAND} status {rem.id}` shows it too.")

    def _clicked(self, args: Args, missing: str) -> Remediation | None:
        """The remediation a button names, for an authorised clicker; None (answered) otherwise."""
        if self._clicker(args) is None:
            return None
        rid = _value(args)
        rem = self._guard(lambda: self.engine.get(rid))
        if rem is None:
            self._ephemeral(args, missing)
        return rem

    def _open_view(self, args: Args, view: dict[str, Any], what: str, failure: str) -> None:
        try:
            args.client.views_open(trigger_id=str(args.body.get("trigger_id") or ""), view=view)
        except Exception:
            log.exception("views.open for %s failed", what)
            self._ephemeral(args, failure)

    def digest_approve(self, args: Args) -> None:
        actor = self._clicker(args)
        if actor is None:
            return
        members = self._digest_members(args)
        if not members:
            self._ephemeral(args, "Nothing in this digest is waiting for approval any more.")
            return
        decision = self._guard(lambda: self.engine.approve_digest([r.id for r in members], actor))
        if decision is None or not decision.ok:
            self._ephemeral(args, decision.message if decision else FAILED)
            return
        channel, ts = _container(args.body)
        first = members[0]
        parsed = ids.parse(first.resource_id)
        status = (f":white_check_mark: {blocks.esc(blocks.markup(decision.message))}" if decision.message else
                  f":white_check_mark: Approved by {blocks.mention(actor.user_id)}")
        with self._naming(members):
            msg = blocks.digest_message(members, playbook=first.playbook, group=parsed.resource_group or "",
                                        requirement="", status=status)
        if channel and ts:
            try:
                args.client.chat_update(channel=channel, ts=ts, text=msg.text, blocks=msg.blocks, parse="none")
            except Exception:
                log.exception("chat.update of digest %s/%s failed (the worker updates it later)", channel, ts)

    def digest_list(self, args: Args) -> None:
        actor = self._clicker(args)
        if actor is None:
            return
        members = self._digest_members(args, pending_only=False)
        if not members:
            self._ephemeral(args, "This digest has no remediations left to show.")
            return
        with self._naming(members):
            view = blocks.digest_list_modal(members, playbook=members[0].playbook)
        try:
            args.client.views_open(trigger_id=str(args.body.get("trigger_id") or ""), view=view)
        except Exception:
            log.exception("views.open for the digest list failed")
            self._ephemeral(args, f"Could not open the list; `{COMMAND} list` shows pending remediations.")

    # --- /remediate --------------------------------------------------------------------------

    def command(self, args: Args) -> None:
        body = args.body
        text = str((args.command or {}).get("text") or "").strip()
        sub, _, rest = text.partition(" ")
        sub = sub.lower()
        actor = actor_of(body)
        cmd = str(body.get("command") or COMMAND)
        if refusal := org_refusal(actor, self.settings):
            args.ack(text=blocks.notice(refusal), response_type="ephemeral")
            return
        answer: str
        if sub in {"", "help"}:
            answer = HELP.format(cmd=blocks.esc(cmd))
        elif sub == "list":
            answer = self._list()
        elif sub == "status":
            answer = self._status(rest.strip(), cmd)
        elif sub == "report":
            answer = self._report(rest.strip())
        elif sub in {"pause", "resume"}:
            decision = self._guard(lambda: self.engine.pause(actor) if sub == "pause" else self.engine.resume(actor))
            answer = blocks.notice(decision.message if decision else FAILED)
        elif sub == "doctor":
            answer = self._doctor(args, actor)
        else:
            answer = f"Unknown subcommand {blocks.code(sub)}.\n" + HELP.format(cmd=blocks.esc(cmd))
        args.ack(text=blocks.clip(answer, blocks.FALLBACK_TEXT_MAX), response_type="ephemeral")

    def _doctor(self, args: Args, actor: Actor) -> str:
        """The preflight, for admins: the engine's checks plus the Slack ones through this client."""
        run = getattr(self.engine, "doctor", None)
        if run is None:
            return blocks.notice("The preflight is not available here; run `remediator doctor`.")
        from bot.doctor import check_slack  # noqa: PLC0415

        client = args.client
        decision = self._guard(lambda: run(actor, slack=lambda s: check_slack(s, client)))
        if decision is None:
            return blocks.notice(FAILED)
        text = blocks.markup(decision.message)
        if not text.startswith(("ok", "FAIL")):
            return blocks.notice(text)  # refused: not an admin
        fence = "`" * 3
        return f"*Preflight*\n{fence}\n" + blocks.esc(_fit_checks(text)).replace(fence, "'" * 3) + fence

    def _list(self) -> str:
        pending = self._guard(self.engine.pending)
        if pending is None:
            return blocks.notice(FAILED)
        paused = " (remediation is *paused*)" if self._guard(self.engine.paused) else ""
        if not pending:
            return f"Nothing is waiting for approval{paused}."
        lines = [f"*{len(pending)} waiting for approval*{paused}"]
        with self._naming(pending[:LIST_MAX]):
            for rem in pending[:LIST_MAX]:
                where = blocks.resource_link(rem.resource_id)
                lines.append(f"• {blocks.code(rem.id)} {blocks.code(rem.playbook)} on {where}"
                             f": {blocks.esc(blocks.clip(blocks.title_of(rem), 100))}")
        if len(pending) > LIST_MAX:
            lines.append(f"_…and {len(pending) - LIST_MAX} more_")
        return "\n".join(lines)

    def _report(self, text: str) -> str:
        """The period's evidence summary (figures from the store, no finding text) and the command
        that writes the full report."""
        from datetime import UTC, datetime  # noqa: PLC0415

        from remediator.errors import InputError  # noqa: PLC0415
        from remediator.evidence.period import parse_period  # noqa: PLC0415

        now = datetime.now(UTC)
        try:
            period = parse_period(text or "this quarter", now=now)
        except InputError as e:
            return blocks.notice(str(e))
        summary = getattr(self.engine, "evidence_summary", None)
        totals = self._guard(lambda: summary(period)) if summary is not None else None  # the engine's clock
        if totals is None:
            return blocks.notice(FAILED)
        lines = [f"*Evidence {blocks.esc(period.label)}* ({period.first_day} to {period.last_day})"]
        if not totals["findings"] and not totals["remediations"]:
            lines.append("No findings and no remediations in this period.")
        else:
            lines.append(f"{plural(totals['findings'], 'finding')}, {plural(totals['remediations'], 'remediation')}: "
                         f"{totals['auto_applied']} auto-applied, {totals['approved_applied']} approved and applied, "
                         f"{totals['rejected']} rejected, {totals['exempt']} exempt, "
                         f"{totals['stale_reasked'] + totals['stale']} stale, {totals['failed']} failed, "
                         f"{totals['withdrawn']} withdrawn, {totals['open']} still open "
                         f"({totals['overdue']} overdue)")
        problems = totals["integrity_problems"]
        lines.append(":white_check_mark: audit trail complete and unaltered" if not problems else
                     f":warning: audit trail: {plural(problems, 'integrity problem')}; run `remediator audit verify`")
        lines.append(f"Full report: `remediator report {period.cli()} --format html --out "
                     f"evidence-{blocks.esc(period.label.replace(' ', '-'))}.html`")
        return "\n".join(lines)

    def _overview(self, cmd: str) -> str:
        """``status`` without an id: how many wait, whether applying is paused, and the quarantine."""
        pending = self._guard(self.engine.pending)
        paused = self._guard(self.engine.paused)
        count = getattr(self.engine, "quarantined", None)
        quarantined = self._guard(count) if callable(count) else 0
        if pending is None or paused is None or quarantined is None:
            return blocks.notice(FAILED)
        lines = [f"*Status*: {len(pending)} waiting for approval; remediation is "
                 f"{'*paused*' if paused else 'running'}"]
        if quarantined:
            held = plural(quarantined, "stored row or queued message", "stored rows or queued messages")
            lines.append(f":warning: {held} could not be read and were quarantined (the others keep flowing); "
                         "`remediator doctor` counts them")
        lines.append(f"One remediation: `{blocks.esc(cmd)} status ID` (the id is at the bottom of each approval "
                     "message).")
        return "\n".join(lines)

    def _status(self, rid: str, cmd: str) -> str:
        if not rid:
            return self._overview(cmd)
        rem = self._guard(lambda: self.engine.get(rid))
        if rem is None:
            return f"No remediation {blocks.code(rid)}."
        with self._naming([rem]):
            return self._status_text(rem)

    def _status_text(self, rem: Remediation) -> str:
        need = self._guard(lambda: self.engine.requirement(rem))
        status = blocks.status_line(rem) or ":hourglass: Waiting for approval"
        lines = [
            f"*{blocks.esc(blocks.title_of(rem))}*",
            f"{blocks.code(rem.id)} · {blocks.code(rem.playbook)} · {blocks.resource_link(rem.resource_id)}",
            status,
        ]
        req = blocks.requirement_text(rem, blocks.markup(need.text()) if need is not None else "")
        if req:
            lines.append(req)
        if rem.state == "pending_approval" and not rem.announced and rem.posting.get("error"):
            lines.append(f":warning: The approval message is not posted yet ({rem.posting.get('attempts', 0)} "
                         f"attempts; last: {blocks.esc(str(rem.posting['error'])[:200])}); remediator keeps trying "
                         "while the request is pending")
        trail = self._guard(lambda: self.engine.audit_trail(rem.id)) or []
        lines.extend(f":key: {blocks.esc(line)}" for line in grants_alive(trail))
        plan = blocks.plan_lines(rem.changes)
        kept = plan[:15]
        if kept:
            lines.append("```\n" + "\n".join(blocks.esc(line).replace("```", "'''") for line in kept) + "\n```")
        if len(plan) > len(kept):
            lines.append(f"_…{len(plan) - len(kept)} more lines_")
        return "\n".join(lines)

    # --- helpers -----------------------------------------------------------------------------

    def _guard(self, call: Callable[[], T]) -> T | None:
        """Run an engine call; an exception is logged and becomes None (the user sees FAILED)."""
        try:
            return call()
        except Exception:
            log.exception("engine call failed in a Slack listener")
            return None

    def _digest_members(self, args: Args, *, pending_only: bool = True) -> list[Remediation]:
        """The remediations a digest message stands for: those the index lists for it whose stored message is
        the clicked one or who have none stored yet; without the index, the pending ones whose stored message
        is the clicked one.

        "Approve all" takes the pending ones; "Open the list" shows every member the index knows.
        """
        channel, ts = _container(args.body)
        if not channel or not ts:
            return []
        index = self.digests
        indexed = self._guard(lambda: index.members(channel, ts)) if index is not None else None
        found: list[Remediation] = []
        if indexed is not None:
            for rid in indexed:
                rem = self._guard(partial(self.engine.get, rid))
                if rem is not None:
                    found.append(rem)
        else:
            found = self._guard(self._pending_all) or []
        # a member whose message is another one (posted again elsewhere) is not this message's; one the index
        # lists whose ref is not stored yet (the worker records the refs one by one after the post) is
        return [r for r in found if (r.state == "pending_approval" or not pending_only)
                and (((r.message or {}).get("ts") == ts and (r.message or {}).get("channel") == channel)
                     or (indexed is not None and not (r.message or {}).get("ts")))]

    def _pending_all(self) -> list[Remediation]:
        """Every pending remediation: ``Engine.pending()`` caps its list, a storm can hold more."""
        store = getattr(self.engine, "store", None)
        if store is not None and hasattr(store, "list"):
            found: list[Remediation] = store.list(states=("pending_approval",), limit=DIGEST_SCAN_MAX)
            return found
        return self.engine.pending()

    def _update_in_place(self, args: Args, rid: str, rem: Remediation | None,
                         hint: tuple[str, str] = ("", "")) -> None:
        """Re-render the approval message from the freshest state (the worker may already have moved it on)."""
        latest = self._guard(lambda: self.engine.get(rid)) or rem
        if latest is None:
            return
        ref = message_ref(latest)
        channel, ts = (ref.channel, ref.ts) if ref else (hint if all(hint) else _container(args.body))
        if not channel or not ts:
            return
        need = self._guard(lambda: self.engine.requirement(latest))
        msg = blocks.approval_message(latest, blocks.markup(need.text()) if need is not None else "")
        try:
            args.client.chat_update(channel=channel, ts=ts, text=msg.text, blocks=msg.blocks, parse="none")
        except Exception:
            log.exception("chat.update of %s/%s failed (the worker updates it later)", channel, ts)

    def _ephemeral(self, args: Args, text: str | Text) -> None:
        """A reply only the actor sees: ``chat.postEphemeral``, else the payload's ``response_url``."""
        body = args.body
        user = actor_of(body).user_id
        channel, _ = _container(body)
        safe = blocks.notice(text)
        if channel and user:
            try:
                args.client.chat_postEphemeral(channel=channel, user=user, text=safe)
                return
            except Exception:
                log.exception("chat.postEphemeral failed; trying response_url")
        if body.get("response_url"):
            try:
                args.respond(text=safe, response_type="ephemeral", replace_original=False)
            except Exception:
                log.exception("respond() failed; the user sees no reply")


def _value(args: Args) -> str:
    """A button's value, or the chosen option's of a menu (a results digest's "Undo one…")."""
    action: Mapping[str, Any] = args.action or {}
    selected = action.get("selected_option")
    value = selected.get("value") if isinstance(selected, Mapping) else action.get("value")
    return str(value or "")[: blocks.BUTTON_VALUE_MAX]


def _container(body: Mapping[str, Any]) -> tuple[str, str]:
    """(channel, message ts) of the message an interaction came from; ``("", "")`` if none."""
    container, channel_obj, message = _obj(body, "container"), _obj(body, "channel"), _obj(body, "message")
    channel = str(container.get("channel_id") or channel_obj.get("id") or body.get("channel_id") or "")
    ts = str(container.get("message_ts") or message.get("ts") or "")
    return channel, ts
