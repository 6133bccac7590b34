"""Evidence report generation for 100,000 audit records: ``remediator report`` (HTML, with the
``audit verify`` pass over every record) against a SQLite store holding 10,000 remediations of ten
audit records each (opened, approved, elevated, released, applied, verified, … as the worker writes
them; a mix of outcomes and severities over one quarter).

The store is built once (``--store`` keeps it), then ``remediator report --period 2026-Q3 --format
html`` runs as a fresh CLI process, spawned from a minimal launcher that waits for it with
``os.wait4``: wall time and the child's own peak RSS (``ru_maxrss``). The baseline in the same run is
``remediator audit --output json`` over the same store (reading and printing every record, nothing
computed). Targets: report <= 10 s and peak RSS <= 300 MiB.

    python benchmarks/bench_report.py                 # 100,000 records, 3 runs
    python benchmarks/bench_report.py --records 20000 --repeat 1 --json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import REPO_ROOT, emit, ensure_repo_on_path, load_average, median, run_once, table, verdict

ensure_repo_on_path()

EVENTS_PER_REMEDIATION = 10
T0 = datetime(2026, 7, 1, tzinfo=UTC)
PLAYBOOKS = ("storage-disable-public-blob-access", "storage-restrict-network-access", "nsg-close-management-ports",
             "acr-disable-admin-user", "rbac-revoke-excess-permissions")
SEVERITIES = ("High", "Medium", "Low", "Critical")


def build_store(path: Path, records: int) -> None:
    from remediator.lifecycle.model import ApprovalVote, AuditEvent, Remediation
    from remediator.store import SQLiteStore

    n = records // EVENTS_PER_REMEDIATION
    with SQLiteStore(path) as store:
        for start in range(0, n, 500):
            with store.batch():
                for i in range(start, min(n, start + 500)):
                    at = T0 + timedelta(minutes=13 * i)
                    playbook = PLAYBOOKS[i % len(PLAYBOOKS)]
                    rid = f"bench{i:017d}"
                    resource = (f"/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-{i % 40}/"
                                f"providers/Microsoft.Storage/storageAccounts/acct{i}")
                    state = ("applied", "applied", "applied", "rejected", "failed", "pending_approval")[i % 6]
                    props = {"allowBlobPublicAccess": True, "minimumTlsVersion": "TLS1_2",
                             "networkAcls": {"defaultAction": "Allow", "ipRules": []}}
                    before = {"id": resource, "properties": props}
                    change = {"action": "storage.disable-public-blob-access", "resource_id": resource,
                              "operation": "update", "before": before,
                              "after": {**before, "properties": {**props, "allowBlobPublicAccess": False}},
                              "note": ""}
                    vote = ApprovalVote(user_id=f"U0MEMBER{i % 60:03d}", team_id="T0TEAM00001", enterprise_id=None,
                                        at=at + timedelta(minutes=20),
                                        decision="reject" if state == "rejected" else "approve",
                                        reason="not now" if state == "rejected" else "")
                    store.create(Remediation(
                        id=rid, dedup_key=f"{playbook}|{resource.lower()}", finding_id=f"finding-{i}",
                        finding={"id": f"finding-{i}", "kind": "recommendation", "type": "51fd8bb1",
                                 "title": "Storage account public access should be disallowed",
                                 "severity": SEVERITIES[i % 4], "resource_id": resource,
                                 "resource_type": "Microsoft.Storage/storageAccounts"},
                        playbook=playbook, risk="medium", resource_id=resource,
                        subscription_id="3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41", state=state,  # type: ignore[arg-type]
                        changes=[change], fingerprint=f"sha256:{i:064x}", approvers=("S0614TZR7",), quorum=1,
                        votes=(vote,), created_at=at, updated_at=at, expires_at=at + timedelta(hours=4)))
                    base = {"playbook": playbook, "finding_id": f"finding-{i}", "resource_id": resource}
                    events: list[tuple[str, str, dict[str, Any]]] = [
                        ("approval_requested", "defender", {**base, "changes": 1, "reason": "1 change planned",
                                                            "controls": ["MCSB NS-2", "GDPR Art.32"],
                                                            "received_at": at.isoformat()}),
                        ("approved", "slack:U0MEMBER001", {"approvals": 1, "quorum": 1, "user_id": vote.user_id}),
                        ("applying", "worker", {"changes": 1, "elevation": "pim-assign"}),
                        ("elevated", "worker", {"strategy": "pim-assign", "role": "Storage Account Contributor",
                                                "scope": resource, "request_id": f"{i:08x}-0000-4000-8000-000000000000",
                                                "status": "Provisioned", "duration": "PT5M"}),
                        ("change_applied", "worker", {"action": "storage.disable-public-blob-access",
                                                      "resource_id": resource}),
                        ("released", "worker", {"strategy": "pim-assign", "scope": resource, "status": "Revoked"}),
                        ("change_verified", "worker", {"resource_id": resource}),
                        ("applied" if state == "applied" else state, "worker", {"reason": "applied and verified"}),
                        ("update_posted", "worker", {}), ("reply_posted", "worker", {})]
                    for j, (event, actor, detail) in enumerate(events[:EVENTS_PER_REMEDIATION]):
                        store.audit(AuditEvent(remediation_id=rid, event=event, actor=actor,
                                               at=at + timedelta(minutes=20 + 3 * j), detail=detail))
        store.anchor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", type=Path, help="keep the generated store here (reused when it exists)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    store = args.store or Path(tmp.name) / "bench.db"
    if not store.exists():
        build_store(store, args.records)
    out = Path(tmp.name) / "report.html"
    cli = [sys.executable, "-m", "remediator"]
    report_argv = [*cli, "report", "--period", "2026-Q3", "--format", "html", "--out", str(out), "--store", str(store)]
    baseline_argv = [*cli, "audit", "--output", "json", "--store", str(store)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    runs = [run_once(report_argv, env=env) for _ in range(args.repeat)]
    base = [run_once(baseline_argv, env=env) for _ in range(args.repeat)]
    wall = median([r.wall_s for r in runs])
    rss = max(r.maxrss_kib for r in runs) / 1024
    base_wall = median([b.wall_s for b in base])
    ok = all(r.returncode == 0 for r in runs)
    result = {"records": args.records, "report_wall_s": round(wall, 2), "report_peak_rss_mib": round(rss, 1),
              "baseline_audit_json_wall_s": round(base_wall, 2),
              "baseline_peak_rss_mib": round(max(b.maxrss_kib for b in base) / 1024, 1),
              "ratio_to_baseline": round(wall / base_wall, 2) if base_wall else None,
              "html_bytes": out.stat().st_size if out.exists() else 0, "exit_codes": [r.returncode for r in runs],
              "load_average": load_average(),
              "wall_target_s": 10, "rss_target_mib": 300,
              "verdict": verdict(ok and wall <= 10 and rss <= 300)}

    def show(r: dict[str, Any]) -> None:
        print(table(["what", "figure", "target", "verdict"], [
            [f"remediator report (HTML, {r['records']:,} audit records)", f"{r['report_wall_s']} s", "<= 10 s",
             verdict(r["report_wall_s"] <= 10)],
            ["same, peak RSS (fresh process)", f"{r['report_peak_rss_mib']} MiB", "<= 300 MiB",
             verdict(r["report_peak_rss_mib"] <= 300)],
            ["baseline: remediator audit --output json", f"{r['baseline_audit_json_wall_s']} s "
             f"({r['baseline_peak_rss_mib']} MiB)", "", f"report = {r['ratio_to_baseline']}x"]]))

    code = emit(result, as_json=args.json, print_text=show)
    tmp.cleanup()
    return code if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
