"""PostgreSQL + pgvector backend: one table per knowledge base.

Table `kb_<sanitised id>_<hash>_chunks` (the hash keeps distinct ids that
sanitise alike apart): `id` text primary key, `document_id` (btree index),
`chunk_index`, `content`, `metadata` jsonb, `embedding vector(dimensions)`
(HNSW index, opclass per distance) and `tsv`, a generated `tsvector` of the
content ('simple' configuration, GIN index) for keyword search.

Filters are compiled into a parameterised `WHERE` over the `metadata` jsonb
column: field paths, values and patterns are all bind parameters, never
interpolated (the `# noqa: S608` lines interpolate only the table name, made of
[a-z0-9_] by `table_base`, and compiled filter SQL, which holds only bind
placeholders). The semantics (missing fields, typing, arrays) are those in
`connectors.vector`'s docstring; each condition is wrapped in
`COALESCE(..., false)` so SQL NULLs never leak into `NOT`.

Scores follow `engine.knowledge.store`: cosine similarity (`1 - (a <=> b)`),
`1 / (1 + (a <-> b))` for euclidean, the dot product (`-(a <#> b)`) for inner
product. Searches run in a transaction that sets `hnsw.ef_search` to
`max(100, 4 * top_k)` and, with a filter, `hnsw.iterative_scan = relaxed_order`
(pgvector >= 0.8) so filtered queries still fill `top_k`; results are
re-sorted after the relaxed scan.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from engine.errors import InvalidRequest
from engine.knowledge.filters import Condition, Filter, Group
from engine.knowledge.store import Chunk, Distance, Health, Hit, check_query_vector
from engine.settings import normalise_database_url

# distance operator, HNSW opclass, SQL turning the distance `d` into the common score
_DISTANCES: dict[str, tuple[str, str, str]] = {
    "cosine": ("<=>", "vector_cosine_ops", "1 - ({d})"),
    "euclidean": ("<->", "vector_l2_ops", "1 / (1 + ({d}))"),
    "inner_product": ("<#>", "vector_ip_ops", "-({d})"),
}
_NUMERIC_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
# Measured (benchmarks/knowledge.py, 100k x 384): ef_search 40 gave recall@10 0.93;
# the target is 0.95, which needs a wider candidate list.
_MIN_EF_SEARCH = 100


def table_base(kb_id: str) -> str:
    """A safe identifier stem for a knowledge base (only [a-z0-9_], <= 44 chars)."""
    sanitised = re.sub(r"[^a-z0-9_]", "_", kb_id.lower())[:32]
    digest = hashlib.sha1(kb_id.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"kb_{sanitised}_{digest}"


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _FilterCompiler:
    """Turns a filter tree into SQL text plus bind parameters."""

    def __init__(self, column: str = "metadata") -> None:
        self.column = column
        self.params: dict[str, Any] = {}

    def _bind(self, value: Any) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def compile(self, node: Filter) -> str:
        if isinstance(node, Group):
            joiner = " AND " if node.operator == "AND" else " OR "
            return "(" + joiner.join(self.compile(c) for c in node.conditions) + ")"
        return self._condition(node)

    def _condition(self, cond: Condition) -> str:
        op = cond.operator
        negated = op in ("ne", "notIn", "notExists")
        positive = {"ne": "eq", "notIn": "in", "notExists": "exists"}.get(op, op)
        # `-> text` per segment: on an array it yields NULL, where `#>` would treat a
        # numeric segment ("tags.0") as an index; paths never descend into arrays.
        x = "(" + self.column + "".join(f" -> CAST({self._bind(p)} AS text)"
                                        for p in cond.path) + ")"
        sql = f"COALESCE(({self._positive(positive, x, cond.value)}), false)"
        return f"(NOT {sql})" if negated else sql

    def _eq(self, x: str, value: Any) -> str:
        if isinstance(value, bool):
            return f"jsonb_typeof({x}) = 'boolean' AND CAST({x} AS boolean) = {self._bind(value)}"
        if isinstance(value, int | float):
            return (f"jsonb_typeof({x}) = 'number' AND "
                    f"CAST({x} #>> '{{}}' AS numeric) = CAST({self._bind(str(value))} AS numeric)")
        return f"jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') = {self._bind(str(value))}"

    def _positive(self, op: str, x: str, value: Any) -> str:
        text = f"({x} #>> '{{}}')"
        if op == "eq":
            return self._eq(x, value)
        if op == "in":
            return " OR ".join(f"({self._eq(x, v)})" for v in value)
        if op in _NUMERIC_OPS:
            sym = _NUMERIC_OPS[op]
            if isinstance(value, int | float):
                return (f"jsonb_typeof({x}) = 'number' AND "
                        f"CAST({text} AS numeric) {sym} CAST({self._bind(str(value))} AS numeric)")
            return (f"jsonb_typeof({x}) = 'string' AND "
                    f"{text} COLLATE \"C\" {sym} CAST({self._bind(value)} AS text) COLLATE \"C\"")
        if op == "contains":
            return (f"(jsonb_typeof({x}) = 'string' AND strpos({text}, "
                    f"CAST({self._bind(value)} AS text)) > 0) OR (jsonb_typeof({x}) = 'array' AND "
                    f"{x} @> jsonb_build_array(CAST({self._bind(value)} AS text)))")
        if op == "startsWith":
            pattern = self._bind(_like_escape(value) + "%")
            return f"jsonb_typeof({x}) = 'string' AND {text} LIKE {pattern} ESCAPE '\\'"
        if op == "endsWith":
            pattern = self._bind("%" + _like_escape(value))
            return f"jsonb_typeof({x}) = 'string' AND {text} LIKE {pattern} ESCAPE '\\'"
        if op == "exists":
            return f"jsonb_typeof({x}) <> 'null' AND {x} <> CAST('[]' AS jsonb)"
        raise InvalidRequest(f"unknown filter operator {op!r}", param="filter")


def compile_filter(node: Filter | None) -> tuple[str, dict[str, Any]]:
    """SQL condition (``TRUE`` for no filter) and its bind parameters."""
    if node is None:
        return "TRUE", {}
    compiler = _FilterCompiler()
    return compiler.compile(node), compiler.params


class PgVectorStore:
    """One knowledge base's chunks in a PostgreSQL table with pgvector."""

    def __init__(self, url_or_engine: str | AsyncEngine, kb_id: str, dimensions: int,
                 distance: Distance) -> None:
        if distance not in _DISTANCES:
            raise InvalidRequest(f"unknown distance {distance!r}", param="distance")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 16000:
            raise InvalidRequest("dimensions must be an integer between 1 and 16000",
                                 param="dimensions")
        if isinstance(url_or_engine, AsyncEngine):
            self._engine, self._owns_engine = url_or_engine, False
        else:
            self._engine = create_async_engine(
                normalise_database_url(url_or_engine), pool_size=5, max_overflow=5,
                pool_pre_ping=True)
            self._owns_engine = True
        self.kb_id = kb_id
        self.dimensions = dimensions
        self.distance = distance
        base = table_base(kb_id)
        self._base = base
        self.table = f'"{base}_chunks"'
        self._op, self._opclass, score = _DISTANCES[distance]
        self._distance_sql = f"(embedding {self._op} CAST(CAST(:q AS text) AS vector))"
        self._score_sql = score.format(d=self._distance_sql)

    # --- lifecycle ---------------------------------------------------------------------

    async def create(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
        b, t = self._base, self.table
        statements = [
            f"""CREATE TABLE IF NOT EXISTS {t} (
                id text PRIMARY KEY,
                document_id text NOT NULL,
                chunk_index integer NOT NULL,
                content text NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{{}}',
                embedding vector({int(self.dimensions)}) NOT NULL,
                tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED)""",
            f'CREATE INDEX IF NOT EXISTS "{b}_doc" ON {t} (document_id)',
            f'CREATE INDEX IF NOT EXISTS "{b}_tsv" ON {t} USING gin (tsv)',
            f'CREATE INDEX IF NOT EXISTS "{b}_hnsw" ON {t} USING hnsw (embedding {self._opclass})',
        ]
        async with self._engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))

    async def drop(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE IF EXISTS {self.table}"))

    async def aclose(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def health(self) -> Health:
        try:
            async with self._engine.connect() as conn:
                found = (await conn.execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"),
                                            {"t": self.table})).scalar()
        except Exception as exc:  # any connection or driver failure is "unhealthy"
            return Health(ok=False, detail=f"{type(exc).__name__}: {exc}")
        if not found:
            return Health(ok=False, detail=f"table {self.table} does not exist")
        return Health(ok=True)

    # --- writes ------------------------------------------------------------------------

    async def upsert(self, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        rows = []
        for chunk in chunks:
            if len(chunk.vector) != self.dimensions:
                raise InvalidRequest(
                    f"chunk {chunk.id!r} has {len(chunk.vector)} dimensions, "
                    f"expected {self.dimensions}", param="vector")
            rows.append({"id": chunk.id, "document_id": chunk.document_id,
                         "chunk_index": chunk.chunk_index, "content": chunk.content,
                         "metadata": json.dumps(chunk.metadata),
                         "q": _vector_literal(chunk.vector)})
        sql = sa.text(
            f"INSERT INTO {self.table} (id, document_id, chunk_index, content, metadata, embedding)"  # noqa: S608
            " VALUES (:id, :document_id, :chunk_index, :content, CAST(:metadata AS jsonb),"
            " CAST(CAST(:q AS text) AS vector))"
            " ON CONFLICT (id) DO UPDATE SET document_id = EXCLUDED.document_id,"
            " chunk_index = EXCLUDED.chunk_index, content = EXCLUDED.content,"
            " metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding")
        async with self._engine.begin() as conn:
            await conn.execute(sql, rows)

    async def delete_document(self, document_id: str) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.text(f"DELETE FROM {self.table} WHERE document_id = :d"),  # noqa: S608
                {"d": document_id})
            return result.rowcount

    # --- reads -------------------------------------------------------------------------

    async def count(self, filter: Filter | None = None) -> int:
        where, params = compile_filter(filter)
        async with self._engine.connect() as conn:
            result = await conn.execute(
                sa.text(f"SELECT count(*) FROM {self.table} WHERE {where}"),  # noqa: S608
                params)
            return int(result.scalar_one())

    async def search(self, vector: list[float], *, top_k: int, filter: Filter | None = None,
                     similarity_threshold: float | None = None) -> list[Hit]:
        check_query_vector(vector, self.dimensions)
        if top_k < 1:
            return []
        where, params = compile_filter(filter)
        params.update(q=_vector_literal(vector), k=int(top_k))
        if similarity_threshold is not None:
            where += f" AND {self._score_sql} >= :threshold"
            params["threshold"] = float(similarity_threshold)
        sql = sa.text(
            f"SELECT id, document_id, chunk_index, content, metadata, {self._score_sql} AS score"  # noqa: S608
            f" FROM {self.table} WHERE {where} ORDER BY {self._distance_sql} LIMIT :k")
        ef_search = str(min(_MAX_EF_SEARCH, max(_MIN_EF_SEARCH, top_k * 4)))
        async with self._engine.begin() as conn:
            await conn.execute(sa.text("SELECT set_config('hnsw.ef_search', :v, true)"),
                               {"v": ef_search})
            if filter is not None:
                await conn.execute(
                    sa.text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
            rows = (await conn.execute(sql, params)).all()
        hits = [self._hit(row) for row in rows]
        hits.sort(key=lambda h: h.score, reverse=True)  # relaxed_order may swap neighbours
        return hits

    async def keyword_search(self, query: str, *, top_k: int,
                             filter: Filter | None = None) -> list[Hit]:
        if top_k < 1 or not query.strip():
            return []
        where, params = compile_filter(filter)
        params.update(query=query, k=int(top_k))
        sql = sa.text(
            "WITH q AS (SELECT websearch_to_tsquery('simple', :query) AS tsq)"  # noqa: S608
            " SELECT id, document_id, chunk_index, content, metadata,"
            " ts_rank_cd(tsv, q.tsq) AS score"
            f" FROM {self.table}, q WHERE tsv @@ q.tsq AND {where}"
            " ORDER BY score DESC, id LIMIT :k")
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sql, params)).all()
        return [self._hit(row) for row in rows]

    @staticmethod
    def _hit(row: Any) -> Hit:
        metadata = row.metadata
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        return Hit(id=row.id, document_id=row.document_id, chunk_index=row.chunk_index,
                   content=row.content, score=float(row.score), metadata=metadata)
