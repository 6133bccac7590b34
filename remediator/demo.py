"""``remediator demo``: the sample findings planned against simulated Azure state.

No Azure and no Slack: the sample payloads in ``remediator/samples/findings`` are planned by the
shipped playbooks against the ARM documents in ``remediator/samples/state``. With ``--apply``
the simulated state is served by ``FakeArm`` (a real HTTP server on localhost), every planned
change is applied through the real Azure SDK clients, and each is verified by reading it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from remediator.actions import REGISTRY
from remediator.errors import ActionError
from remediator.findings import parse_file
from remediator.model import Record
from remediator.plan import Result
from remediator.planner import Planner
from remediator.playbooks import load_playbooks
from remediator.render import render_plan
from remediator.state import SavedState

SAMPLES = Path(__file__).resolve().parent / "samples"
SHIPPED_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
# The demo's executor identity: the rbac action must never revoke the bot's own roles.
DEMO_EXECUTOR = "5f0c2a4e-8b1d-4e3f-a6c7-0d9e8f7a6b5c"


def sample_records() -> list[Record]:
    records: list[Record] = []
    for path in sorted((SAMPLES / "findings").glob("*.json")):
        records.extend(parse_file(path))
    return records


def run_demo(*, out: TextIO, apply: bool = False, playbooks_dir: str | Path | None = None) -> int:
    state = SavedState.from_path(SAMPLES / "state")
    playbooks = load_playbooks(Path(playbooks_dir) if playbooks_dir else SHIPPED_PLAYBOOKS)
    planner = Planner(playbooks=playbooks, state=state, protected_principals=frozenset({DEMO_EXECUTOR}))
    results = planner.plan(sample_records())
    out.write(f"remediator demo: {len(results)} sample records, {len(playbooks)} playbooks, "
              f"{len(state)} simulated resources\n\n")
    out.write(render_plan(results))
    if not apply:
        out.write("\nNothing was written. Run `remediator demo --apply` to apply these plans to the simulated "
                  "Azure and verify them.\n")
        return 0
    return _apply_all(results, state, out)


def _apply_all(results: list[Result], state: SavedState, out: TextIO) -> int:
    from remediator.azure.reader import LiveState  # noqa: PLC0415
    from remediator.testing import FakeArm  # noqa: PLC0415

    failures = 0
    out.write("\nApplying to the simulated Azure (FakeArm on localhost, real SDK clients):\n")
    with FakeArm() as arm:
        arm.load(state.documents())
        clients = arm.clients()
        live = LiveState(clients)
        for result in results:
            for change in result.changes:
                action = REGISTRY[change.action]
                try:
                    action.apply(clients, change)
                    problem = action.verify(live, change)
                except ActionError as e:
                    problem = str(e)
                mark = "ok" if problem is None else f"FAILED: {problem}"
                failures += problem is not None
                out.write(f"  {change.operation:<7} {change.resource_id}\n          {mark}\n")
        out.write(f"\n{len(arm.writes)} writes sent to ARM; {failures} failed verification.\n")
    return 1 if failures else 0
