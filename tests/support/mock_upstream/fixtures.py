"""Pytest fixtures; import them into a conftest or a test module to use them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.mock_upstream import MockUpstream


@pytest.fixture
async def mock_upstream() -> AsyncIterator[MockUpstream]:
    """A fresh mock upstream on a free port, in the test's event loop."""
    async with MockUpstream() as mock:
        yield mock


@pytest.fixture
def threaded_mock_upstream() -> Iterator[MockUpstream]:
    """A fresh mock upstream on its own loop in a background thread (for sync code)."""
    mock = MockUpstream.start_in_thread()
    try:
        yield mock
    finally:
        mock.stop_in_thread()
