"""Short forms for the terminal: a change on one line, a request's label, the trail per remediation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from remediator.app.briefs import WIDTH, change_line, label, result_line, short_name, trail_lines
from remediator.lifecycle.model import AuditEvent, Remediation
from remediator.planning.result import Result

SUB = "/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
DISK = f"{SUB}/resourceGroups/rg-ai/providers/Microsoft.Compute/disks/llm-weights"
RULE = f"{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-jump/securityRules/AllowRDP"
ASSIGNMENT = f"{SUB}/providers/Microsoft.Authorization/roleAssignments/b7e1c3a5-2d4f-4e6a-8b0c-1d2e3f4a5b6c"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def remediation(*, id: str, playbook: str, resource_id: str) -> Remediation:
    return Remediation(id=id, dedup_key=f"{playbook}|{resource_id}", finding_id="f1", finding={}, playbook=playbook,
                       risk="high", resource_id=resource_id, subscription_id=None, state="pending_approval",
                       changes=(), fingerprint=None, created_at=NOW, updated_at=NOW)


def test_names_a_person_reads() -> None:
    assert short_name(DISK) == "llm-weights"
    assert short_name(f"{SUB}/resourceGroups/rg-web") == "resource group rg-web"
    assert short_name(SUB) == "subscription 3f5e6c1a…"


def test_an_update_shows_what_it_writes_without_the_properties_prefix() -> None:
    change = {"action": "keyvault.enable-purge-protection", "resource_id": DISK, "operation": "update",
              "before": {"properties": {"a": True}}, "after": {"properties": {"a": False, "b": 90}}}
    assert change_line(change) == "  ~ llm-weights: a: true -> false; b: (not set) -> 90"


def test_a_delete_and_an_invoke_say_what_goes_in_words() -> None:
    delete = {"resource_id": RULE, "operation": "delete", "before": {"name": "AllowRDP", "properties": {"x": 1}},
              "after": None, "note": "nsg-jump/AllowRDP: delete (Allow Tcp 3389 from Internet)"}
    assert change_line(delete) == "  - nsg-jump/AllowRDP: delete (Allow Tcp 3389 from Internet)"
    invoke = {"resource_id": f"{DISK}/endGetAccess", "operation": "invoke", "before": {"properties": {}},
              "after": {}, "note": "end the active export of disk llm-weights"}
    assert change_line(invoke) == "  ! llm-weights/endGetAccess: end the active export of disk llm-weights"
    revoke = {"resource_id": ASSIGNMENT, "operation": "delete", "before": {}, "after": None, "note": "revoke Owner"}
    assert change_line(revoke) == "  - b7e1c3a5…: revoke Owner"  # a GUID name, shortened


def test_a_long_or_hostile_line_is_cut_and_defused() -> None:
    change = {"resource_id": RULE, "operation": "delete", "before": {}, "after": None,
              "note": "evil \x1b[31mred\x07 " + "x" * 300}
    line = change_line(change)
    assert len(line) == WIDTH
    assert line.endswith("…")
    assert "\x1b" not in line
    assert "\x07" not in line


def test_a_label_and_a_dry_run_line() -> None:
    rem = remediation(id="8Aygqtp0dX70Woi4jNd05w", playbook="nsg-close-management-ports", resource_id=RULE)
    assert label(rem) == "8Aygqtp0 nsg-close-management-ports AllowRDP"
    result = Result(finding={"kind": "alert", "type": "X", "resource_id": DISK}, playbook="p", outcome="exempt",
                    reason="tag remediation-exempt")
    assert result_line(result).split() == ["=", "llm-weights", "p", "exempt:", "tag", "remediation-exempt"]


def _event(rid: str | None, event: str, actor: str = "worker", **detail: Any) -> AuditEvent:
    return AuditEvent(remediation_id=rid, event=event, actor=actor, at=NOW, detail=detail)


def test_the_trail_reads_per_remediation_and_per_write_in_the_order_recorded() -> None:
    rem = remediation(id="AAAAAAAAbbbbbbbbcccccc", playbook="disk-stop-public-export", resource_id=DISK)
    events = [
        _event(rem.id, "approval_requested", "defender"),
        _event(rem.id, "approval_recorded", "slack:U1"),
        _event(rem.id, "approved", "slack:U2"),
        _event(rem.id, "applying"),
        _event(rem.id, "grant_requested", request_id="req-1"),
        _event(rem.id, "elevated", role="Avere Contributor", scope=DISK),
        _event(rem.id, "change_applied", operation="invoke", resource_id=f"{DISK}/endGetAccess"),
        _event(rem.id, "released", status="Revoked"),
        _event(rem.id, "change_verified", resource_id=DISK),
        _event(rem.id, "elevated", role="Reader", scope=f"{SUB}/resourceGroups/rg-ai"),
        _event(rem.id, "change_applied", operation="update", resource_id=DISK),
        _event(rem.id, "released"),
        _event(rem.id, "change_verified", resource_id=DISK),
        _event(rem.id, "applied"),
        _event(rem.id, "grant_requested", request_id="req-3"),  # a later request PIM never answered
        _event(None, "anchor", "system"),
    ]
    assert trail_lines(events, {rem.id: rem}) == [
        "  AAAAAAAA disk-stop-public-export llm-weights: asked → U1 approved → U2 approved → applying → applied",
        "      granted Avere Contributor → invoke llm-weights/endGetAccess → released → verified",
        "      granted Reader on resource group rg-ai → update llm-weights → released → verified",
        "      grant requested (req-3)",
    ]
