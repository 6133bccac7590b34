"""Control ids a playbook may name (``controls:``): ``<FRAMEWORK> <ID>``, one space between.

=============  ====================================  ===================================
framework      id                                    examples
=============  ====================================  ===================================
MCSB           <domain>-<n>, domains AM BR DP DS ES  NS-2, IM-1, PA-7, DP-3
               GS IM IR LT NS PA PV (benchmark v1)
NIST-AI-RMF    GOVERN|MAP|MEASURE|MANAGE-<n>[.<n>]   MANAGE-2.4, MAP-1.1
ISO27001       A.5.1-37, A.6.1-8, A.7.1-14, A.8.1-34  A.8.20, A.5.15
               (ISO/IEC 27001:2022 Annex A)
NIST-800-53    <family>-<n>[(<n>)]                   AC-6, AC-6(1), SC-7
GDPR           Art.<n>[(<n>)]                        Art.32, Art.25(2)
=============  ====================================  ===================================

Anything else is refused with one line naming the valid frameworks and an example of each.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ISO_RANGES = {5: 37, 6: 8, 7: 14, 8: 34}


def _iso(ident: str) -> str | None:
    m = re.fullmatch(r"A\.([5-8])\.([0-9]{1,2})", ident)
    if m is None:
        return "expected A.<clause>.<n> of ISO/IEC 27001:2022 Annex A, such as A.8.20"
    clause, n = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= _ISO_RANGES[clause]:
        return f"Annex A clause {clause} has controls A.{clause}.1 to A.{clause}.{_ISO_RANGES[clause]}"
    return None


def _pattern(regex: str, expected: str) -> Callable[[str], str | None]:
    compiled = re.compile(regex)
    return lambda ident: None if compiled.fullmatch(ident) else expected


# framework → (id check returning a problem or None, example id, JSON Schema pattern of the id)
FRAMEWORKS: dict[str, tuple[Callable[[str], str | None], str, str]] = {
    "MCSB": (_pattern(r"(AM|BR|DP|DS|ES|GS|IM|IR|LT|NS|PA|PV)-[1-9][0-9]?",
                      "expected <domain>-<n> with a Microsoft cloud security benchmark domain (AM, BR, DP, DS, ES, "
                      "GS, IM, IR, LT, NS, PA, PV), such as NS-2"),
             "NS-2", r"(AM|BR|DP|DS|ES|GS|IM|IR|LT|NS|PA|PV)-[1-9][0-9]?"),
    "NIST-AI-RMF": (_pattern(r"(GOVERN|MAP|MEASURE|MANAGE)-[1-9](\.[1-9][0-9]?)?",
                             "expected GOVERN, MAP, MEASURE or MANAGE-<n>[.<n>], such as MANAGE-2.4"),
                    "MANAGE-2.4", r"(GOVERN|MAP|MEASURE|MANAGE)-[1-9](\.[1-9][0-9]?)?"),
    "ISO27001": (_iso, "A.8.20",
                 r"A\.(5\.([1-9]|[12][0-9]|3[0-7])|6\.[1-8]|7\.([1-9]|1[0-4])|8\.([1-9]|[12][0-9]|3[0-4]))"),
    "NIST-800-53": (_pattern(r"[A-Z]{2}-[1-9][0-9]?(\([1-9][0-9]?\))?",
                             "expected <family>-<n>[(<n>)], such as AC-6(1)"),
                    "AC-6", r"[A-Z]{2}-[1-9][0-9]?(\([1-9][0-9]?\))?"),
    "GDPR": (_pattern(r"Art\.[1-9][0-9]?(\([1-9][0-9]?\))?", "expected Art.<n>[(<n>)], such as Art.32"),
             "Art.32", r"Art\.[1-9][0-9]?(\([1-9][0-9]?\))?"),
}
CONTROL_PATTERN = "^(" + "|".join(f"{re.escape(name)} {pattern}" for name, (_, _, pattern) in FRAMEWORKS.items()) + ")$"
VALID = ", ".join(f"{name} (e.g. {name} {example})" for name, (_, example, _) in FRAMEWORKS.items())


def control_problem(value: str) -> str | None:
    """Why ``value`` is not a control id (one line), or None."""
    framework, sep, ident = value.partition(" ")
    check = FRAMEWORKS.get(framework)
    if check is None or not sep:
        close = next((name for name in FRAMEWORKS if name.lower() == framework.lower()), None)
        hint = f"; frameworks are upper-case: {close!r}" if close and close != framework else ""
        return f"expected '<FRAMEWORK> <ID>' with a framework of {VALID}, got {value!r}{hint}"
    problem = check[0](ident)
    return None if problem is None else f"{framework} control {ident!r}: {problem}"


def framework_of(control: str) -> str:
    return control.partition(" ")[0]
