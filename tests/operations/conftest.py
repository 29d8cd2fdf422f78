from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.operations import OperationStore
from engine.store import Database
from engine.store.migrate import upgrade


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[OperationStore]:
    db = Database(database_url)
    await upgrade(db)
    try:
        yield OperationStore(db)
    finally:
        await db.close()
