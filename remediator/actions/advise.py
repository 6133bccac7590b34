"""``alert.send-advice``: an alert that no configuration change answers becomes a message, not a change.

Some Defender alerts have no fix a bot should make: a model that shared a phishing URL, sensitive data
leaving in responses, an anomalous tool invocation. A playbook whose step is ``alert.send-advice`` still
claims them, so they are recorded and seen rather than matching nothing: the plan changes nothing and
carries *advice* instead (``PlanContext.advise``, ``Result.advice``): what the alert is, its evidence
(for AI services alerts, ``remediator.findings.ai``: account, deployment, caller IP, user agent, key
used, and that prompt or completion text exists and where to read it, never the text), and the
playbook's recommended steps. The worker records the advice in the audit trail with the finding and
posts it to the channel once (``ChatPort.post_notice``); ``remediator plan`` prints it as
``# advice:`` lines and ``--output json`` as ``advice``. Nothing is written, so no grant is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from remediator.actions.base import Action, ApplyResult, BuiltinRole, Example, Params, PlanContext, label, register
from remediator.actions.change import Change
from remediator.azure.state import StateReader
from remediator.checks import params as checks
from remediator.errors import ActionError
from remediator.findings import ai

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

STEP_MAX = checks.ADVICE_LINE_MAX
# Reader (acdd72a7-3385-48ef-bd42-f606fba81ae7, general.md): the action writes nothing and asks for no grant;
# named only because every action declares a role.
READER = BuiltinRole("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7")


class AdviseParams(Params):
    steps: list[str] = Field(min_length=1, max_length=12)
    """The recommended human steps, in order, one line each (at most 12, 300 characters each)."""
    summary: str = ""
    """Why no configuration change answers the alert, one line (default: said for you)."""

    _one_line_each = field_validator("steps")(checks.advice_steps)
    _one_line = field_validator("summary")(checks.advice_summary)


@register
class Advise(Action[AdviseParams]):
    """No change: send the alert's evidence and the recommended human steps to the channel, and record them."""

    name = "alert.send-advice"
    summary = "A message with the evidence and the recommended steps; changes nothing"
    resource_types = ("*",)
    # the plan reads the finding's resource (its tags decide the playbook), as every plan does; nothing is written
    permissions = ("Microsoft.Resources/subscriptions/resourceGroups/read",)
    role = READER
    writes_nothing = True
    api_version = ""
    example = Example("Sensitive data leaving through model responses has no configuration answer; tell people.",
                      why="(Preview) Suspicious anomaly detected in sensitive data exposed by an AI resource",
                      alerts=("AI.Azure_SensitiveDataAnomaly",),
                      resource_types=("Microsoft.CognitiveServices/accounts",),
                      risk="low", approval="auto",
                      params="{steps: [Review the responses on the alert in Defender for Cloud, "
                             "Find which grounding data source holds the sensitive data]}")

    def plan(self, ctx: PlanContext, params: AdviseParams) -> list[Change]:
        f = ctx.finding
        why = params.summary or "no configuration change answers this alert; a person decides the response"
        ctx.advise(f"{f.title} ({f.type}, severity {f.severity.label}) on {label(f.resource_id) or f.resource_id}: "
                   f"{why}")
        if ai.is_ai_alert(f.type):
            ev = ai.evidence(resource_id=f.resource_id, extended_properties=f.extended_properties,
                             entities=f.entities, alert_id=f.id)
            for line in ev.lines():
                ctx.advise(f"evidence: {line}")
        else:
            ctx.advise(f"evidence: resource {f.resource_id}")
        for i, step in enumerate(params.steps, 1):
            ctx.advise(f"step {i}: {step}")
        return []

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        raise ActionError("advice writes nothing", action=self.name, resource_id=change.resource_id)

    def verify(self, state: StateReader, change: Change) -> str | None:
        return None
