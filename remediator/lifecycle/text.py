"""Words for a person that name people by their Slack ids: the core says them, adapters render them.

A ``Text`` is literal strings and ``Mention``s (a user ``U…``/``W…`` or a user group ``S…``, ids
that were validated where they were configured). The core never writes a mention's markup:
``bot/`` renders ``<@U…>`` and ``<!subteam^S…>`` and escapes the literal parts, the terminal
prints ``@U…`` (``Text.plain``), and the audit records the plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mention:
    """A Slack user or user group, by id."""

    id: str

    @property
    def group(self) -> bool:
        return self.id.startswith("S")


Part = str | Mention


@dataclass(frozen=True, slots=True)
class Text:
    """Literal strings and mentions, in order (build one with ``say``)."""

    parts: tuple[Part, ...] = ()

    def render(self, *, mention: Callable[[Mention], str], literal: Callable[[str], str] = str) -> str:
        return "".join(literal(p) if isinstance(p, str) else mention(p) for p in self.parts)

    def plain(self) -> str:
        """As a terminal or a log shows it: ``Only @U1 or members of @S2 can approve this``."""
        return self.render(mention=lambda m: f"@{m.id}")

    def mentions(self) -> tuple[Mention, ...]:
        return tuple(p for p in self.parts if isinstance(p, Mention))

    def __str__(self) -> str:
        return self.plain()

    def __bool__(self) -> bool:
        return bool(self.parts)


def say(*parts: Part | Text) -> Text:
    """One ``Text`` of ``parts`` (texts are spliced in; adjacent strings join, empty ones go)."""
    out: list[Part] = []
    for part in parts:
        for p in part.parts if isinstance(part, Text) else (part,):
            if isinstance(p, str):
                if not p:
                    continue
                if out and isinstance(out[-1], str):
                    out[-1] += p
                    continue
            out.append(p)
    return Text(tuple(out))


def people(slack_ids: Iterable[str], *, sep: str = ", ") -> Text:
    """Mentions of ``slack_ids`` separated by ``sep``: ``@U1, @S2``."""
    out: list[Part | Text] = []
    for i, slack_id in enumerate(slack_ids):
        if i:
            out.append(sep)
        out.append(Mention(slack_id))
    return say(*out)
