"""Cold-start cost of ``remediator validate playbooks/`` next to Cloud Custodian's ``custodian validate``.

Both tools check the same remediations: the shipped playbooks on one side, one equivalent c7n-azure
policy per playbook in ``benchmarks/custodian-policies/remediator-equivalent.yml`` on the other.
Each run is a fresh process (a CLI cold start, which is what a playbook author waits for), timed
from spawn to exit with ``time.perf_counter``; its peak resident set size comes from the rusage that
``os.wait4`` returns for that one child (``ru_maxrss``, KiB on Linux), spawned from a minimal
launcher process so that the benchmark's own memory does not leak into it (see ``_util.LAUNCHER``).
Runs are interleaved (remediator, custodian, remediator, ...) after one untimed warm-up each, so
that page-cache warmth and background noise fall on both tools alike.

Bytecode: custodian's venv holds the ``.pyc`` files pip wrote when it installed c7n, and an
installed remediator has them too. A checkout run where ``PYTHONDONTWRITEBYTECODE`` is set (as in
some CI and container images) would compile every module from source on every run, so the
benchmark first byte-compiles the ``remediator`` package that the console script imports
(``compileall``, what pip does on install; ``--no-compile`` skips it).

Cloud Custodian is installed from PyPI into its own virtualenv (``.bench-venvs/c7n`` under the
repository, git-ignored) on the first run and reused afterwards.

Exit status: 0 when every tool ran and validated successfully (whether or not the targets were
met: those are reported as PASS/MISS), 1 when a tool failed or could not be installed.

    python benchmarks/bench_validate_vs_custodian.py                  # 7 runs each, table
    python benchmarks/bench_validate_vs_custodian.py --repeat 15 --json
    python benchmarks/bench_validate_vs_custodian.py --remediator-only --repeat 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import BENCH_DIR, REPO_ROOT, load_average, median, run_once, table, verdict

DEFAULT_VENV = REPO_ROOT / ".bench-venvs" / "c7n"
DEFAULT_POLICIES = BENCH_DIR / "custodian-policies" / "remediator-equivalent.yml"
# The versions the figures in benchmarks/README.md were measured with; --c7n-spec overrides.
C7N_SPEC = ("c7n==0.9.53", "c7n-azure==0.7.52")
TIME_TARGET = 0.10  # remediator wall time <= 0.10 x custodian's (issue 18; it was 0.25)
MEMORY_TARGET = 0.5  # remediator peak RSS <= 0.5 x custodian's


class ToolFailure(Exception):
    """A tool exited non-zero, or could not be installed: the comparison means nothing then."""


@dataclass
class Tool:
    name: str
    argv: list[str]
    version: str
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    maxrss_kib: list[int] = field(default_factory=list)

    @property
    def wall_ms_median(self) -> float:
        return median(self.wall_s) * 1000

    @property
    def cpu_ms_median(self) -> float:
        return median(self.cpu_s) * 1000

    @property
    def rss_kib_median(self) -> float:
        return median([float(r) for r in self.maxrss_kib])

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "version": self.version,
            "runs": len(self.wall_s),
            "wall_ms": [round(s * 1000, 2) for s in self.wall_s],
            "wall_ms_median": round(self.wall_ms_median, 2),
            "cpu_ms": [round(s * 1000, 2) for s in self.cpu_s],
            "cpu_ms_median": round(self.cpu_ms_median, 2),
            "maxrss_kib": self.maxrss_kib,
            "maxrss_kib_median": self.rss_kib_median,
        }


def launcher_floor_kib() -> int:
    """Peak RSS the launcher reports for ``/bin/true``: any figure at or below it says nothing."""
    true = "/bin/true" if Path("/bin/true").exists() else "true"
    return run_once([true], cwd=REPO_ROOT).maxrss_kib


def remediator_argv() -> list[str]:
    """The installed console script next to this interpreter, as a user runs it; else ``-m``."""
    script = Path(sys.executable).with_name("remediator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "remediator"]


def byte_compile_remediator() -> str:
    """Byte-compile the ``remediator`` package the console script imports (found the way the script
    finds it: same interpreter and environment, the interpreter's folder as the working directory),
    as ``pip install`` does; returns the package folder, or why it was not compiled."""
    probe = "import os, remediator; print(os.path.dirname(os.path.abspath(remediator.__file__)))"
    found = subprocess.run([sys.executable, "-c", probe], cwd=Path(sys.executable).parent, check=False,
                           capture_output=True, text=True)
    package = found.stdout.strip()
    if found.returncode != 0 or not package:
        return f"not compiled (remediator not importable: {found.stderr.strip()[-200:]})"
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=False,
                          capture_output=True, text=True)
    return package if done.returncode == 0 else f"not compiled ({done.stdout.strip()[-200:]})"


def remediator_version() -> str:
    try:
        return metadata.version("remediator")
    except metadata.PackageNotFoundError:
        return "checkout"


def ensure_custodian(venv: Path, *, skip_install: bool, spec: list[str]) -> Path:
    """The venv's ``custodian`` script, creating the venv and installing c7n into it if needed."""
    custodian = venv / "bin" / "custodian"
    if custodian.exists():
        return custodian
    if skip_install:
        raise ToolFailure(f"--skip-install given, but {custodian} does not exist (run once without it)")
    print(f"installing {' '.join(spec)} into {venv} (first run only) ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *spec,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolFailure(f"{' '.join(step)} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")
    if not custodian.exists():
        raise ToolFailure(f"c7n installed but {custodian} is missing")
    return custodian


def custodian_version(venv: Path) -> str:
    probe = "from importlib.metadata import version as v; print(f\"c7n {v('c7n')}, c7n-azure {v('c7n-azure')}\")"
    done = subprocess.run([str(venv / "bin" / "python"), "-c", probe], check=False, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def measure(tools: list[Tool], *, repeat: int, warmup: int) -> None:
    for i in range(warmup + repeat):
        for tool in tools:
            run = run_once(tool.argv, cwd=REPO_ROOT)
            if run.returncode != 0:
                raise ToolFailure(
                    f"{tool.name} exited {run.returncode}: {' '.join(tool.argv)}\n{run.output.strip()[-3000:]}"
                )
            if i >= warmup:
                tool.wall_s.append(run.wall_s)
                tool.cpu_s.append(run.cpu_s)
                tool.maxrss_kib.append(run.maxrss_kib)


def interpreter_floor(python: str, *, repeat: int) -> Tool:
    """``python -c pass``: the start-up cost no Python CLI can go below, for reading the others."""
    floor = Tool(
        name=f"python -c pass ({Path(python).parent.parent.name})",
        argv=[python, "-c", "pass"],
        version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )
    measure([floor], repeat=repeat, warmup=1)
    return floor


def report(result: dict[str, Any], tools: list[Tool], floors: list[Tool]) -> str:
    rows: list[list[object]] = []
    for t in [*tools, *floors]:
        rows.append(
            [
                t.name,
                t.version,
                len(t.wall_s),
                t.wall_ms_median,
                min(t.wall_s) * 1000,
                max(t.wall_s) * 1000,
                t.cpu_ms_median,
                t.rss_kib_median / 1024,
                max(t.maxrss_kib) / 1024,
            ]
        )
    lines = [
        "Cold start of one validate run (fresh process each; median of runs after a warm-up); "
        f"load average {result['load_average_1m']['start']} -> {result['load_average_1m']['end']}",
        "",
        table(
            [
                "tool",
                "version",
                "runs",
                "median ms",
                "min ms",
                "max ms",
                "CPU ms (median)",
                "RSS MiB (median)",
                "RSS MiB (max)",
            ],
            rows,
        ),
        "",
    ]
    for t in tools:
        lines.append(f"{t.name}: {' '.join(t.argv)}")
    lines.append(f"remediator package byte-compiled first: {result['byte_compiled']}")
    lines.append(
        f"(RSS at or below the launcher's own {result['launcher_floor_kib'] / 1024:.1f} MiB would not be "
        "the tool's; see _util.LAUNCHER)"
    )
    ratios = result.get("ratios")
    if ratios:
        lines += [
            "",
            "remediator / custodian:",
            f"  time   {ratios['time']:.3f}x  (target <= {TIME_TARGET}x)  {verdict(ratios['time'] <= TIME_TARGET)}",
            f"  memory {ratios['memory']:.3f}x  (target <= {MEMORY_TARGET}x)  "
            f"{verdict(ratios['memory'] <= MEMORY_TARGET)}",
            f"  CPU    {ratios['cpu']:.3f}x  (user+system time; no target: a check on the wall-time ratio when "
            "the machine is busy)",
        ]
    else:
        lines += ["", "custodian not run (--remediator-only): no ratios"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per tool (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per tool first (default 1)")
    parser.add_argument("--playbooks", default="playbooks", help="playbooks folder, relative to the repo root")
    parser.add_argument("--policies", type=Path, default=DEFAULT_POLICIES, help="custodian policy file")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv for c7n (created if missing)")
    parser.add_argument(
        "--c7n-spec",
        nargs="+",
        default=list(C7N_SPEC),
        metavar="REQ",
        help=f"what to pip-install into a new venv (default: {' '.join(C7N_SPEC)})",
    )
    parser.add_argument("--skip-install", action="store_true", help="never install: fail if the venv is missing")
    parser.add_argument("--remediator-only", action="store_true", help="measure remediator alone (no c7n)")
    parser.add_argument("--no-floor", action="store_true", help="skip the `python -c pass` reference rows")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile the remediator package first (see the module docstring)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    load_start = load_average()
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    tools = [
        Tool(
            name="remediator",
            argv=[*remediator_argv(), "validate", args.playbooks],
            version=remediator_version(),
        )
    ]
    pythons = [sys.executable]
    compiled = "skipped (--no-compile)" if args.no_compile else byte_compile_remediator()
    try:
        if not args.remediator_only:
            custodian = ensure_custodian(args.venv.resolve(), skip_install=args.skip_install, spec=args.c7n_spec)
            tools.append(
                Tool(
                    name="custodian",
                    argv=[str(custodian), "validate", str(args.policies.resolve())],
                    version=custodian_version(args.venv),
                )
            )
            pythons.append(str(args.venv / "bin" / "python"))
        measure(tools, repeat=args.repeat, warmup=args.warmup)
    except ToolFailure as e:
        print(f"bench_validate_vs_custodian: {e}", file=sys.stderr)
        return 1
    floors = [] if args.no_floor else [interpreter_floor(p, repeat=args.repeat) for p in pythons]
    launcher_kib = launcher_floor_kib()

    result: dict[str, Any] = {
        "benchmark": "validate_vs_custodian",
        "repeat": args.repeat,
        "warmup": args.warmup,
        "python": sys.version.split()[0],
        "load_average_1m": {"start": load_start, "end": load_average()},
        "tools": {t.name: t.to_json() for t in tools},
        "floors": {t.name: t.to_json() for t in floors},
        "launcher_floor_kib": launcher_kib,
        "byte_compiled": compiled,
    }
    if len(tools) == 2:
        rem, cus = tools
        time_ratio = rem.wall_ms_median / cus.wall_ms_median
        mem_ratio = rem.rss_kib_median / cus.rss_kib_median
        cpu_ratio = rem.cpu_ms_median / cus.cpu_ms_median
        result["ratios"] = {"time": round(time_ratio, 4), "memory": round(mem_ratio, 4), "cpu": round(cpu_ratio, 4)}
        result["targets"] = {
            "time": {"max_ratio": TIME_TARGET, "verdict": verdict(time_ratio <= TIME_TARGET)},
            "memory": {"max_ratio": MEMORY_TARGET, "verdict": verdict(mem_ratio <= MEMORY_TARGET)},
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(report(result, tools, floors))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
