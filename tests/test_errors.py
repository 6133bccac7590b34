"""One way to make a message one line (``remediator.errors.one_line`` / ``error_line``), used by every
layer: the CLI, the audit, replies, doctor's checks, validation issues and Slack's text."""

from __future__ import annotations

import pytest

from remediator.errors import LINE_LIMIT, ActionError, ConfigError, error_line, one_line


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\tb", "a\x00b", "a\u2028b", "a\x85b", "a  \n  b"])
def test_control_and_line_separators_become_one_space(text: str) -> None:
    assert one_line(text) == "a b"


def test_long_text_is_cut_at_a_word_boundary_near_the_limit() -> None:
    words = " ".join(f"word{i:04d}" for i in range(500))  # 4,499 characters
    cut = one_line(words)
    assert len(cut) <= LINE_LIMIT
    assert cut.endswith("…")
    assert cut[:-1] == words[: len(cut) - 1]  # a prefix of the text ...
    assert words[len(cut) - 1] == " "  # ... that ends where a word ends


def test_a_word_longer_than_the_tail_is_cut_hard() -> None:
    assert one_line("x" * 50, 10) == "x" * 9 + "…"


def test_no_limit_keeps_everything() -> None:
    assert one_line("y " * 2000, None) == ("y " * 2000).strip()


def test_error_line_keeps_our_errors_as_they_are_and_names_other_types() -> None:
    assert error_line(ConfigError("REMEDIATOR_STORE_URL: expected a store URL")) == \
        "REMEDIATOR_STORE_URL: expected a store URL"
    assert error_line(ActionError("PATCH refused\nby ARM", action="x.y")) == "x.y: PATCH refused by ARM"
    assert error_line(TimeoutError("read timed out")) == "TimeoutError: read timed out"
    assert error_line(KeyError()) == "KeyError:"
    assert error_line(ValueError("")) == "ValueError:"
