"""The app indexes exactly as the Python worker indexes it, and every function's bindings are right.

The worker (azure-functions-python-worker, ``loader.index_function_app`` and
``utils/common.validate_script_file_name``; ``functions.Registry.add_function`` for the type
checks) does, in a process whose ``sys.path[0]`` is the app root:

1. read ``PYTHON_SCRIPT_FILE_NAME`` (default ``function_app.py``) and check it against
   ``^[a-zA-Z0-9_][a-zA-Z0-9_\\-]*\\.py$`` (a bare file name: no folders);
2. require that file at the app root (otherwise it falls back to the legacy ``function.json``
   scan, which finds nothing here);
3. ``importlib.import_module(<stem>)``, then look through the module's ``__dir__()`` for
   ``azure.functions.FunctionRegister`` instances: exactly one, or it fails;
4. ``app.get_functions()``; then for each function, ``typing.get_type_hints`` of the user function,
   the parameters must be exactly the bindings (``$return`` aside, and ``context``, which must be
   annotated ``azure.functions.Context``), and each annotation must pass
   its binding converter's ``check_input_type_annotation`` (the return one
   ``check_output_type_annotation``).

``tests.support.functions.index_app`` does those steps in a fresh interpreter started in the
repository root, reading the file name from ``local.settings.example.json`` (the deployment sets the same value:
``test_settings_coverage``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.engine import ROLES_ENV
from tests.support.functions import index_app, local_settings

HEAVY = ("azure.mgmt", "azure.identity", "slack_bolt")

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "defender_export": [{"direction": "IN", "type": "eventHubTrigger", "name": "events",
                         "connection": "EVENTHUB_CONNECTION", "eventHubName": "%EVENTHUB_NAME%",
                         "consumerGroup": "%EVENTHUB_CONSUMER_GROUP%", "cardinality": "MANY"}],
    "policy_events": [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}],
    "workflow_automation": [{"direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["POST"],
                             "authLevel": "FUNCTION", "route": "findings"},
                            {"direction": "OUT", "type": "http", "name": "$return"}],
    "slack_events": [{"direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["POST"],
                      "authLevel": "ANONYMOUS", "route": "slack/events"},
                     {"direction": "OUT", "type": "http", "name": "$return"}],
    "jobs": [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": "%JOBS_QUEUE%",
              "connection": "REMEDIATOR_STORAGE_CONNECTION"}],
    "jobs_poison": [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": "%JOBS_QUEUE%-poison",
                     "connection": "REMEDIATOR_STORAGE_CONNECTION"}],
    "jobs_urgent": [{"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": "%JOBS_QUEUE%-urgent",
                     "connection": "REMEDIATOR_STORAGE_CONNECTION"}],
    "jobs_urgent_poison": [{"direction": "IN", "type": "queueTrigger", "name": "msg",
                            "queueName": "%JOBS_QUEUE%-urgent-poison", "connection": "REMEDIATOR_STORAGE_CONNECTION"}],
    "sweep": [{"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "%SWEEP_SCHEDULE%",
               "runOnStartup": False, "useMonitor": True}],
    "reconcile": [{"direction": "IN", "type": "timerTrigger", "name": "timer", "schedule": "%RECONCILE_SCHEDULE%",
                   "runOnStartup": False, "useMonitor": True}],
    "health": [{"direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["GET"],
                "authLevel": "ANONYMOUS", "route": "health"},
               {"direction": "OUT", "type": "http", "name": "$return"}],
}


@pytest.fixture(scope="module")
def indexed() -> dict[str, Any]:
    return index_app()


def test_the_entry_holds_exactly_one_function_app(indexed: dict[str, Any]) -> None:
    assert indexed["registers"] == ["app"]
    assert indexed["module"] == "functions_entry"
    assert Path(indexed["file"]).resolve() == (ROOT / "functions_entry.py").resolve()


def test_every_function_and_binding(indexed: dict[str, Any]) -> None:
    got = {f["name"]: f["bindings"] for f in indexed["functions"]}
    assert got == EXPECTED


def test_every_annotation_passes_the_workers_type_checks(indexed: dict[str, Any]) -> None:
    problems = {f["name"]: f["problems"] for f in indexed["functions"] if f["problems"]}
    assert problems == {}
    assert not any(f["async"] for f in indexed["functions"])  # sync: the worker runs them on its thread pool


def test_event_hub_batch_has_a_retry_policy(indexed: dict[str, Any]) -> None:
    retries = {f["name"]: f["retry"] for f in indexed["functions"] if f["retry"]}
    assert retries == {"defender_export": {"setting_name": "retry_policy", "strategy": "exponential_backoff",
                                           "max_retry_count": "8", "minimum_interval": "00:00:05",
                                           "maximum_interval": "00:15:00"}}


def test_indexing_imports_no_management_sdk_identity_or_bolt(indexed: dict[str, Any]) -> None:
    heavy = [m for m in indexed["loaded"] if m.startswith(HEAVY)]
    assert heavy == []
    assert not [m for m in indexed["loaded"] if m.startswith(("remediator.", "bot"))]


def test_the_package_exists_and_no_root_function_app_py_shadows_it() -> None:
    assert (ROOT / "function_app" / "__init__.py").is_file()
    assert not (ROOT / "function_app.py").exists(), "function_app/ would shadow it: use PYTHON_SCRIPT_FILE_NAME"
    assert local_settings()["PYTHON_SCRIPT_FILE_NAME"] != "function_app.py"


def test_the_shadowing_trap_is_real(tmp_path: Path) -> None:
    """Why the entry has another name: with both, ``import_module('function_app')`` gets the package."""
    (tmp_path / "function_app").mkdir()
    (tmp_path / "function_app" / "__init__.py").write_text("KIND = 'package'\n")
    (tmp_path / "function_app.py").write_text("KIND = 'module'\n")
    code = "import importlib; print(importlib.import_module('function_app').KIND)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                          timeout=60)
    assert proc.stdout.strip() == "package"


def test_host_json() -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["functionTimeout"] == "00:10:00"
    queues = host["extensions"]["queues"]
    # the host's last delivery must reach the engine above its limit, so the engine ends the job (worker.py)
    assert queues["maxDequeueCount"] == int(local_settings()["REMEDIATOR_MAX_DELIVERIES"]) + 1
    assert queues["messageEncoding"] == "base64"
    assert "TextBase64EncodePolicy()" in (ROOT / "remediator" / "store" / "azure.py").read_text(encoding="utf-8")
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_jobs_queue_is_the_stores_queue() -> None:
    values = local_settings()
    prefix = values["REMEDIATOR_STORE_URL"].removeprefix("azure://").strip("/")
    assert values["JOBS_QUEUE"] == f"{prefix}-jobs"  # AzureStore: the queue ``<prefix>-jobs``


@pytest.mark.slow(reason="a fresh interpreter imports the Functions app and builds the bolt App")
def test_the_slack_path_loads_no_management_sdk_or_identity(tmp_path: Path) -> None:
    """Approving is a store operation: building the engine and the bolt App for the first Slack
    request imports no management SDK and no azure.identity (credentials are built on first token)."""
    from remediator.testing import FakeSlack

    with FakeSlack() as slack:  # the Slack App learns its workspace from auth.test
        env = {"REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}", "SLACK_BOT_TOKEN": slack.token,
               "SLACK_SIGNING_SECRET": "s", "REMEDIATOR_SLACK_CHANNEL": "C0123456789",
               "REMEDIATOR_SLACK_API_URL": slack.base_url,
               "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": "11111111-1111-4111-8111-111111111111",
               "REMEDIATOR_BROKER_CLIENT_ID": "22222222-2222-4222-8222-222222222222",
               "REMEDIATOR_APPROVER_ROLES": ROLES_ENV}
        code = ("import sys, functions_entry\n"
                "from function_app.runtime import Overrides, runtime\n"
                f"runtime.configure(Overrides(env={env!r}))\n"
                "runtime.slack_app()\n"
                f"print(','.join(sorted(m for m in sys.modules if m.startswith({HEAVY[:2]!r}))))\n")
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              check=False)
        assert [c.method for c in slack.calls] == ["auth.test"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""


def test_only_slack_and_health_are_anonymous_and_ingest_needs_a_function_key(indexed: dict[str, Any]) -> None:
    """The Logic App ingest route (``POST /api/findings``) is behind a function key (authLevel FUNCTION);
    Slack's route is anonymous because Slack cannot send a key (the signature protects it instead),
    and health holds nothing secret. Any other HTTP route would default to FUNCTION too."""
    http = {f["name"]: b for f in indexed["functions"] for b in f["bindings"] if b["type"] == "httpTrigger"}
    assert http["workflow_automation"]["authLevel"] == "FUNCTION"
    assert http["workflow_automation"]["route"] == "findings"
    assert {name for name, b in http.items() if b["authLevel"] == "ANONYMOUS"} == {"slack_events", "health"}
    assert {b["authLevel"] for b in http.values()} <= {"FUNCTION", "ANONYMOUS"}


def test_the_app_refuses_to_build_its_engine_while_an_approver_role_is_unmapped(tmp_path: Path) -> None:
    """The Functions app builds the engine through ``build_engine``: with the shipped playbooks and only
    ``security-oncall`` mapped, it stops with every unmapped role and its playbook named."""
    env = {"REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path / 'r.db'}", "SLACK_BOT_TOKEN": "xoxb-0",
           "SLACK_SIGNING_SECRET": "s", "REMEDIATOR_SLACK_CHANNEL": "C0123456789",
           "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": "11111111-1111-4111-8111-111111111111",
           "REMEDIATOR_BROKER_CLIENT_ID": "22222222-2222-4222-8222-222222222222",
           "REMEDIATOR_APPROVER_ROLES": "security-oncall=S0614TZR7"}
    code = ("import functions_entry\n"
            "from function_app.runtime import Overrides, runtime\n"
            "from remediator.errors import PlaybookError\n"
            f"runtime.configure(Overrides(env={env!r}))\n"
            "try:\n"
            "    runtime.engine()\n"
            "except PlaybookError as e:\n"
            "    print('\\n'.join(str(i) for i in e.issues))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines
    assert all("is not mapped to anyone" in line for line in lines)
    assert any("acr-rotate-credentials.yaml:" in line and "'security-leads'" in line for line in lines)
    assert any("policy-limit-exemptions.yaml:" in line and "'platform-owners'" in line for line in lines)
