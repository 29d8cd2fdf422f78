"""Knowledge bases at work: ingest documents (parse -> chunk -> embed -> store),
list and delete them, and search (vector, or hybrid with reciprocal rank fusion).

Each knowledge base's vector store is opened once and kept; a KB whose
backend or embedding settings change gets a fresh one.

Every (re)ingestion of a document is a new generation, stored in the vector
store under `<document id>@<generation>` (the client-facing id stays in the
chunk's `document_id` metadata). Replacing a document stores the new
generation first and deletes the old one only after: a failed replacement
loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col, select

from engine.errors import InvalidRequest, NotFound
from engine.knowledge.filters import Condition, Filter, Group, parse_filter
from engine.knowledge.store import Chunk, Hit, VectorStore
from engine.logs import get_logger
from engine.schemas.knowledge import (
    LOCAL_EMBEDDING_MODEL,
    ChunkingSpec,
    KnowledgeBaseSpec,
    SearchRequest,
)
from engine.store.db import Database
from engine.store.tables import DocumentRow
from engine.store.types import utcnow
from engine.validation import invalid_from

log = get_logger("headrace.knowledge")

RRF_K = 60  # the usual reciprocal rank fusion constant
EmbedFn = Callable[[Any], Awaitable[tuple[dict[str, Any], Any]]]
Reranker = Callable[[str, list[Hit]], Awaitable[list[Hit]]]


def filter_from(data: Any, param: str = "filter") -> Filter | None:
    """A request's filter, or a 400 naming what is wrong with it."""
    try:
        return parse_filter(data)
    except ValidationError as error:
        raise invalid_from(error, prefix=param) from None
    except ValueError as error:
        raise InvalidRequest(f"{param}: {error}", param=param) from None


def fuse(rankings: list[list[Hit]], top_k: int) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over lists of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    best: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (RRF_K + rank)
            best.setdefault(hit.id, hit)
    ordered = sorted(scores, key=lambda i: scores[i], reverse=True)[:top_k]
    return [Hit(h.id, h.document_id, h.chunk_index, h.content, round(scores[i], 6), h.metadata)
            for i in ordered if (h := best[i])]


def _public(hit: Hit) -> Hit:
    """The hit as clients see it: the document id without the stored generation."""
    document_id = hit.metadata.get("document_id") or hit.document_id.rsplit("@", 1)[0]
    metadata = {k: v for k, v in hit.metadata.items() if k != "generation"}
    return Hit(hit.id, str(document_id), hit.chunk_index, hit.content, hit.score, metadata)


def document_body(row: DocumentRow) -> dict[str, Any]:
    return {"id": row.id, "object": "document", "knowledge_base_id": row.kb_id,
            "name": row.name, "source": row.source, "content_type": row.content_type,
            "status": row.status, "error": row.error, "chunk_count": row.chunk_count,
            "metadata": row.metadata_, "created_at": row.created_at,
            "updated_at": row.updated_at}


def document_id_for(name: str) -> str:
    """A stable id from a document's name (for sources that give none)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "document"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@dataclass
class Opened:
    fingerprint: str
    store: VectorStore


class KnowledgeService:
    def __init__(self, db: Database, data_dir: Path, embed: EmbedFn, *,
                 default_pg_url: str | None = None, reranker: Reranker | None = None):
        self.db = db
        self.data_dir = data_dir
        self.embed_fn = embed
        self.default_pg_url = default_pg_url
        self.reranker = reranker
        self._stores: dict[str, Opened] = {}
        self._local_embedder: Any = None
        self._lock = asyncio.Lock()
        # The embedded store is files in one process's data directory: a distributed
        # worker (another process, maybe another machine) must not open its own copy.
        self.embedded_stores = True

    # --- stores and embedders ---------------------------------------------------------

    async def store(self, spec: KnowledgeBaseSpec) -> VectorStore:
        fingerprint = orjson.dumps([spec.backend.model_dump(), spec.embedding.dimensions,
                                    spec.distance]).decode()
        opened = self._stores.get(spec.id)
        if opened is not None and opened.fingerprint == fingerprint:
            return opened.store
        async with self._lock:
            opened = self._stores.get(spec.id)
            if opened is not None and opened.fingerprint == fingerprint:
                return opened.store
            if opened is not None:
                await opened.store.aclose()
            store = self._open(spec)
            await store.create()
            self._stores[spec.id] = Opened(fingerprint, store)
            return store

    def _open(self, spec: KnowledgeBaseSpec) -> VectorStore:
        backend, dims, distance = spec.backend, spec.embedding.dimensions, spec.distance
        if backend.type == "embedded":
            if not self.embedded_stores:
                raise InvalidRequest(
                    f"knowledge base {spec.id} is on the embedded store, which only the API "
                    "process opens; distributed workers need pgvector or qdrant",
                    param="backend", code="embedded_store_not_shared")
            from connectors.vector.embedded import EmbeddedStore

            return EmbeddedStore(self.data_dir / "knowledge", spec.id, dims, distance)
        if backend.type == "pgvector":
            from connectors.vector.pgvector import PgVectorStore

            url = backend.url or self.default_pg_url
            if not url:
                raise InvalidRequest("backend.url: pgvector needs a PostgreSQL URL (Headrace's "
                                     "own database is not PostgreSQL)", param="backend.url")
            return PgVectorStore(url, spec.id, dims, distance)
        from qdrant_client import AsyncQdrantClient

        from connectors.vector.qdrant import QdrantStore

        client = (AsyncQdrantClient(url=backend.url) if backend.url
                  else AsyncQdrantClient(path=str(self.data_dir / "qdrant" / spec.id)))
        return QdrantStore(client, spec.id, dims, distance)

    async def forget(self, kb_id: str, *, drop: bool) -> None:
        opened = self._stores.pop(kb_id, None)
        if opened is not None:
            if drop:
                await opened.store.drop()
            await opened.store.aclose()

    async def embed(self, spec: KnowledgeBaseSpec, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if spec.embedding.model == LOCAL_EMBEDDING_MODEL:
            if self._local_embedder is None:
                from engine.knowledge.embedding import LocalMiniLM

                self._local_embedder = LocalMiniLM()
            return await self._local_embedder.embed(texts)
        from engine.knowledge.embedding import GatewayEmbedder

        embedder = GatewayEmbedder(self._gateway_call, spec.embedding.model,
                                   spec.embedding.dimensions,
                                   batch_size=spec.embedding.batch_size,
                                   concurrency=spec.embedding.concurrency)
        return await embedder.embed(texts)

    async def _gateway_call(self, request: Any) -> dict[str, Any]:
        result, _report = await self.embed_fn(request)
        return result

    # --- documents ----------------------------------------------------------------------

    async def ingest(self, spec: KnowledgeBaseSpec, data: bytes, *, name: str, source: str,
                     content_type: str | None, metadata: dict[str, Any],
                     document_id: str | None = None, chunking: ChunkingSpec | None = None,
                     etag: str | None = None) -> DocumentRow:
        from engine.knowledge.chunking import ChunkingSettings, chunk_async
        from engine.knowledge.parsing import parse_async

        document_id = document_id or document_id_for(name)
        parsed = await parse_async(data, filename=name, content_type=content_type)
        settings = ChunkingSettings.model_validate((chunking or spec.chunking).model_dump())
        pieces = await chunk_async(parsed, settings, metadata=metadata)
        existing = await self._get_row(spec.id, document_id, missing_ok=True)
        generation = (existing.generation + 1) if existing else 1
        vectors = await self.embed(spec, [p.text for p in pieces])
        store = await self.store(spec)
        stored_as = f"{document_id}@{generation}"
        chunks = [
            Chunk(id=f"{stored_as}:{p.chunk_index}", document_id=stored_as,
                  chunk_index=p.chunk_index, content=p.text, vector=vector,
                  metadata={**p.metadata, "document_id": document_id,
                            "generation": generation})
            for p, vector in zip(pieces, vectors, strict=True)
        ]
        await store.upsert(chunks)
        if existing is not None:  # the new chunks are stored; now drop the old ones
            await store.delete_document(f"{document_id}@{existing.generation}")
        now = utcnow()
        row = DocumentRow(
            kb_id=spec.id, id=document_id, name=name[:512], source=source[:2048],
            content_type=content_type or parsed.metadata.get("content_type"), etag=etag,
            status="ready", error=None, generation=generation, chunk_count=len(chunks),
            metadata_={**parsed.metadata, **metadata},
            created_at=existing.created_at if existing else now, updated_at=now,
        )
        async with self.db.transaction() as session:
            await session.merge(row)
        return row

    @staticmethod
    def _probe(dimensions: int) -> list[float]:
        return [1.0] + [0.0] * (dimensions - 1)

    async def chunks_of(self, spec: KnowledgeBaseSpec, row: DocumentRow) -> list[Hit]:
        """A document's chunks in order (a filtered search over its generation)."""
        store = await self.store(spec)
        only = Group(operator="AND", conditions=[
            Condition(field="document_id", operator="eq", value=row.id),
            Condition(field="generation", operator="eq", value=row.generation)])
        hits = await store.search(self._probe(spec.embedding.dimensions),
                                  top_k=max(row.chunk_count, 1), filter=only)
        return sorted((_public(h) for h in hits), key=lambda h: h.chunk_index)

    async def _get_row(self, kb_id: str, document_id: str, *,
                       missing_ok: bool = False) -> DocumentRow | None:
        async with self.db.session() as session:
            row = await session.get(DocumentRow, (kb_id, document_id))
        if row is None and not missing_ok:
            raise NotFound(f"document '{document_id}' not found in knowledge base '{kb_id}'")
        return row

    async def unchanged(self, kb_id: str, document_id: str, etag: str | None) -> bool:
        """Whether the document is stored, ready, from exactly this content."""
        if not etag:
            return False
        row = await self._get_row(kb_id, document_id, missing_ok=True)
        return row is not None and row.status == "ready" and row.etag == etag

    async def get_document(self, kb_id: str, document_id: str) -> DocumentRow:
        row = await self._get_row(kb_id, document_id)
        assert row is not None
        return row

    async def list_documents(self, kb_id: str, *, limit: int, offset: int
                             ) -> tuple[list[DocumentRow], int]:
        query = select(DocumentRow).where(DocumentRow.kb_id == kb_id)
        async with self.db.session() as session:
            total = (await session.exec(
                select(sa.func.count()).select_from(query.subquery()))).one()
            rows = (await session.exec(query.order_by(col(DocumentRow.id))
                                       .limit(limit).offset(offset))).all()
        return list(rows), total

    async def delete_document(self, spec: KnowledgeBaseSpec, document_id: str) -> DocumentRow:
        row = await self.get_document(spec.id, document_id)
        store = await self.store(spec)
        await store.delete_document(f"{document_id}@{row.generation}")
        async with self.db.transaction() as session:
            await session.exec(sa.delete(DocumentRow).where(
                (col(DocumentRow.kb_id) == spec.id) & (col(DocumentRow.id) == document_id)))
        return row

    async def delete_all(self, spec: KnowledgeBaseSpec) -> None:
        """When a knowledge base is deleted: its documents and its store."""
        async with self.db.transaction() as session:
            await session.exec(sa.delete(DocumentRow).where(col(DocumentRow.kb_id) == spec.id))
        try:
            await self.store(spec)
        except Exception as error:  # an unreachable backend must not block the delete
            log.warning("could not open the store to drop it", kb=spec.id,
                        error=f"{type(error).__name__}: {error}"[:300])
            return
        await self.forget(spec.id, drop=True)

    async def stats(self, spec: KnowledgeBaseSpec) -> dict[str, Any]:
        _, documents = await self.list_documents(spec.id, limit=1, offset=0)
        try:
            store = await self.store(spec)
            health = await store.health()
            chunks = await store.count()
        except Exception as error:
            return {"document_count": documents, "chunk_count": None,
                    "health": {"ok": False, "detail": f"{type(error).__name__}: {error}"[:300]}}
        return {"document_count": documents, "chunk_count": chunks,
                "health": {"ok": health.ok, "detail": health.detail}}

    # --- search --------------------------------------------------------------------------

    async def search(self, spec: KnowledgeBaseSpec, request: SearchRequest) -> list[Hit]:
        flt = filter_from(request.filter)
        store = await self.store(spec)
        [vector] = await self.embed(spec, [request.query])
        if not request.hybrid:
            hits = await store.search(vector, top_k=request.top_k, filter=flt,
                                      similarity_threshold=request.similarity_threshold)
        else:
            depth = max(request.top_k * 4, 50)
            semantic, keyword = await asyncio.gather(
                store.search(vector, top_k=depth, filter=flt,
                             similarity_threshold=request.similarity_threshold),
                store.keyword_search(request.query, top_k=depth, filter=flt),
            )
            hits = fuse([semantic, keyword], request.top_k)
        hits = [_public(h) for h in hits]
        if self.reranker is not None:
            hits = (await self.reranker(request.query, hits))[: request.top_k]
        return hits

    async def aclose(self) -> None:
        for kb_id in list(self._stores):
            await self.forget(kb_id, drop=False)
