"""``remediator schema``: the JSON Schema of playbook files, for editors' YAML extensions."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from remediator.app.cli.output import EXIT_OK, emit


def add_parser(sub: Any) -> None:
    s = sub.add_parser("schema", help="print the JSON Schema of playbook files (for editors)")
    s.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from remediator.playbooks import json_schema  # noqa: PLC0415

    emit(out, json.dumps(json_schema(), indent=2, allow_nan=False) + "\n")
    return EXIT_OK
