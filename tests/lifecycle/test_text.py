"""Words that name people by id: built with ``say``/``people``, rendered by whoever shows them."""

from __future__ import annotations

from remediator.lifecycle.text import Mention, Text, people, say


def test_say_splices_texts_joins_strings_and_drops_empty_ones() -> None:
    who = people(["U1", "S2"])
    assert who == Text((Mention("U1"), ", ", Mention("S2")))
    assert say("a", "", "b ", who, "", " c", say("d", Mention("U3"))) == \
        Text(("ab ", Mention("U1"), ", ", Mention("S2"), " cd", Mention("U3")))
    assert say() == Text()
    assert not say("", people([]))
    assert say("x")


def test_rendering_is_the_adapters_choice() -> None:
    text = say("Only ", people(["U1", "S2"], sep=" or "), " can <approve>")
    assert text.plain() == "Only @U1 or @S2 can <approve>"
    assert str(text) == text.plain()
    assert text.render(mention=lambda m: f"[{'group' if m.group else 'user'} {m.id}]", literal=str.upper) == \
        "ONLY [user U1] OR [group S2] CAN <APPROVE>"
    assert text.mentions() == (Mention("U1"), Mention("S2"))
