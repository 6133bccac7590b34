"""``remediator serve`` as an operator runs it: a real process, its ingest behind the bearer token.

The process gets its settings from the environment (Slack pointed at FakeSlack, SQLite in a
temporary folder, port 0), prints the URL it listens on, and is stopped with SIGINT (Ctrl-C).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from remediator.app.paths import SAMPLES
from remediator.testing.fake_slack import FakeSlack
from tests.conftest import ROOT
from tests.support.engine import ROLES_ENV

TOKEN = "serve-test-token-0123456789abcdef"
ASSESSMENT = (SAMPLES / "findings" / "02-management-ports-assessment.json").read_bytes()


def test_serve_refuses_to_start_while_an_approver_role_is_unmapped(tmp_path: Path) -> None:
    """The shipped playbooks name roles; a deployment that maps only some of them would post requests
    nobody can approve: serve names every unmapped role and its playbook, and never listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REMEDIATOR_"))}
    env |= {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret", "REMEDIATOR_SLACK_CHANNEL": "C0123456789",
            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}", "REMEDIATOR_INGEST_TOKEN": TOKEN,
            "REMEDIATOR_ELEVATION": "standing", "REMEDIATOR_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
            "REMEDIATOR_APPROVER_ROLES": "security-oncall=S0614TZR7",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "remediator", "serve", "--port", "0", "--no-worker"],
                          capture_output=True, cwd=tmp_path, env=env, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert proc.stdout == b""  # never listening
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(line.startswith("error: ") for line in lines)
    assert any("acr-rotate-credentials.yaml:" in line and "'security-leads' is not mapped" in line for line in lines)
    assert any("vnet-restrict-peerings.yaml:" in line and "'platform-owners' is not mapped" in line for line in lines)
    assert not any("'security-oncall'" in line for line in lines)  # the mapped role is fine
    assert "REMEDIATOR_APPROVER_ROLES" in err
    assert not (tmp_path / "r.db").exists()  # refused before the store was opened


@contextmanager
def serving(tmp_path: Path, slack: FakeSlack, *args: str, token: str | None = TOKEN) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REMEDIATOR_"))}
    env |= {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": slack.signing_secret,
            "REMEDIATOR_SLACK_CHANNEL": "C0REMEDIATE", "REMEDIATOR_SLACK_API_URL": slack.base_url,
            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "REMEDIATOR_PLAYBOOKS_DIR": str(ROOT / "playbooks"), "REMEDIATOR_ELEVATION": "standing",
            "REMEDIATOR_APPROVER_ROLES": ROLES_ENV,
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    if token:
        env["REMEDIATOR_INGEST_TOKEN"] = token
    proc = subprocess.Popen([sys.executable, "-m", "remediator", "serve", "--port", "0", "--no-worker", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert "remediator serving on " in line, (line, proc.stderr.read().decode() if proc.poll() is not None else "")
        yield line.split("serving on ", 1)[1].split(" ", 1)[0]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    try:
        with urlopen(Request(url, data=body, headers=headers, method="POST"), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow(reason="starts a real `remediator serve` process and stops it with SIGINT")
def test_serve_ingests_only_with_the_bearer_token(tmp_path: Path) -> None:
    with FakeSlack() as slack, serving(tmp_path, slack) as url:
        ctype = {"Content-Type": "application/json"}
        assert post(url + "/api/findings", ASSESSMENT, ctype) == (401, {"error": "missing or wrong ingest token"})
        wrong = {**ctype, "Authorization": "Bearer " + TOKEN[:-1] + "x"}
        assert post(url + "/api/findings", ASSESSMENT, wrong)[0] == 401
        status, answer = post(url + "/api/findings", ASSESSMENT, {**ctype, "Authorization": f"Bearer {TOKEN}"})
        assert (status, answer) == (202, {"records": 1, "results": {"queued": 1}})


@pytest.mark.slow(reason="starts a real `remediator serve` process and stops it with SIGINT")
def test_serve_with_ingest_off_needs_no_token_and_has_no_ingest(tmp_path: Path) -> None:
    with FakeSlack() as slack, serving(tmp_path, slack, "--no-ingest", token=None) as url:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        assert post(url + "/api/findings", ASSESSMENT, headers) == (404, {"error": "findings ingest is off on this "
                                                                                   "server"})
        with urlopen(url + "/health", timeout=10) as resp:
            assert json.loads(resp.read()) == {"ok": True, "paused": False}


@pytest.mark.slow(reason="starts a real `remediator serve` process and stops it with SIGINT")
def test_serve_learns_its_workspace_and_refuses_every_other(tmp_path: Path) -> None:
    """REMEDIATOR_SLACK_TEAM_ID is unset: serve asks auth.test, and a correctly signed command from
    another workspace is refused over real HTTP through bolt (it used to be answered)."""
    with FakeSlack(team_id="T0HOME00001") as slack, serving(tmp_path, slack, "--no-ingest", token=None) as url:
        evil = slack.slash_command(command="/remediate", text="list", user_id="U0EVIL00001", team_id="TEVIL00001")
        status, body = FakeSlack.send(url + "/slack/events", evil)
        assert status == 200
        assert "Only members of this workspace can do this" in body
        home = slack.slash_command(command="/remediate", text="list", user_id="U0HOME00001")
        assert "waiting for approval" in FakeSlack.send(url + "/slack/events", home)[1].lower()
        assert [c.method for c in slack.calls] == ["auth.test"]


@pytest.mark.slow(reason="runs `remediator serve` in a fresh interpreter")
@pytest.mark.parametrize(("extra", "expected"), [
    ({"REMEDIATOR_SLACK_TEAM_ID": "T0OTHER0001"},
     "error: REMEDIATOR_SLACK_TEAM_ID is T0OTHER0001 but SLACK_BOT_TOKEN belongs to workspace T0HOME00001"),
    ({"SLACK_BOT_TOKEN": "xoxb-not-this-one"}, "refused SLACK_BOT_TOKEN: invalid_auth"),
])
def test_serve_does_not_start_without_its_workspace(tmp_path: Path, extra: dict[str, str], expected: str) -> None:
    with FakeSlack(team_id="T0HOME00001") as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REMEDIATOR_"))}
        env |= {"SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": slack.signing_secret,
                "REMEDIATOR_SLACK_CHANNEL": "C0REMEDIATE", "REMEDIATOR_SLACK_API_URL": slack.base_url,
                "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "REMEDIATOR_APPROVER_ROLES": ROLES_ENV,
                "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), **extra}
        proc = subprocess.run([sys.executable, "-m", "remediator", "serve", "--port", "0", "--no-ingest"],
                              capture_output=True, cwd=tmp_path, env=env, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert err.count("\n") == 1, err
    assert expected in err
    assert not (tmp_path / "serve.db").exists()
