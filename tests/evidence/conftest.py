"""Fixtures of the evidence tests."""

from tests.support.azurite import azurite_connection_string  # noqa: F401 - registers the session fixture
