from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from engine.operations import OperationStore
from engine.store import Database
from engine.store.migrate import upgrade


@asynccontextmanager
async def migrated_store(url: str) -> AsyncIterator[OperationStore]:
    db = Database(url)
    await upgrade(db)
    try:
        yield OperationStore(db)
    finally:
        await db.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[OperationStore]:
    """On SQLite and on PostgreSQL."""
    async with migrated_store(database_url) as operations:
        yield operations


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[OperationStore]:
    """On PostgreSQL only (the distributed mode's queue lives there)."""
    async with migrated_store(postgres_url) as operations:
        yield operations
