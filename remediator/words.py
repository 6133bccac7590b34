"""Counting nouns in messages: ``plural(1, "change")`` is "1 change", ``plural(2, "change")`` "2 changes".

Every count a person reads goes through :func:`plural` (a test walks the sources for ``(s)`` and for a
count followed by a hard-coded plural), so no message says "1 changes" or "rule(s)".
"""

from __future__ import annotations

_IRREGULAR = {"entry": "entries", "policy": "policies", "identity": "identities", "property": "properties",
              "is": "are", "was": "were", "this": "these", "it": "they"}


def plural_of(noun: str) -> str:
    """The plural form of ``noun`` (English regular forms, plus the irregular ones the project uses)."""
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    return noun + "s"


def noun(n: int, singular: str, many: str | None = None) -> str:
    """``singular`` when ``n`` is 1, else its plural (``many`` when given)."""
    return singular if n == 1 else (many or plural_of(singular))


def plural(n: int, singular: str, many: str | None = None, *, sep: str = "") -> str:
    """``n`` and the noun that agrees with it: "1 change", "0 changes", "1,204 findings" (``sep=","``)."""
    count = f"{n:,}" if sep == "," else str(n)
    return f"{count} {noun(n, singular, many)}"
