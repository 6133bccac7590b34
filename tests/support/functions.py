"""The Function App indexed the way the Python worker indexes it (see tests/function_app/test_indexing.py
for the worker's steps): ``index_app()`` runs them in a fresh interpreter in the repository root and
returns what the worker would find (the one ``FunctionApp``, its functions and bindings, what the
import loaded). Shared by the indexing tests and the docs test that compares deploy.md's list of
functions to the app's."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

WORKER_FILE_NAME = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$")  # validate_script_file_name

INDEX_SCRIPT = r'''
import importlib, inspect, json, os, pathlib, sys, typing
root, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
function_path = os.path.join(root, script)
assert os.path.exists(function_path), function_path
before = set(sys.modules)
module = importlib.import_module(pathlib.Path(function_path).stem)
loaded = sorted(set(sys.modules) - before)

import azure.functions as func
registers = [n for n in module.__dir__() if isinstance(getattr(module, n, None), func.FunctionRegister)]
assert len(registers) == 1, registers
registry = func.get_binding_registry()
out = []
for fn in getattr(module, registers[0]).get_functions():
    user = fn.get_user_function()
    params = dict(inspect.signature(user).parameters)
    hints = typing.get_type_hints(user)
    bindings = [json.loads(b) for b in fn.get_raw_bindings()]
    bound = {b["name"]: b for b in bindings if b["name"] != "$return"}
    problems = []
    if "context" in params and "context" not in bound:  # the worker passes its invocation context
        params.pop("context")
        anno = hints.get("context")
        if anno is not None and (not isinstance(anno, type) or anno.__name__ != "Context"):
            problems.append(f"context: {anno!r} is not azure.functions.Context")
    if set(params) != set(bound):
        problems.append(f"parameters {sorted(params)} != bindings {sorted(bound)}")
    for name, binding in bound.items():
        anno = hints.get(name)
        converter = registry.get(binding["type"])
        if anno is None:
            problems.append(f"{name}: no annotation")
        elif anno not in (str, bytes) and (converter is None or not converter.check_input_type_annotation(anno)):
            problems.append(f"{name}: {anno!r} does not pass the {binding['type']} converter")
    for binding in bindings:
        if binding["name"] == "$return":
            ret = hints.get("return")
            converter = registry.get(binding["type"])
            if not isinstance(ret, type) or converter is None or not converter.check_output_type_annotation(ret):
                problems.append(f"return: {ret!r} does not pass the {binding['type']} converter")
    out.append({"name": fn.get_function_name(), "bindings": bindings, "retry": fn.get_settings_dict("retry_policy"),
                "problems": problems, "async": inspect.iscoroutinefunction(user)})
print(json.dumps({"registers": registers, "module": module.__name__, "file": module.__file__,
                  "loaded": loaded, "functions": out}))
'''



def local_settings() -> dict[str, str]:
    values: dict[str, str] = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    return values


@functools.cache
def index_app() -> dict[str, Any]:
    """What the worker indexes: ``{"registers", "module", "file", "loaded", "functions": [{"name", …}]}``."""
    script = local_settings()["PYTHON_SCRIPT_FILE_NAME"]
    assert WORKER_FILE_NAME.match(script), script
    assert (ROOT / script).is_file()
    proc = subprocess.run([sys.executable, "-c", INDEX_SCRIPT, str(ROOT), script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
