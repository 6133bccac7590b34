"""Defender for AI services alerts: their evidence, read in one place, and the prompt text they may carry.

The alert types are Microsoft's "Alerts for AI services" reference
(``MicrosoftDocs/defender-docs:articles/defender-for-cloud/alerts-ai-workloads.md@0a2c7c1``): every one
starts ``AI.Azure_`` (or ``AI.`` for the model scanner). They arrive in the shapes every Defender alert
does (``remediator.findings.parse``: ARM ``properties``, the PascalCase continuous-export / Logic App
object, the Log Analytics ``SecurityAlert`` row), so the generic parser reads them; this module reads
what the AI responses need out of the parsed finding: the AI services account, the model deployment,
the caller's IP address and user agent, and the account key that was used.

Where the evidence is. Defender names the attacked resource in ``resourceIdentifiers`` /
``AzureResourceId`` / ``EffectiveAzureResourceId`` (the account, or a deployment under it), the
caller's address in an ``ip`` entity (``address``) and the rest in ``ExtendedProperties``, whose
values are always strings (``Record<string>`` in the alert API's TypeSpec). Microsoft publishes no
sample of an AI alert's extended properties, so the names below are the ones the portal shows
("Model deployment name", "Client IP address", "User agent", "Key name"…) and close variants, matched
case-insensitively; a value found nowhere is ``None`` and the action that needs it says so.

Prompt and completion text. With the plan's "prompt evidence" extension on (``AIPromptEvidence`` on
``Microsoft.Security/pricings/AI``), Defender puts the suspicious segment of the user prompt or the
model response into the alert. That text can be the very data this project keeps in (a customer's
record, a model's system prompt, a secret the model leaked), so it is never copied: at parse time,
before the finding is stored, deduplicated, planned, logged or shown, every extended property,
entity field and raw field of an AI alert whose name says it holds prompt or response text
(:data:`PROMPT_FIELD`) is replaced by :data:`WITHHELD` and a count of characters; :func:`evidence`
then says that such text exists and where to read it (the alert in Defender for Cloud).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from remediator import _json, ids
from remediator.errors import one_line

__all__ = [
    "ACCOUNT_TYPE",
    "DEPLOYMENT_TYPE",
    "MAX_VALUE",
    "PROMPT_FIELD",
    "WITHHELD",
    "AiEvidence",
    "evidence",
    "evidence_of",
    "is_ai_alert",
    "withhold",
]

ACCOUNT_TYPE = "microsoft.cognitiveservices/accounts"
DEPLOYMENT_TYPE = "microsoft.cognitiveservices/accounts/deployments"
MAX_VALUE = 200
"""Evidence values are one line of at most this many characters (an attacker writes the user agent)."""
WITHHELD = "[withheld by remediator: prompt or completion text"
"""How a withheld value starts (then `` (N characters); read it on the alert in Defender for Cloud]``)."""
PROMPT_FIELD = re.compile(
    r"prompt|completion|model response|response (segment|text|content)|user (input|message)|"
    r"message content|conversation|grounding|suspicious segment", re.IGNORECASE)
"""A field of an AI alert whose name says it carries prompt or response text."""

_DEPLOYMENT_KEYS = ("model deployment name", "deployment name", "model deployment", "deploymentname",
                    "azure openai deployment", "ai model deployment", "deployment")
_IP_KEYS = ("client ip address", "caller ip address", "client ip", "source ip address", "ip address",
            "suspicious ip address", "attacker ip address", "ipaddress")
_AGENT_KEYS = ("user agent", "client user agent", "suspicious user agent", "useragent", "user-agent")
_KEY_KEYS = ("key name", "key used", "access key name", "access key", "api key name", "authentication key",
             "keyname")
_KEY_VALUE = re.compile(r"^\s*(?:key\s*)?([12])\s*$|^\s*(primary|secondary)(?:\s*key)?\s*$", re.IGNORECASE)
KeyName = Literal["Key1", "Key2"]


def is_ai_alert(alert_type: str) -> bool:
    """Whether ``alert_type`` is one of Defender's AI services alerts (``AI.…``)."""
    return alert_type.strip().lower().startswith("ai.")


def _withheld(value: object) -> str:
    size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    return f"{WITHHELD} ({size} characters); read it on the alert in Defender for Cloud]"


def _scrub(value: Any) -> Any:
    """A copy with every prompt-text field withheld (keys kept: the reader learns the text exists)."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            name = str(k)
            if PROMPT_FIELD.search(name) and v not in (None, ""):
                out[k] = _withheld(v)
            elif isinstance(v, str) and name.lower() in ("extendedproperties", "entities") \
                    and v.lstrip()[:1] in ("{", "["):
                out[k] = _scrub_json_text(v)  # the Log Analytics row keeps these as JSON text
            else:
                out[k] = _scrub(v)
        return out
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _scrub_json_text(text: str) -> str:
    try:
        decoded = _json.loads(text)
    except ValueError:
        return text if not PROMPT_FIELD.search(text) else _withheld(text)
    return json.dumps(_scrub(decoded), ensure_ascii=False, separators=(",", ":"))


def withhold(ext: Mapping[str, str], entities: tuple[Mapping[str, Any], ...], raw: Mapping[str, Any]
             ) -> tuple[dict[str, str], tuple[dict[str, Any], ...], dict[str, Any]]:
    """The extended properties, entities and raw record of an AI alert with prompt text withheld."""
    clean_ext = {k: (_withheld(v) if PROMPT_FIELD.search(k) and v else v) for k, v in ext.items()}
    clean_entities = tuple(_scrub(e) for e in entities)
    clean_raw = _scrub(raw)
    return clean_ext, clean_entities, clean_raw


def alert_link(raw: Mapping[str, Any]) -> str:
    """The alert's portal link (``alertUri``/``AlertUri``/``AlertLink``) when it is one (an ``https``
    link into the Azure portal; anything else is dropped, never shown as a link)."""
    lk = _json.lower_keys(raw)
    props = lk.get("properties")
    plk = _json.lower_keys(props) if isinstance(props, Mapping) else {}
    for m in (lk, plk):
        for key in ("alerturi", "alertlink"):
            link = _portal_link(m.get(key))
            if link:
                return link
    return ""


def _portal_link(value: object) -> str:
    """``value`` when it is an ``https`` link into the Azure portal (public or sovereign) of sane length
    with no whitespace or Slack markup characters; else ``""``."""
    if not isinstance(value, str):
        return ""
    link = value.strip()
    if re.match(r"^https://portal\.azure\.(com|us|cn)/", link) and len(link) <= 2000 \
            and not re.search(r"[\s<>|]", link):
        return link
    return ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AiEvidence:
    """What an AI alert says about the attack, each value one capped line (``None``: not in the alert).

    Values are evidence, never instructions: they are shown escaped and compared, never run, looked up
    or written anywhere but the audit trail and the chat."""

    account: str | None
    deployment: str | None
    caller_ip: str | None
    user_agent: str | None
    key: KeyName | None
    withheld: tuple[str, ...]
    alert: str
    link: str = ""

    @property
    def deployment_id(self) -> str | None:
        """``<account>/deployments/<deployment>``, when both are known."""
        if self.account and self.deployment and "/" not in self.deployment:
            return f"{self.account}/deployments/{self.deployment}"
        return None

    @property
    def caller_ip_valid(self) -> bool:
        try:
            ipaddress.ip_address((self.caller_ip or "").strip())
        except ValueError:
            return False
        return True

    def lines(self) -> list[str]:
        """The evidence, a line each, for a message or the audit trail."""
        out = [f"{label}: {value}" for label, value in (
            ("account", ids.parse(self.account).name if self.account else None), ("deployment", self.deployment),
            ("caller IP", self.caller_ip), ("user agent", self.user_agent), ("key used", self.key)) if value]
        if self.withheld:
            where = self.link or f"Defender for Cloud > Security alerts, alert {self.alert}"
            out.append(f"prompt or completion text: the alert carries it ({', '.join(self.withheld)}); remediator "
                       f"withheld it and copies it nowhere; read it on the alert: {where}")
        return out

    def as_audit(self) -> dict[str, str]:
        """The evidence as audit fields (strings only; prompt text never among them)."""
        fields = {"account": self.account, "deployment": self.deployment, "caller_ip": self.caller_ip,
                  "user_agent": self.user_agent, "key_used": self.key,
                  "prompt_text": ("withheld: " + ", ".join(self.withheld)) if self.withheld else None,
                  "alert_link": self.link or None}
        return {k: v for k, v in fields.items() if v}


def _cap(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip() or value.startswith(WITHHELD):
        return None
    return one_line(value.strip(), MAX_VALUE)


def _first(ext: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        found = _cap(ext.get(key))
        if found:
            return found
    return None


def _entity_values(entities: tuple[Mapping[str, Any], ...], etype: str, field: str) -> list[str]:
    out = []
    for e in entities:
        lk = _json.lower_keys(e)
        if str(lk.get("type", "")).lower() == etype:
            value = _cap(lk.get(field))
            if value:
                out.append(value)
    return out


def _key_name(value: str | None) -> KeyName | None:
    m = _KEY_VALUE.match(value or "")
    if m is None:
        return None
    if m[1]:
        return "Key1" if m[1] == "1" else "Key2"
    return "Key1" if m[2].lower() == "primary" else "Key2"


def evidence_of(finding: Mapping[str, Any]) -> AiEvidence | None:
    """The evidence of a stored finding document (``lifecycle.codec.finding_to_json``) when it is an AI alert."""
    if finding.get("kind") != "alert" or not is_ai_alert(str(finding.get("type") or "")):
        return None
    ext = finding.get("extended_properties")
    entities = finding.get("entities")
    return evidence(resource_id=str(finding.get("resource_id") or ""),
                    extended_properties={str(k): v for k, v in ext.items() if isinstance(v, str)}
                    if isinstance(ext, Mapping) else {},
                    entities=tuple(e for e in entities if isinstance(e, Mapping)) if isinstance(entities, list) else (),
                    alert_id=str(finding.get("id") or ""))


def evidence(*, resource_id: str, extended_properties: Mapping[str, str], entities: tuple[Mapping[str, Any], ...],
             alert_id: str) -> AiEvidence:
    """The evidence of an AI alert (see the module docstring); ``resource_id`` is the finding's."""
    ext = {str(k).lower(): v for k, v in extended_properties.items()}
    resources = [resource_id, *_entity_values(entities, "azure-resource", "resourceid"),
                 _cap(ext.get("effectiveazureresourceid")) or ""]
    account: str | None = None
    deployment = _first(ext, _DEPLOYMENT_KEYS)
    for rid in resources:
        parsed = ids.parse(rid or "")
        tkey = ids.type_key(parsed.type or "")
        if tkey == ACCOUNT_TYPE:
            account = account or parsed.id
        elif tkey == DEPLOYMENT_TYPE and parsed.parent() is not None:
            account = account or parsed.parent().id  # type: ignore[union-attr]
            deployment = deployment or parsed.name
    ips = _entity_values(entities, "ip", "address")
    withheld = sorted({k for k, v in ext.items() if isinstance(v, str) and v.startswith(WITHHELD)}
                      | {str(k).lower() for e in entities for k, v in _json.lower_keys(e).items()
                         if isinstance(v, str) and v.startswith(WITHHELD)})
    return AiEvidence(
        account=account, deployment=deployment, caller_ip=_first(ext, _IP_KEYS) or (ips[0] if ips else None),
        user_agent=_first(ext, _AGENT_KEYS), key=_key_name(_first(ext, _KEY_KEYS)), withheld=tuple(withheld),
        alert=one_line(alert_id.removeprefix("alert:"), 120), link=_portal_link(ext.get("alerturi")))
