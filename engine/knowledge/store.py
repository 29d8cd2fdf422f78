"""The interface every vector backend implements (embedded default, pgvector, Qdrant).

A backend stores chunks of one knowledge base: a vector, the chunk's text and
its metadata (document + caller metadata, plus `document_id`, `chunk_index`,
`total_chunks`, offsets). Scores are "higher is better" and mean the same on
every backend: for cosine, the cosine similarity; for euclidean, `1 / (1 + d)`;
for inner product, the dot product. So one `similarity_threshold` works
everywhere. Filters (`engine.knowledge.filters.Filter`) are translated by each
backend into its native form, never applied by fetching everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from engine.errors import InvalidRequest
from engine.knowledge.filters import Filter

Distance = Literal["cosine", "euclidean", "inner_product"]


def check_query_vector(vector: list[float], dimensions: int) -> None:
    """A query vector of the wrong size is the caller's mistake (400), on every backend."""
    if len(vector) != dimensions:
        raise InvalidRequest(f"query vector has {len(vector)} dimensions, "
                             f"expected {dimensions}", param="vector")


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str  # unique within the knowledge base (e.g. f"{document_id}:{chunk_index}")
    document_id: str
    chunk_index: int
    content: str
    vector: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    document_id: str
    chunk_index: int
    content: str
    score: float
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str | None = None


class VectorStore(Protocol):
    """One knowledge base's chunks in one backend."""

    async def create(self) -> None:
        """Create the collection/table/index if absent (idempotent)."""

    async def drop(self) -> None:
        """Remove the collection and everything in it."""

    async def upsert(self, chunks: list[Chunk]) -> None: ...

    async def delete_document(self, document_id: str) -> int:
        """Delete a document's chunks; returns how many were deleted."""

    async def search(self, vector: list[float], *, top_k: int,
                     filter: Filter | None = None,
                     similarity_threshold: float | None = None) -> list[Hit]:
        """Nearest chunks, best first, filtered natively."""

    async def keyword_search(self, query: str, *, top_k: int,
                             filter: Filter | None = None) -> list[Hit]:
        """BM25/full-text ranked chunks for hybrid retrieval (score: the backend's
        keyword score, only comparable within one result list)."""

    async def count(self, filter: Filter | None = None) -> int: ...

    async def health(self) -> Health: ...

    async def aclose(self) -> None: ...
