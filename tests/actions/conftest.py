"""The action tests' shared fixture: an empty FakeArm (a test module seeds its own where it needs one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from remediator.testing import FakeArm


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        yield fake
