"""The core's words (``remediator.lifecycle.text``) as Slack renders them: mentions become Slack's
tokens here, in the adapter, and nothing else in them can mention or link anyone."""

from __future__ import annotations

from bot import blocks
from remediator.lifecycle.approval import Need
from remediator.lifecycle.text import Mention, people, say


def test_mentions_become_slack_tokens() -> None:
    assert blocks.markup(say(Mention("U05K8NQ2R7T"))) == "<@U05K8NQ2R7T>"
    assert blocks.markup(say(Mention("W05K8NQ2R7T"))) == "<@W05K8NQ2R7T>"
    assert blocks.markup(say(Mention("S0614TZR7"))) == "<!subteam^S0614TZR7>"
    assert blocks.markup("already mrkdwn") == "already mrkdwn"
    assert blocks.notice(say("Only ", people(["U05K8NQ2R7T"]), " or members of ", Mention("S0614TZR7"),
                             " can approve this")) == \
        "Only <@U05K8NQ2R7T> or members of <!subteam^S0614TZR7> can approve this"


def test_a_need_reads_as_before() -> None:
    need = Need(approvers=("S0614TZR7", "U05K8NQ2R7T"), quorum=2, narrowed_to=("S0SECURITY1",),
                approved_by=("U05K8NQ2R7T",))
    assert blocks.markup(need.text()) == ("1 of 2 approvals from <!subteam^S0614TZR7>, <@U05K8NQ2R7T> (who must also "
                                          "be in <!subteam^S0SECURITY1>); approved by <@U05K8NQ2R7T>")


def test_only_well_formed_ids_mention_and_literal_words_are_escaped() -> None:
    hostile = say("x <!channel> & ", Mention("<!here>"), " ", Mention("u1"), " ", Mention("S0614TZR7> <!channel"))
    text = blocks.notice(hostile)
    assert "<!channel>" not in text
    assert "<!here>" not in text
    assert text == ("x &lt;!channel&gt; &amp; &lt;@&lt;!here&gt;&gt; &lt;@u1&gt; <!subteam^S0614TZR7> "
                    "&lt;!channel&gt;")
