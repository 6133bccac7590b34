"""`remediator coverage`'s reason for a Private Link definition no playbook claims: remediator builds private
endpoints and zone groups, so "needs more than a property change" (class c) is not the reason; whether the type's
connection can be approved without Contributor is."""

from __future__ import annotations

from remediator.planning.coverage import Coverage
from remediator.playbooks import load_playbooks
from tests.conftest import ROOT

STORAGE_PRIVATE_LINK = "6edd7eda-6dd8-40f7-810d-67160c639cd9"  # Storage accounts should use private link
DATABRICKS_ENDPOINTS = "09210db3-d32c-4b2b-b4e1-f72ae920eb11"  # Configure Azure Databricks Workspaces with private …
FILE_ZONE_GROUP = "6df98d03-368a-4438-8730-a93c4d7693d6"  # Configure a private DNS Zone ID for file groupID


def reasons(*playbooks: str) -> dict[str, tuple[str | None, str]]:
    coverage = Coverage(load_playbooks([ROOT / "playbooks" / p for p in playbooks]))
    rows = {r.definition_id.rsplit("/", 1)[-1].lower(): r for r in coverage.catalog()}
    return {k: (rows[k].playbook, rows[k].reason) for k in (STORAGE_PRIVATE_LINK, DATABRICKS_ENDPOINTS,
                                                            FILE_ZONE_GROUP)}


def test_without_the_private_link_playbooks_the_reason_names_the_action_that_would_fix_it() -> None:
    got = reasons("storage-disable-public-network-access.yaml")
    assert got[STORAGE_PRIVATE_LINK] == (None, "network.create-private-endpoint makes it, but no playbook lists the "
                                               "definition")
    assert got[FILE_ZONE_GROUP][0] is None
    assert got[FILE_ZONE_GROUP][1].startswith("network.create-private-dns-zone-group makes it")


def test_with_them_a_type_only_contributor_approves_says_so() -> None:
    got = reasons("private-link.yaml", "private-dns-zone-group.yaml")
    assert got[STORAGE_PRIVATE_LINK][0] == "private-link"
    assert got[FILE_ZONE_GROUP][0] == "private-dns-zone-group"
    playbook, why = got[DATABRICKS_ENDPOINTS]
    assert playbook is None
    # the reason remediator/playbooks/excused.py gives, not the catalog's "needs more than a property change"
    assert why.startswith("not claimed: no built-in role narrower than Contributor holds Databricks workspaces' "
                          "privateEndpointConnectionsApproval/action")


def test_an_excused_definition_shows_why_instead_of_its_class_note() -> None:
    coverage = Coverage(load_playbooks(ROOT / "playbooks"))
    rows = {r.definition_id.rsplit("/", 1)[-1].lower(): r for r in coverage.catalog()}
    idle = rows["679ddf89-ab8f-48a5-9029-e76054077449"]  # class b: ML compute idle shutdown, a POST action
    assert idle.playbook is None
    assert idle.reason.startswith("not claimed: not a property write")
