"""A scenario run for the evidence tests: the real engine and worker (tests/helpers_engine.py) take
known findings through every outcome the report counts, on a fake clock inside 2026-Q4.

====================================  =======================================================
finding                               what happens
====================================  =======================================================
01 open container alert (auto)        applied on its own, 10 minutes after it arrived
02 management ports (NSG)             approved; the rule drifts → stale; the re-ask is approved
                                      by another member and applied 2 hours after arrival
04 ACR admin user (policy event)      rejected: "CI pulls with the admin user until CHG-7"
05 storage firewall assessment        approved; ARM refuses the write (409) → failed
06 public access, tagged exempt       exempt (the resource's remediation-exempt tag)
03 owner sub-assessment (quorum 2)    one approval of two: still open
====================================  =======================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from remediator.lifecycle.model import Remediation
from tests.support.engine import MEMBERS, NSG_RULE, World, sample


@dataclass
class Scenario:
    auto: Remediation
    stale: Remediation
    successor: Remediation
    rejected: Remediation
    failed: Remediation
    exempt: Remediation
    open: Remediation


def run_scenario(world: World) -> Scenario:
    auto = world.ingest_one(sample("01-storage-open-container-alert"))
    world.clock.advance(minutes=10)
    world.engine.work()

    nsg = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    world.clock.advance(minutes=30)
    assert world.engine.approve(nsg.id, world.actor(MEMBERS[0])).ok
    rule = world.arm.get(NSG_RULE)
    assert rule is not None
    rule["properties"]["destinationPortRange"] = "3389-3390"  # someone edits the rule meanwhile
    world.arm.add(rule)
    world.engine.work()
    (successor,) = world.engine.pending()
    world.clock.advance(minutes=90)
    assert world.engine.approve(successor.id, world.actor(MEMBERS[1])).ok
    world.engine.work()

    acr = world.ingest_one(sample("04-acr-admin-user-policy-event"))
    world.engine.work()
    assert world.engine.reject(acr.id, world.actor(MEMBERS[2]), "CI pulls with the admin user until CHG-7").ok

    firewall = world.ingest_one(sample("05-storage-network-assessment"))
    world.engine.work()
    world.arm.fail_next("PATCH", "/storageAccounts/", 409)
    assert world.engine.approve(firewall.id, world.actor(MEMBERS[3])).ok
    world.engine.work()

    (exempt,) = world.deliver(sample("06-storage-public-access-exempt"))
    assert exempt.remediation is not None

    owner = world.ingest_one(sample("03-blocked-owner-subassessment"))
    world.engine.work()
    assert world.engine.approve(owner.id, world.actor(MEMBERS[4])).ok
    world.engine.work()
    world.engine.sweep()  # anchors the trail
    return Scenario(auto=world.rem(auto.id), stale=world.rem(nsg.id), successor=world.rem(successor.id),
                    rejected=world.rem(acr.id), failed=world.rem(firewall.id), exempt=world.rem(exempt.remediation.id),
                    open=world.rem(owner.id))
