"""The scenarios' Slack stack: the ``world`` and ``server`` fixtures of tests/bot/world.py."""

from tests.bot.world import server, world  # noqa: F401 - the shared fixtures
