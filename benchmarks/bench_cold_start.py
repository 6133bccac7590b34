"""Cold start of the Functions app: what the worker's indexing import costs, against eager SDK imports.

When an instance starts, the Python worker imports the entry file (``functions_entry.py``, named
by ``PYTHON_SCRIPT_FILE_NAME``) and calls ``get_functions()`` on its ``FunctionApp`` before any
function can run. remediator keeps that import free of the management SDKs, azure.identity and
slack_bolt (``function_app.runtime`` builds them on first use). This script measures, each in a
fresh interpreter started in the repository root (the app root), median of ``--repeat`` runs,
runs of the two kinds interleaved after ``--warmup`` untimed ones:

a) ``import functions_entry``: the worker's indexing import (azure.functions included);
a') the same with ``azure.functions`` already imported, as it is in the worker, which loads the
   library for its binding registry before it indexes the app: what the entry itself adds;
b) ``app.get_functions()`` right after it: building the function metadata;
c) an eager import of ``azure.mgmt.storage``, ``azure.mgmt.network``,
   ``azure.mgmt.containerregistry``, ``azure.mgmt.authorization``, ``azure.identity`` and
   ``slack_bolt``: what the entry would pay if it imported what the functions use.

Times are taken inside the child with ``time.perf_counter`` around the statement, so interpreter
start-up is left out of both. The target is (a) / (c) <= 0.25, printed as PASS or MISS; it does
not change the exit status. A real cold start reads from a cold disk or a mounted package and is
slower in absolute terms; the ratio is what this script is for.

    python benchmarks/bench_cold_start.py               # 9 runs of each
    python benchmarks/bench_cold_start.py --repeat 1 --warmup 0 --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _util import REPO_ROOT, load_average, median, table, verdict

TARGET_RATIO = 0.25
EAGER_MODULES = ("azure.mgmt.storage", "azure.mgmt.network", "azure.mgmt.containerregistry", "azure.mgmt.authorization",
                 "azure.identity", "slack_bolt")
HEAVY_PREFIXES = ("azure.mgmt", "azure.identity", "slack_bolt")

_ENTRY = f"""
import json, sys, time
sys.path.insert(0, {str(REPO_ROOT)!r})
if {{preload}}:
    import azure.functions
t0 = time.perf_counter()
import functions_entry
t1 = time.perf_counter()
functions = functions_entry.app.get_functions()
t2 = time.perf_counter()
heavy = sorted(m for m in sys.modules if m.startswith({HEAVY_PREFIXES!r}))
print(json.dumps({{{{"import_ms": (t1 - t0) * 1000, "index_ms": (t2 - t1) * 1000, "functions": len(functions),
                  "heavy": heavy, "modules": len(sys.modules)}}}}))
"""

_EAGER = f"""
import json, sys, time
t0 = time.perf_counter()
import {", ".join(EAGER_MODULES)}
t1 = time.perf_counter()
print(json.dumps({{"import_ms": (t1 - t0) * 1000, "modules": len(sys.modules)}}))
"""


def _child(code: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(repeat: int, warmup: int) -> dict[str, Any]:
    cold, warm = _ENTRY.format(preload=False), _ENTRY.format(preload=True)
    for _ in range(warmup):
        _child(cold)
        _child(_EAGER)
    entry: list[dict[str, Any]] = []
    preloaded: list[dict[str, Any]] = []
    eager: list[dict[str, Any]] = []
    for _ in range(repeat):
        entry.append(_child(cold))
        preloaded.append(_child(warm))
        eager.append(_child(_EAGER))
    entry_ms = median([r["import_ms"] for r in entry])
    index_ms = median([r["index_ms"] for r in entry])
    eager_ms = median([r["import_ms"] for r in eager])
    ratio = entry_ms / eager_ms if eager_ms > 0 else float("nan")
    return {
        "runs": repeat,
        "entry": {"import_ms_median": entry_ms, "import_ms_best": min(r["import_ms"] for r in entry),
                  "import_ms_median_azure_functions_preloaded": median([r["import_ms"] for r in preloaded]),
                  "index_ms_median": index_ms, "functions": entry[0]["functions"], "modules": entry[0]["modules"],
                  "heavy_modules_loaded": sorted({m for r in entry for m in r["heavy"]})},
        "eager": {"modules_imported": list(EAGER_MODULES), "import_ms_median": eager_ms,
                  "import_ms_best": min(r["import_ms"] for r in eager), "modules": eager[0]["modules"]},
        "ratio": ratio,
        "target": {"ratio_at_most": TARGET_RATIO, "verdict": verdict(ratio <= TARGET_RATIO)},
        "load_average": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=9, help="timed runs of each kind (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each kind first (page cache)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")
    result = run(args.repeat, args.warmup)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    entry, eager = result["entry"], result["eager"]
    print(f"cold start of the Functions app: fresh interpreters, median of {result['runs']} "
          f"(load average {result['load_average']})\n")
    print(table(["what", "median ms", "best ms", "modules"], [
        ["(a) import functions_entry", entry["import_ms_median"], entry["import_ms_best"], entry["modules"]],
        ["(a') the same, azure.functions preloaded", entry["import_ms_median_azure_functions_preloaded"], "", ""],
        ["(b) app.get_functions() (functions)", entry["index_ms_median"], "", entry["functions"]],
        ["(c) eager SDKs + azure.identity + slack_bolt", eager["import_ms_median"], eager["import_ms_best"],
         eager["modules"]],
    ]))
    print(f"\n(c) imports: {', '.join(EAGER_MODULES)}")
    heavy = ", ".join(entry["heavy_modules_loaded"]) or "none"
    print(f"\nheavy modules loaded by the entry: {heavy}")
    print(f"ratio (a) / (c): {result['ratio']:.3f} (target <= {TARGET_RATIO}): {result['target']['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
