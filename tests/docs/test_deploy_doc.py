"""docs/deploy.md says what the code and the template do: the functions the worker indexes, the roles
the template lets the broker grant, the settings the code reads, and the steps other files point to;
the README's figures table has one row per figure and one date column; cited files exist.

Each list is read from the document as a reader sees it (the code block after ``az functionapp
function list``, the bullet list of the broker's roles, the settings tables) and compared with the
source of truth: the app indexed the way the Python worker indexes it (``tests.support.functions``),
``infra/main.bicep`` parsed (``tests.infra.bicep``), and the settings ``remediator/config/settings.py``
and ``function_app/settings.py`` read.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from function_app import settings as fa
from remediator.actions import REGISTRY
from remediator.app.cli import main
from remediator.app.paths import SHIPPED_PLAYBOOKS
from remediator.config import settings as config
from remediator.playbooks import load_playbooks
from tests.conftest import ROOT
from tests.infra.bicep import Template
from tests.support.functions import index_app

DEPLOY = ROOT / "docs" / "deploy.md"
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10, "eleven": 11, "twelve": 12}


@functools.cache
def deploy_text() -> str:
    return DEPLOY.read_text(encoding="utf-8")


@functools.cache
def template() -> Template:
    return Template(ROOT / "infra" / "main.bicep")


def steps() -> dict[int, str]:
    """``## N. Title`` sections of deploy.md by number, each up to the next ``## `` heading."""
    parts = re.split(r"^## ", deploy_text(), flags=re.MULTILINE)
    return {int(m.group(1)): part for part in parts if (m := re.match(r"(\d+)\. ", part))}


def section(title: str) -> str:
    """The ``## <title>`` section (up to the next ``## `` heading)."""
    text = deploy_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


# -- the functions -----------------------------------------------------------------------------------


def documented_functions() -> list[str]:
    m = re.search(r"az functionapp function list [^\n]*\n# ([a-z_ ]+)\n", deploy_text())
    assert m, "deploy.md: no `az functionapp function list` example followed by the expected names"
    return m.group(1).split()


@pytest.mark.slow(reason="indexes the Function App in a fresh interpreter, as the Python worker does")
def test_the_listed_functions_are_the_ones_the_worker_indexes() -> None:
    indexed = sorted(f["name"] for f in index_app()["functions"])
    assert sorted(documented_functions()) == indexed
    counts = re.findall(rf"\b({'|'.join(NUMBERS)}) functions\b", deploy_text(), flags=re.IGNORECASE)
    assert counts, "deploy.md never says how many functions to expect"
    for word in counts:
        assert NUMBERS.get(word.lower()) == len(indexed), f"deploy.md says {word} functions; the app has {len(indexed)}"
    package = (ROOT / "function_app" / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `([a-z_]+)` \| ", package[package.index("## Functions"):], flags=re.MULTILINE)
    assert sorted(table) == indexed, "function_app/README.md's table of functions"
    layout = next(block for block in re.findall(r"```\n(.*?)```", package, flags=re.DOTALL) if "timers.py" in block)
    named = set(re.findall(r"\b(" + "|".join(indexed) + r")\b", layout))
    assert sorted(named) == indexed, "function_app/README.md's layout"


# -- the roles ---------------------------------------------------------------------------------------


def documented_roles() -> dict[str, str]:
    """The broker's roles as deploy.md lists them: role definition id → the name written beside it."""
    text = deploy_text()
    start = text.index("The roles are the following:")
    block = text[start:text.index("\n\n", start)]
    return {guid: " ".join(name.split()) for name, guid in
            re.findall(r"^\s*- (?:with `allowRbacRevocation`, also )?([^`\n]+?)\s*`([0-9a-f-]{36})`", block,
                       flags=re.MULTILINE)}


def test_the_listed_roles_are_the_ones_the_template_lets_the_broker_grant() -> None:
    listed = documented_roles()
    assignable = set(template().var("actionRoleIds")) | {template().var("rbacActionRoleId"),
                                                         template().var("eligibilityActionRoleId")}
    assert set(listed) == assignable, (f"missing from deploy.md: {sorted(assignable - set(listed))}; "
                                       f"not in the template: {sorted(set(listed) - assignable)}")
    names = {role.id: role.name for action in REGISTRY.values() for role in (action.role, *action.extra_roles)}
    assert {guid: name for guid, name in listed.items() if name != names.get(guid)} == {}


# -- the settings ------------------------------------------------------------------------------------


def read_settings() -> set[str]:
    """Every setting the code reads (``test_settings_coverage`` proves the list is complete)."""
    return {config.env_name(f) for f in config.FIELDS} | {config.CONFIG_ENV, "PYTHON_SCRIPT_FILE_NAME"} \
        | set(fa.OWN_SETTINGS)


def documented_settings() -> list[str]:
    """The names in the first column of the settings tables (``A__x``, ``__y`` → ``A__x``, ``A__y``)."""
    names: list[str] = []
    for row in re.findall(r"^\| (`[^|]+) \|", section("Settings reference"), flags=re.MULTILINE):
        base = ""
        for name in re.findall(r"`([A-Za-z0-9_]+)`", row):
            if name.startswith("__"):
                names.append(base + name)
            else:
                names.append(name)
                base = name.split("__", 1)[0]
    return names


def test_the_settings_tables_list_each_setting_the_code_reads_once() -> None:
    names = documented_settings()
    twice = sorted({n for n in names if names.count(n) > 1})
    assert twice == [], f"listed twice: {twice}"
    code = read_settings()
    covered = set(names) | {n.split("__", 1)[0] for n in names}  # a connection is documented by its __ parts
    assert code - covered == set(), "read by the code, not in deploy.md's settings tables"
    prefixes = {c.split("__", 1)[0] for c in code}
    assert {n for n in names if n.split("__", 1)[0] not in prefixes} == set(), "in the tables, read by nothing"


# -- pointers into deploy.md -------------------------------------------------------------------------

POINTERS = [ROOT / "slack" / "manifest.yaml", *sorted((ROOT / "infra").glob("*.bicep")), ROOT / "README.md",
            ROOT / "function_app" / "README.md", *sorted((ROOT / "playbooks").glob("*.yaml"))]
IDENTIFIER = re.compile(r"\b(?:[A-Z][A-Z0-9]*_[A-Z0-9_]+|[a-z]+[A-Z][A-Za-z0-9]+)\b")  # UPPER_SNAKE, camelCase


def pointers() -> list[tuple[str, int, str]]:
    """``(file:line, step, context)`` for each "docs/deploy.md, step N" in the repository's files."""
    found = []
    for path in POINTERS:
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            for m in re.finditer(r"deploy\.md\W{0,3}step (\d+)", line):
                context = "\n".join(lines[max(0, i - 2):i + 3])
                found.append((f"{path.relative_to(ROOT)}:{i + 1}", int(m.group(1)), context))
    return found


def test_every_pointer_to_a_step_lands_on_the_step_that_does_it() -> None:
    """A comment that sends the reader to "docs/deploy.md, step 5" names something (a placeholder, a
    parameter) that step must mention; a pointer to the wrong step does not find it there."""
    by_number = steps()
    assert pointers(), "no file points into deploy.md's steps (the pattern no longer matches them)"
    wrong = []
    for where, number, context in pointers():
        names = {n for n in IDENTIFIER.findall(context) if n in deploy_text()}
        if number not in by_number or not any(n in by_number[number] for n in names):
            wrong.append(f"{where}: step {number} mentions none of {sorted(names)}")
    assert wrong == []


# -- the README's figures and cited files -----------------------------------------------------------------


def test_the_figures_table_has_one_row_per_figure_and_one_date_column() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = readme[readme.index("## Figures"):]
    body = body[:body.index("\n\n", body.index("| figure"))]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in body.splitlines() if line.startswith("| ")]
    header, figures = rows[0], rows[1:]
    assert header[-1] == "measured"
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r[-1]) for r in figures), [r[-1] for r in figures]
    assert all(len(r) == len(header) for r in figures)
    first = [r[0] for r in figures]
    assert len(first) == len(set(first)), "a figure appears in more than one row"
    assert not any(re.search(r"\b20\d\d-\d\d-\d\d\b", r[0]) for r in figures), "a date outside the date column"


CITING = [*sorted((ROOT / "playbooks").glob("*.yaml")), ROOT / "README.md", ROOT / "benchmarks" / "README.md",
          *sorted((ROOT / "benchmarks").glob("*.py"))]
LOCAL_ROOTS = {p.name for p in ROOT.iterdir()} | {"shared", ".."}  # a path starting there is this repository's


@pytest.mark.parametrize("path", CITING, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_a_cited_repository_file_exists(path: Path) -> None:
    """A citation of a file of this repository (or of a folder beside it, which a clone does not have)
    names a file that exists; public sources are cited by their repository (MicrosoftDocs/azure-docs
    articles/…, Azure/azure-policy built-in-policies/…) or address."""
    missing = []
    for cited in re.findall(r"(?<![\w/.:-])((?:\.\./)?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+\.(?:md|json|yaml|yml|py))",
                            path.read_text(encoding="utf-8")):
        if cited.split("/", 1)[0] in LOCAL_ROOTS and not (ROOT / cited).exists():
            missing.append(cited)
    assert missing == []


# -- the walkthrough --------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None, reason="needs jq and bash")
def test_the_first_fix_walkthrough_sends_a_finding_that_asks_for_approval(tmp_path: Path) -> None:
    """Step 10's commands, run as written: the finding it builds from the sample, planned against the
    sandbox account it creates (every network allowed, no rules), is the request the step describes."""
    step = steps()[10]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", step, flags=re.DOTALL) if "jq " in b)
    command = block.split("curl ", 1)[0].replace("/tmp/first-finding.json", str(tmp_path / "finding.json"))
    sa_id = (f"/subscriptions/{'1' * 8}-2222-3333-4444-{'5' * 12}/resourceGroups/rg-remediator-sandbox/"
             "providers/Microsoft.Storage/storageAccounts/rmsandbox4242")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=ROOT, env={**os.environ, "SA_ID": sa_id},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    account = {"id": sa_id, "name": "rmsandbox4242", "type": "Microsoft.Storage/storageAccounts",
               "location": "swedencentral", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
               "properties": {"networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices",
                                              "ipRules": [], "virtualNetworkRules": []},
                              "publicNetworkAccess": "Enabled", "allowBlobPublicAccess": False}}
    (tmp_path / "state.json").write_text(json.dumps([account]), encoding="utf-8")
    out = io.StringIO()
    code = main(["plan", str(tmp_path / "finding.json"), "--resources", str(tmp_path / "state.json"),
                 "--playbooks", str(SHIPPED_PLAYBOOKS), "--output", "json"], out=out)
    assert code == 2, out.getvalue()
    (result,) = json.loads(out.getvalue())["results"]
    assert result["finding"]["resource_id"] == sa_id
    playbook = re.search(r"the playbook\s+`([a-z-]+)`", step)
    assert playbook
    assert result["playbook"] == playbook.group(1)
    assert next(p for p in load_playbooks(SHIPPED_PLAYBOOKS) if p.name == result["playbook"]).approval.mode == "slack"
    text = io.StringIO()
    main(["plan", str(tmp_path / "finding.json"), "--resources", str(tmp_path / "state.json"),
          "--playbooks", str(SHIPPED_PLAYBOOKS)], out=text)
    claimed = re.search(r"the plan\s+`([^`]+)`", step)
    assert claimed
    assert claimed.group(1) in text.getvalue()
