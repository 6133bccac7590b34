"""``post_action`` following ARM's long-running-operation headers (Azure-AsyncOperation to success
and to failure, and a time-out) against FakeArm."""

from __future__ import annotations

import pytest

from remediator.azure.lro import post_action
from remediator.errors import ActionError
from remediator.testing import FakeArm

SUB = "00000000-0000-0000-0000-000000000000"
RID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"
OPS = f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westus/operations"


def _seed(arm: FakeArm, status: str) -> str:
    op = f"{OPS}/op-{status.lower()}"
    arm.add({"id": op, "name": op.rsplit("/", 1)[-1], "status": status,
             "error": {"code": "OperationFailed", "message": "The disk is in use."}})
    return f"{arm.base_url}{op}?api-version=2024-03-02"


def test_post_action_follows_azure_async_operation_to_success_and_failure() -> None:
    with FakeArm() as arm:
        arm.add({"id": RID, "name": "d1", "type": "Microsoft.Compute/disks", "properties": {"diskState": "ActiveSAS"}})
        ok = _seed(arm, "Succeeded")
        arm.fail_next("POST", "/endGetAccess", 202, body={}, headers={"Azure-AsyncOperation": ok, "Retry-After": "0"})
        assert post_action(arm.clients(), RID, "endGetAccess", "2024-03-02") is None
        assert [r.path for r in arm.requests][-1].endswith("/op-succeeded")
        bad = _seed(arm, "Failed")
        arm.fail_next("POST", "/endGetAccess", 202, body={}, headers={"Azure-AsyncOperation": bad, "Retry-After": "0"})
        with pytest.raises(ActionError, match=r"endGetAccess failed: OperationFailed The disk is in use\."):
            post_action(arm.clients(), RID, "endGetAccess", "2024-03-02")


def test_post_action_times_out() -> None:
    with FakeArm() as arm:
        arm.add({"id": RID, "name": "d1", "type": "Microsoft.Compute/disks", "properties": {}})
        running = _seed(arm, "InProgress")
        arm.fail_next("POST", "/endGetAccess", 202, body={}, headers={"Azure-AsyncOperation": running,
                                                                     "Retry-After": "0"})
        with pytest.raises(ActionError, match="did not finish"):
            post_action(arm.clients(), RID, "endGetAccess", "2024-03-02", timeout=0.2)
