"""How every command writes: the whole output at once, strict JSON, never an encoding error.

* ``emit`` writes a finished text in one go, so a failure leaves stdout empty, never cut off; when
  the stream's encoding (``PYTHONIOENCODING=ascii``, a legacy console) cannot carry the text,
  JSON is written ASCII-escaped (still valid and lossless) and other text with ``\\uXXXX``
  escapes.
* ``write_json`` is ``--output json``: strict JSON (NaN or Infinity, which only a live read could
  bring, is one error line and nothing written), through ``emit``.
* ``print_results`` and ``exit_code``: a plan's results (``plan``, ``scan --dry-run``) and
  Terraform's exit codes: 2 changes are planned, 1 an error and nothing planned, 0 nothing to change.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from remediator.errors import RemediatorError

if TYPE_CHECKING:
    from remediator.planning.names import NameResolver, Names
    from remediator.planning.result import Result

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
EXIT_USAGE = 2  # argparse's code: the command line names what does not exist (``UsageError``)


def strict_json(value: object, *, ensure_ascii: bool) -> str:
    """``--output json`` is strict JSON: NaN or Infinity (only a live read could bring one) is an error."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=ensure_ascii, allow_nan=False) + "\n"
    except ValueError as e:
        raise RemediatorError(f"cannot write JSON: {e} (a resource holds NaN or Infinity, which strict JSON "
                              "does not allow); nothing was written") from None


def emit(out: TextIO, text: str, ascii_text: Callable[[], str] | None = None) -> None:
    """Write ``text`` in one go; ``ascii_text`` is the fallback for a stream that cannot encode it
    (default: ``text`` with ``\\uXXXX`` escapes)."""
    encoding = getattr(out, "encoding", None)
    if isinstance(encoding, str):
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            text = ascii_text() if ascii_text is not None else \
                text.encode(encoding, "backslashreplace").decode(encoding)
        except LookupError:
            pass
    out.write(text)
    out.flush()


def write_json(out: TextIO, doc: object) -> None:
    """``doc`` as strict, indented JSON, written whole; ASCII-escaped when the stream needs it."""
    emit(out, strict_json(doc, ensure_ascii=False), lambda: strict_json(doc, ensure_ascii=True))


def print_results(results: Sequence[Result], output: str, out: TextIO, *, folded: int = 0,
                  names: NameResolver | None = None) -> None:
    """The whole plan, built first and written at once: a failure leaves stdout empty, never cut off.

    ``names``: ids are looked up once for the whole plan; text shows ``name (id)``, JSON keeps the ids
    and adds ``names`` (id → kind, displayName, detail) to each result that has any. A lookup that
    failed leaves the ids as they are (the resolver reports it once: ``warn``)."""
    if output == "json":
        docs = [r.to_json() for r in results]
        found = _lookup(names, [json.dumps(d, ensure_ascii=False) for d in docs], results)
        if found:
            for doc in docs:
                named = found.to_json([json.dumps(doc, ensure_ascii=False)])
                if named:
                    doc["names"] = named
        write_json(out, {"results": docs, "duplicates_folded": folded})
    else:
        text = render_results(results, folded=folded)
        found = _lookup(names, [text], results)
        emit(out, found.annotate(text) if found else text)


def _lookup(names: NameResolver | None, texts: Sequence[str], results: Sequence[Result]) -> Names | None:
    from remediator.planning.names import not_principals  # noqa: PLC0415

    if names is None:
        return None
    return names.resolve(texts, skip=not_principals(r.finding for r in results))


def warn(problem: str) -> None:
    """A name lookup that failed, as the CLI says it: one ``warning:`` line on stderr."""
    print(f"warning: {problem}", file=sys.stderr)


def render_results(results: Sequence[Result], *, folded: int = 0) -> str:
    from remediator.planning.render import render_plan  # noqa: PLC0415

    return render_plan(results, folded=folded)


def exit_code(results: Sequence[Result]) -> int:
    """2 when any change is planned (even if another record failed or a warning says something was
    not checked: the changes stand and the output lists the rest); 1 when nothing could be planned
    and some record failed; 0 otherwise."""
    if any(r.outcome == "changes" for r in results):
        return EXIT_CHANGES
    return EXIT_ERROR if any(r.outcome == "error" for r in results) else EXIT_OK
