"""Exemptions: exact ids, globs, "*" playbooks, the expiry day, the tag, and file errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from remediator.errors import ExemptionsError
from remediator.playbooks import exemption_from_tags, load_exemptions, load_playbooks, validate_exemptions

ROOT = Path(__file__).resolve().parents[2]
SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
LEGACY = f"/subscriptions/{SUB}/resourceGroups/rg-legacy/providers/Microsoft.Storage/storageAccounts/legacyweb"
OTHER = f"/subscriptions/{SUB}/resourceGroups/rg-legacy/providers/Microsoft.Storage/storageAccounts/other"

FILE = f"""\
exemptions:
  - resource: {LEGACY}
    playbook: storage-disable-public-blob-access
    owner: alice@example.com
    reason: Public static website until migration (TICKET-123)
    expires: 2027-01-31
  - resource: /subscriptions/*/resourceGroups/RG-LEGACY/*
    playbook: "*"
    owner: platform@example.com
    reason: Being decommissioned (TICKET-9)
    expires: 2026-12-01
"""


@pytest.fixture
def exemptions_file(tmp_path: Path) -> Path:
    path = tmp_path / "exemptions.yaml"
    path.write_text(FILE, encoding="utf-8")
    return path


def test_exact_id_any_casing(exemptions_file: Path) -> None:
    ex = load_exemptions(exemptions_file)
    hit = ex.find(LEGACY.upper() + "/", "storage-disable-public-blob-access", today=date(2026, 12, 5))
    assert hit is not None
    assert hit.owner == "alice@example.com"
    assert hit.line == 2


def test_exact_beats_glob(exemptions_file: Path) -> None:
    hit = load_exemptions(exemptions_file).find(LEGACY, "storage-disable-public-blob-access", today=date(2026, 6, 1))
    assert hit is not None
    assert hit.reason.startswith("Public static website")


def test_glob_and_star_playbook(exemptions_file: Path) -> None:
    ex = load_exemptions(exemptions_file)
    hit = ex.find(OTHER.lower(), "nsg-close-management-ports", today=date(2026, 6, 1))
    assert hit is not None
    assert hit.playbook == "*"
    assert ex.find(OTHER.replace("rg-legacy", "rg-prod"), "nsg-close-management-ports", today=date(2026, 6, 1)) is None


def test_exact_entry_is_only_for_its_playbook(exemptions_file: Path) -> None:
    ex = load_exemptions(exemptions_file)
    # after the glob entry expired, only the exact entry (for one playbook) is left
    assert ex.find(LEGACY, "acr-disable-admin-user", today=date(2026, 12, 1)) is None
    assert ex.find(LEGACY, "storage-disable-public-blob-access", today=date(2026, 12, 1)) is not None


def test_expiry_boundary(exemptions_file: Path) -> None:
    ex = load_exemptions(exemptions_file)
    name = "storage-disable-public-blob-access"
    assert ex.find(LEGACY, name, today=date(2027, 1, 30)) is not None
    assert ex.find(LEGACY, name, today=date(2027, 1, 31)) is None  # on the day: no longer applies
    assert ex.find(LEGACY, name, today=date(2027, 2, 1)) is None
    assert [e.line for e in ex.expired(date(2026, 12, 1))] == [7]
    assert len(ex.expired(date(2027, 1, 31))) == 2


def test_tag_exemption() -> None:
    assert exemption_from_tags({"Remediation-Exempt": "CHG-2291 static site"}) == "CHG-2291 static site"
    assert exemption_from_tags({"REMEDIATION-EXEMPT": ""}) == "remediation-exempt tag set"
    assert exemption_from_tags({"remediation-exempt": "   "}) == "remediation-exempt tag set"
    assert exemption_from_tags({"environment": "prod"}) is None
    assert exemption_from_tags(None) is None


def test_file_errors_have_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("ex.yaml").write_text(
        "exemptions:\n"
        "  - resource: storageAccounts/legacyweb\n"
        "    playbook: Storage_Fix\n"
        "    owner: alice@example.com\n"
        "    expires: 31/01/2027\n"
        "    reson: typo\n",
        encoding="utf-8",
    )
    assert [str(i) for i in validate_exemptions("ex.yaml")] == [
        "ex.yaml:2: exemptions[0].resource: expected an ARM resource id or glob starting with "
        "/subscriptions/, "
        "got 'storageAccounts/legacyweb'",
        "ex.yaml:2: exemptions[0]: missing required key 'reason'",
        "ex.yaml:3: exemptions[0].playbook: expected a playbook name (kebab-case) or '*', got 'Storage_Fix'",
        "ex.yaml:5: exemptions[0].expires: expected a date like 2027-01-31, got '31/01/2027'",
        "ex.yaml:6: exemptions[0].reson: unknown key; did you mean 'reason'?",
    ]
    with pytest.raises(ExemptionsError, match=r"^ex\.yaml:2: exemptions\[0\]\.resource: .* \(and 4 more\)$"):
        load_exemptions("ex.yaml")


def test_duplicate_entries_and_yaml_errors(tmp_path: Path) -> None:
    body = FILE.split("  - resource: /subscriptions/*", maxsplit=1)[0]
    dup = tmp_path / "dup.yaml"
    dup.write_text(body + body.replace("exemptions:\n", "").replace(LEGACY, LEGACY.lower()), encoding="utf-8")
    assert [i.message for i in validate_exemptions(dup)] == ["same resource and playbook as exemptions[0]"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        FILE.replace("    playbook: storage", f"    resource: {OTHER}\n    playbook: storage"),
        encoding="utf-8",
    )
    assert [str(i) for i in validate_exemptions(bad)] == [
        f"{bad.as_posix()}:3: exemptions[0].resource: duplicate key (first defined on line 2)"
    ]
    with pytest.raises(ExemptionsError, match=r"missing\.yaml: cannot read: No such file"):
        load_exemptions(tmp_path / "missing.yaml")


def test_empty_file_means_no_exemptions(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("# none yet\n", encoding="utf-8")
    assert len(load_exemptions(path)) == 0
    path.write_text("exemptions: []\n", encoding="utf-8")
    assert len(load_exemptions(path)) == 0


def test_shipped_example_names_shipped_playbooks() -> None:
    ex = load_exemptions(ROOT / "examples" / "exemptions.yaml")
    assert len(ex) >= 3
    assert ex.unknown_playbooks(load_playbooks(ROOT / "playbooks").names) == []
    (issue,) = ex.unknown_playbooks(["storage-disable-public-blob-accesss", "nsg-close-management-ports"])
    assert issue.message == (
        "no playbook named 'storage-disable-public-blob-access'; did you mean 'storage-disable-public-blob-accesss'?"
    )
