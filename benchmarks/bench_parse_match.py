"""Throughput of the ingest path on a realistic continuous-export batch: parse, then match playbooks.

The batch is NDJSON, one Event Hub event per line, as Defender for Cloud's continuous export
sends it (no ``records`` wrapper, as in the Event Hub captures in tests/fixtures/defender/, whose
sources tests/fixtures/SOURCES.md names). It is
built from the real payloads in ``tests/fixtures/defender/``, with a seeded RNG giving every event
its own ``SystemAlertId`` / assessment id and resource, so the same seed always gives the same
bytes:

* PascalCase export alerts (templates: the grafana 2025 and Sumo Logic 2024 payloads), with alert
  types of the four families on matching resources, a few simulated ones, upper-cased ids;
* export assessments (template: the Sumo Logic message) for the shipped playbooks' assessment keys
  and others, ``Unhealthy`` / ``Healthy`` / ``NotApplicable``, some ``Delete`` actions;
* export sub-assessments, in both the 2023 PascalCase ``$type`` shape (elastic) and the 2025
  camelCase shape (grafana).

Three figures, each the median of ``--repeat`` timed passes after ``--warmup`` untimed ones
(``time.perf_counter``; the best pass is shown too; passes interleaved, ``gc.collect()`` before each):

a) ``json.loads`` of every line: the floor any parser pays, the baseline for the ratios;
b) ``remediator.findings.parse.parse_bytes`` of the whole batch;
c) (b) plus ``PlaybookSet.match(finding, {})`` for every finding against the shipped playbooks.

Rates are in records per second, a record being what ``parse_bytes`` returns for one event
(``Finding`` or ``Ignored``): every record is work the ingest path has to do, whether or not it
turns out to be actionable. The target is >= 15,000 records/s for (c) with every shipped playbook loaded
(issue 20: matching is indexed by key, so more playbooks cost nothing per record), printed as PASS or MISS; it
does not change the exit status. Peak memory of one parse of the batch is taken with tracemalloc
in a separate pass (tracing slows Python down, so it never overlaps the timings).

    python benchmarks/bench_parse_match.py                    # 10,000 events, 5 repeats
    python benchmarks/bench_parse_match.py --events 200 --repeat 1 --json
    python benchmarks/bench_parse_match.py --write-batch /tmp/batch.ndjson
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import FIXTURES, SHIPPED_PLAYBOOKS, ensure_repo_on_path, load_average, median, table, verdict

ensure_repo_on_path()

TARGET_RECORDS_PER_S = 15000.0
DEFAULT_SEED = 20261128

Json = dict[str, Any]

# What the batch is made of (weights), and for each family the resource it lands on.
KIND_WEIGHTS = {"alert": 30, "assessment": 55, "sub-assessment": 15}
# (alert type, resource kind, display name, severity, weight)
ALERT_TYPES: list[tuple[str, str, str, str, int]] = [
    (
        "Storage.Blob_OpenACL",
        "storage",
        "Publicly accessible storage containers have been exposed",
        "Low",
        10,
    ),
    ("Storage.Blob_AnonymousAccessAnomaly", "storage", "Anonymous access to a storage account", "Medium", 6),
    (
        "Storage.Blob_OpenContainersScanning.SuccessfulDiscovery",
        "storage",
        "Publicly accessible storage containers successfully discovered",
        "Medium",
        4,
    ),
    ("SSH_Incoming_BF_OneToOne", "vm", "Failed SSH brute force attack", "Medium", 8),
    (
        "RDP_Incoming_BF_ManyToOne",
        "vm",
        "Suspicious incoming RDP network activity from multiple sources",
        "Medium",
        5,
    ),
    (
        "ARM_AnomalousRBACRoleAssignment",
        "subscription",
        "Suspicious Azure role assignment detected",
        "Medium",
        5,
    ),
    (
        "ARM_AnomalousServiceOperation.CredentialAccess",  # e.g. listCredentials on a registry
        "acr",
        "Suspicious invocation of a high-risk 'Credential Access' operation by a service principal detected",
        "Medium",
        4,
    ),
    (
        "K8S_AdmissionController",
        "aks",
        "Creation of admission webhook configuration detected",
        "Informational",
        4,
    ),
    (
        "SIMULATED_KV_ListGetAnomaly",
        "keyvault",
        "[SAMPLE ALERT] Suspicious secret listing and query in a Key Vault",
        "Medium",
        2,
    ),
]
# (assessment key, resource kind, display name, severity, weight)
ASSESSMENT_KEYS: list[tuple[str, str, str, str, int]] = [
    (
        "51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6",
        "storage",
        "Storage account public access should be disallowed",
        "Medium",
        12,
    ),
    (
        "45d313c3-3fca-5040-035f-d61928366d31",
        "storage",
        "Access to storage accounts with firewall and virtual network configurations should be restricted",
        "Low",
        10,
    ),
    (
        "bc303248-3d14-44c2-96a0-55f5c326b5fe",
        "vm",
        "Management ports should be closed on your virtual machines",
        "Medium",
        12,
    ),
    (
        "9b828565-a0ed-61c2-6bf3-1afc99a9b2ca",
        "acr",
        "Container registries should not allow unrestricted network access",
        "Medium",
        6,
    ),
    (
        "1c5de8e1-f68d-6a17-e0d2-ec259c42768c",
        "storage",
        "Secure transfer to storage accounts should be enabled",
        "High",
        4,
    ),
    (
        "483f12ed-ae23-447e-a2de-a67a10db4353",
        "vm",
        "Internet-facing virtual machines should be protected with network security groups",
        "High",
        4,
    ),
    (
        "1f655fb7-63ca-4980-91a3-56dbc2b715c6",
        "vm",
        "Vulnerabilities in security configuration on your Linux machines should be remediated "
        "(powered by Guest Configuration)",
        "Low",
        6,
    ),
]
STATUS_WEIGHTS = {"Unhealthy": 60, "Healthy": 30, "NotApplicable": 10}
PROVIDERS = {
    "storage": ("Microsoft.Storage", "storageAccounts", "st"),
    "vm": ("Microsoft.Compute", "virtualMachines", "vm-"),
    "acr": ("Microsoft.ContainerRegistry", "registries", "acr"),
    "aks": ("Microsoft.ContainerService", "managedClusters", "aks-"),
    "keyvault": ("Microsoft.KeyVault", "vaults", "kv-"),
}
RESOURCE_GROUPS = [
    "rg-prod-web",
    "rg-prod-data",
    "rg-shared-net",
    "rg-dev-apps",
    "rg-ml",
    "rg-ops",
    "rg-legacy",
]


def _load(name: str, line: int | None = None) -> Json:
    path = FIXTURES / name
    if line is None:
        doc: Json = json.loads(path.read_text(encoding="utf-8"))
    else:
        doc = json.loads(path.read_text(encoding="utf-8").splitlines()[line - 1])
    return doc


@dataclass(frozen=True)
class Templates:
    alerts: list[Json]
    assessment: Json
    sub_pascal: Json
    sub_camel: Json
    sub_identity: Json

    @classmethod
    def from_fixtures(cls) -> Templates:
        return cls(
            alerts=[
                _load("grafana-azure_eventhub_to_loki__tests__issue_19_sample_1.json"),
                _load("sumologic-docs__microsoft-defender-for-cloud.md__eventhub_alert_K8S_AdmissionController.json"),
            ],
            assessment=_load(
                "sumologic-docs__microsoft-defender-for-cloud.md__eventhub_recommendation_NotApplicable.json"
            ),
            sub_pascal=_load("elastic-integrations__microsoft_defender_cloud__event__test-alert.log.ndjson", line=4),
            sub_camel=_load("grafana-azure_eventhub_to_loki__tests__issue_19_sample_2.json"),
            sub_identity=_load(
                "elastic-integrations__microsoft_defender_cloud__assessment__test-assessment.log__"
                "line6_disabled_owner_accounts_with_subassessment.json"
            )["properties"]["additionalData"]["subAssessment"],
        )


class BatchBuilder:
    """Deterministic event factory: the same seed and count always give the same NDJSON bytes."""

    def __init__(self, seed: int, templates: Templates) -> None:
        self.rng = random.Random(seed)
        self.t = templates
        self.subscriptions = [self._uuid() for _ in range(12)]
        self.tenant = self._uuid()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _pick(self, weights: dict[str, int]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def _timestamp(self) -> str:
        day, secs = self.rng.randint(1, 27), self.rng.randint(0, 86399)
        fraction = self.rng.randint(0, 9999999)
        return f"2026-11-{day:02d}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{fraction:07d}Z"

    def resource(self, kind: str) -> tuple[str, str, str]:
        """(ARM id, subscription id, resource name) for a fresh resource of ``kind``."""
        sub = self.rng.choice(self.subscriptions)
        if kind == "subscription":
            return f"/subscriptions/{sub}", sub, sub
        namespace, rtype, prefix = PROVIDERS[kind]
        name = f"{prefix}{self.rng.getrandbits(40):010x}"
        rg = self.rng.choice(RESOURCE_GROUPS)
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{rtype}/{name}", sub, name

    def event(self) -> Json:
        kind = self._pick(KIND_WEIGHTS)
        if kind == "alert":
            return self.alert()
        if kind == "assessment":
            return self.assessment()
        return self.sub_assessment()

    def alert(self) -> Json:
        alert_type, rkind, title, severity, _ = self.rng.choices(ALERT_TYPES, weights=[a[4] for a in ALERT_TYPES])[0]
        doc = copy.deepcopy(self.rng.choice(self.t.alerts))
        rid, sub, name = self.resource(rkind)
        shown = (
            rid.replace("/subscriptions/", "/SUBSCRIPTIONS/").replace("/resourceGroups/", "/RESOURCEGROUPS/")
            if self.rng.random() < 0.4
            else rid
        )  # export upper-cases ids about half the time (§5.2)
        alert_id = self._uuid()
        doc.update(
            {
                "AlertType": alert_type,
                "AlertDisplayName": title,
                "Severity": severity,
                "SystemAlertId": f"{self.rng.randint(2517000000000000000, 2517999999999999999)}_{alert_id}"
                if self.rng.random() < 0.5
                else alert_id,
                "AzureResourceId": shown,
                "CompromisedEntity": name,
                "StartTimeUtc": self._timestamp(),
                "TimeGenerated": self._timestamp(),
            }
        )
        if not alert_type.startswith("SIMULATED_"):
            doc["Description"] = f"{title} on {name}."
        ext = doc.get("ExtendedProperties")
        if isinstance(ext, dict):
            ext["EffectiveAzureResourceId"] = rid
            ext["EffectiveSubscriptionId"] = sub
            ext["CompromisedEntity"] = name
            if rkind == "storage":
                ext["Container"] = f"public-{self.rng.randint(1, 999)}"
        for entity in doc.get("Entities") or []:
            target = entity.get("CloudResource", entity) if isinstance(entity, dict) else None
            if isinstance(target, dict) and "ResourceId" in target:
                target["ResourceId"] = rid
                target["ResourceName"] = name
        return doc

    def assessment(self) -> Json:
        key, rkind, title, severity, _ = self.rng.choices(ASSESSMENT_KEYS, weights=[a[4] for a in ASSESSMENT_KEYS])[0]
        doc = copy.deepcopy(self.t.assessment)
        rid, _, name = self.resource(rkind)
        code = self._pick(STATUS_WEIGHTS)
        action = "Delete" if self.rng.random() < 0.1 else self.rng.choice(["Insert", "Write"])
        for enrichment in ("assessmentEventDataEnrichment", "securityEventDataEnrichment"):
            doc[enrichment]["action"] = action
        doc["tenantId"] = self.tenant
        doc["id"] = f"{rid}/providers/Microsoft.Security/assessments/{key}"
        doc["name"] = key
        props = doc["properties"]
        namespace, rtype, _ = PROVIDERS[rkind]
        props["resourceDetails"] = {
            "source": "Azure",
            "id": rid,
            "resourceName": name,
            "resourceType": rtype,
            "resourceProvider": namespace,
            "nativeResourceId": rid,
        }
        props["displayName"] = title
        status: Json = {
            "code": code,
            "statusChangeDate": self._timestamp(),
            "firstEvaluationDate": self._timestamp(),
        }
        if code == "NotApplicable":
            status.update(cause="OffByPolicy", description="Disabled by policy")
        elif key.startswith("bc303248") and code == "Unhealthy":
            status.update(cause="ManagementPortsAreOpenToAllSources", description="Management ports are open")
        props["status"] = status
        props["additionalData"] = (
            {"NSG open ports": self.rng.choice(["22", "3389", "22, 3389"])} if key.startswith("bc303248") else {}
        )
        props["metadata"] = {
            **props["metadata"],
            "displayName": title,
            "severity": severity,
            "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/" + self._uuid(),
        }
        props["links"] = {
            "azurePortal": "portal.azure.com/#blade/Microsoft_Azure_Security/RecommendationsBlade/"
            f"assessmentKey/{key}/resourceId/{rid.replace('/', '%2f')}"
        }
        return doc

    def sub_assessment(self) -> Json:
        roll = self.rng.random()
        if roll < 0.3:
            return self.identity_sub_assessment()
        if roll < 0.65:
            rid, _, _ = self.resource("vm")
            doc, sub_id = self._sub_doc(self.t.sub_pascal, rid, "c476dc48-8110-4139-91af-c8d940896b98", pascal=True)
            props = doc["Properties"]
            props["Id"] = sub_id
            props["ResourceDetails"]["Id"] = rid
            props["Status"]["Code"] = self._pick(STATUS_WEIGHTS)
            props["Status"]["Severity"] = self.rng.choice(["High", "Medium", "Low"])
            props["TimeGenerated"] = self._timestamp()
            action = "Delete" if self.rng.random() < 0.2 else "Insert"
            for enrichment in ("SubAssessmentEventDataEnrichment", "SecurityEventDataEnrichment"):
                doc[enrichment]["Action"] = action
            return doc
        rid, _, name = self.resource("aks")
        doc, _ = self._sub_doc(self.t.sub_camel, rid, "c609cf0f-71ab-41e9-a3c6-9a1f7fe1b8d5", pascal=False)
        props = doc["properties"]
        code = self.rng.choice(["Unhealthy", "NotApplicable", "Healthy"])
        if code == "NotApplicable":  # the template's own status: an image that was not scanned
            props["status"] = {**props["status"], "code": code}
        else:
            severity = self.rng.choice(["High", "Medium", "Low"]) if code == "Unhealthy" else "Unknown"
            props["status"] = {"code": code, "severity": severity}
        props["resourceDetails"].update(
            nativeResourceId=rid,
            resourceName=name,
            id=f"{self.rng.getrandbits(32):08x}.azurecr.io/app/svc@sha256:{self.rng.getrandbits(256):064x}",
        )
        props["additionalData"]["clusterDetails"] = {"clusterResourceId": rid, "clusterName": name}
        props["timeGenerated"] = self._timestamp()
        return doc

    def _sub_doc(self, template: Json, rid: str, assessment_key: str, *, pascal: bool) -> tuple[Json, str]:
        """A copy of a sub-assessment template re-homed under ``rid`` with a fresh id (PascalCase keys
        for the continuous-export shape, camelCase for ARM's)."""
        doc, sub_id = copy.deepcopy(template), self._uuid()
        tenant, id_key, name_key = ("TenantId", "Id", "Name") if pascal else ("tenantId", "id", "name")
        doc[tenant] = self.tenant
        doc[id_key] = f"{rid}/providers/Microsoft.Security/assessments/{assessment_key}/subassessments/{sub_id}"
        doc[name_key] = sub_id
        return doc, sub_id

    def identity_sub_assessment(self) -> Json:
        """An identity finding ("blocked accounts with owner permissions"): the principal is in the id.

        The 2025 export shape (camelCase, enrichment block) around the sub-assessment that the
        elastic fixture embeds; the anonymised key there is replaced by the real one (§3).
        """
        key = "050ac097-3dda-4d24-ab6d-82568e7a50cf"
        doc = copy.deepcopy(self.t.sub_identity)
        rid, sub, _ = self.resource("subscription")
        principal = self._uuid()
        action = "Delete" if self.rng.random() < 0.1 else "Insert"
        enrichment = {"action": action, "apiVersion": "2020-01-01", "isSnapshot": False}
        doc = {
            "subAssessmentEventDataEnrichment": enrichment,
            "securityEventDataEnrichment": dict(enrichment),
            "tenantId": self.tenant,
            **doc,
        }
        doc["id"] = f"{rid}/providers/Microsoft.Security/assessments/{key}/subassessments/{principal}"
        doc["name"] = principal
        props = doc["properties"]
        props["status"] = {"code": self.rng.choice(["Unhealthy", "Unhealthy", "Healthy"]), "severity": "High"}
        props["timeGenerated"] = self._timestamp()
        props["resourceDetails"] = {
            **props["resourceDetails"],
            "NativeResourceId": rid,
            "id": f"/subscriptions/{sub}/identities/{principal}",
        }
        return doc

    def batch(self, events: int) -> bytes:
        lines = [json.dumps(self.event(), separators=(",", ":"), ensure_ascii=False) for _ in range(events)]
        return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: list[float]
    records: int

    @property
    def median_s(self) -> float:
        return median(self.seconds)

    @property
    def rate(self) -> float:
        return self.records / self.median_s

    @property
    def best_rate(self) -> float:
        return self.records / min(self.seconds)


def time_all(passes: list[tuple[str, Callable[[], int]]], *, repeat: int, warmup: int) -> list[Timing]:
    """Time each pass ``repeat`` times, interleaved (a, b, c, a, b, c, ...) so that a noisy
    neighbour slows all of them alike; a full collection before each pass, so that one pass's
    garbage is not collected on the next one's clock (the collector stays on during the pass)."""
    for _ in range(warmup):
        for _, fn in passes:
            fn()
    seconds: dict[str, list[float]] = {name: [] for name, _ in passes}
    records: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in passes:
            gc.collect()
            start = time.perf_counter()
            records[name] = fn()
            seconds[name].append(time.perf_counter() - start)
    return [Timing(name=name, seconds=seconds[name], records=records[name]) for name, _ in passes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000, help="events in the batch (default 10,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per figure (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes first (default 1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    parser.add_argument("--playbooks", type=Path, default=SHIPPED_PLAYBOOKS, help="playbooks folder")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--write-batch", type=Path, metavar="PATH", help="also save the NDJSON batch there")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    load_start = load_average()
    if args.events < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--events and --repeat must be >= 1, --warmup >= 0")

    from remediator.findings.model import Finding
    from remediator.findings.parse import parse_bytes
    from remediator.playbooks import load_playbooks

    data = BatchBuilder(args.seed, Templates.from_fixtures()).batch(args.events)
    if args.write_batch:
        args.write_batch.write_bytes(data)
    playbooks = load_playbooks(args.playbooks)

    def loads_only() -> int:
        return sum(1 for line in data.splitlines() if json.loads(line) is not None)

    def parse_only() -> int:
        return len(parse_bytes(data, source="bench"))

    def parse_and_match() -> int:
        records = parse_bytes(data, source="bench")
        for r in records:
            if isinstance(r, Finding):
                playbooks.match(r, {})
        return len(records)

    timings = time_all(
        [
            ("a) json.loads per line", loads_only),
            ("b) parse_bytes", parse_only),
            ("c) parse_bytes + match", parse_and_match),
        ],
        repeat=args.repeat,
        warmup=args.warmup,
    )

    # What the batch turned into (one untimed pass).
    records = parse_bytes(data, source="bench")
    findings = [r for r in records if isinstance(r, Finding)]
    matched = Counter(p.name for p in (playbooks.match(f, {}) for f in findings) if p is not None)
    composition = {
        "events": args.events,
        "bytes": len(data),
        "records": len(records),
        "findings": len(findings),
        "ignored": len(records) - len(findings),
        "matched": sum(matched.values()),
        "matched_by_playbook": dict(sorted(matched.items())),
        "findings_by_kind": dict(Counter(f.kind for f in findings)),
    }
    peak_kib = None
    if not args.no_tracemalloc:
        tracemalloc.start()
        parse_bytes(data, source="bench")
        peak_kib = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()

    base = timings[0].median_s
    target = timings[2].rate
    result: dict[str, Any] = {
        "benchmark": "parse_match",
        "python": sys.version.split()[0],
        "load_average_1m": {"start": load_start, "end": load_average()},
        "seed": args.seed,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "playbooks": len(playbooks),
        "batch": composition,
        "timings": {
            t.name: {
                "seconds": [round(s, 6) for s in t.seconds],
                "median_s": round(t.median_s, 6),
                "records_per_s": round(t.rate, 1),
                "best_records_per_s": round(t.best_rate, 1),
                "x_json_loads": round(t.median_s / base, 2),
            }
            for t in timings
        },
        "parse_peak_tracemalloc_kib": None if peak_kib is None else round(peak_kib, 1),
        "target": {
            "records_per_s_min": TARGET_RECORDS_PER_S,
            "measured": round(target, 1),
            "verdict": verdict(target >= TARGET_RECORDS_PER_S),
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0

    mib = len(data) / 2**20
    print(
        f"Batch: {args.events:,} events, {mib:.1f} MiB NDJSON (seed {args.seed}) -> "
        f"{len(records):,} records: {len(findings):,} findings ({composition['findings_by_kind']}), "
        f"{composition['ignored']:,} ignored; "
        f"{composition['matched']:,} matched a playbook {composition['matched_by_playbook']}"
    )
    loads = result["load_average_1m"]
    print(
        f"Median of {args.repeat} passes after {args.warmup} warm-up; load average {loads['start']} -> {loads['end']}\n"
    )
    print(
        table(
            ["pass", "median ms", "records/s (median)", "records/s (best)", "x json.loads time"],
            [[t.name, t.median_s * 1000, t.rate, t.best_rate, t.median_s / base] for t in timings],
        )
    )
    if peak_kib is not None:
        print(f"\nparse_bytes peak traced memory: {peak_kib / 1024:.1f} MiB ({peak_kib / 1024 / mib:.1f}x the batch)")
    print(
        f"\nc) parse + match: {target:,.0f} records/s (target >= {TARGET_RECORDS_PER_S:,.0f})  "
        f"{verdict(target >= TARGET_RECORDS_PER_S)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
