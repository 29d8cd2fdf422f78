"""Embedded default vector backend: Qdrant's engine in-process (`qdrant-edge-py`).

No server: each knowledge base is one Qdrant Edge shard in the directory
`<path>/<kb_id>` (the app passes `<data_dir>/knowledge`). Chosen by measurement
(`benchmarks/embedded_vector_choice.md`): at 100k x 384 it answers top-10 in
about 1 ms (filtered under 1 ms) with recall@10 >= 0.99, far inside the target
(p50 <= 10 ms, recall@10 >= 0.95); LanceDB needed 4-10 ms and sqlite-vec
(brute force) 50-80 ms.

Points: ids are `uuid5(namespace, chunk id)`; the payload holds `chunk_id`,
`document_id`, `chunk_index`, `content`, the caller `metadata` (returned
as-is) and `_f`, a typed *filter view* of the metadata that makes every filter
operator native and exact (see `connectors.vector` for the shared semantics).
For every path reachable through objects only (never through arrays), with a
non-null value, `_f.p<sha256(path)[:16]>` holds:

- `x`: 1 when the field "exists" (present, not null, not an empty array);
- strings: `s` (the value), `r` (reversed, so `endsWith` is a native prefix
  match), `l` (UTF-8 length) and `k0`..`k7`: the first 48 UTF-8 bytes as eight
  6-byte big-endian integers, so byte-wise string ranges are native range
  conditions (a lexicographic comparison spelled out over the chunks). String
  ranges are exact when the filter value is at most 48 bytes; longer filter
  values compare on their first 48 bytes;
- numbers: `n` (as float; `2 == 2.0`, never equal to a string or boolean);
- booleans: `b` (0/1, its own key, so `true` never equals `1`);
- arrays: `a`, the array's string elements (`contains` = membership).

Objects get only `x`. So `eq`/ranges/`startsWith`/`endsWith`/`in` see
scalars only; `ne`, `notIn`, `notExists` are `must_not` around `eq`, `in`,
`exists`, which gives the missing-field rule. Payload indexes are created for
each new path's `x`/`s`/`n`/`b`/`a` (up to `MAX_INDEXED_PATHS`), before the
HNSW graph is built, so Qdrant's filtered HNSW and its query planner work.
A filtered search that returns fewer than `top_k` hits while more points match
is repeated as an exact (still native, filtered) search.

Scores: cosine -> cosine similarity, dot -> dot product, euclidean: Qdrant's
distance `d` becomes `1 / (1 + d)` (and a threshold `t` the bound `1/t - 1`).

Keyword search: Qdrant Edge's native BM25 (`TextQuery`) over a word-tokenized,
lower-cased full-text index of `content`.

Threads: the engine is blocking; every call runs in a worker thread
(`asyncio.to_thread`). Writes (and the index optimizer) are serialized by an
`asyncio.Lock`; reads run concurrently with them. After writes, the optimizer
(HNSW build) runs in the background after `OPTIMIZE_DELAY` seconds of quiet;
`optimize()` runs it now.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from engine.errors import InvalidRequest
from engine.knowledge.filters import Condition, Filter, Group
from engine.knowledge.store import Chunk, Distance, Health, Hit, check_query_vector

_NAMESPACE = uuid.UUID("6f1c1d2e-6a57-4c4e-9a8e-3b1f0c2d7e55")
_DISTANCES = {"cosine": qe.Distance.Cosine, "euclidean": qe.Distance.Euclid,
              "inner_product": qe.Distance.Dot}
CHUNK_BYTES = 6  # 48-bit integers: exact in the float64 ranges Qdrant compares with
CHUNKS = 8  # string ranges see the first 48 bytes
MAX_INDEXED_PATHS = 64
OPTIMIZE_DELAY = 1.0
HNSW_EF = 128
UPSERT_BATCH = 1000


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


def path_key(path: str) -> str:
    return "p" + hashlib.sha256(path.encode()).hexdigest()[:16]


def _chunks(value: str) -> list[int]:
    raw = value.encode()[: CHUNK_BYTES * CHUNKS].ljust(CHUNK_BYTES * CHUNKS, b"\0")
    return [int.from_bytes(raw[i:i + CHUNK_BYTES], "big") for i in range(0, len(raw), CHUNK_BYTES)]


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def filter_view(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The typed filter view (`_f`) of a chunk's metadata."""
    view: dict[str, dict[str, Any]] = {}

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            path = f"{prefix}{key}"
            entry: dict[str, Any]
            if value is None:
                continue
            if isinstance(value, dict):
                entry = {"x": 1}
                walk(value, path + ".")
            elif isinstance(value, list):
                entry = {"a": [e for e in value if isinstance(e, str)]}
                if value:
                    entry["x"] = 1
            elif isinstance(value, bool):
                entry = {"x": 1, "b": int(value)}
            elif _is_number(value):
                if isinstance(value, float) and not math.isfinite(value):
                    entry = {"x": 1}
                else:
                    entry = {"x": 1, "n": float(value)}
            elif isinstance(value, str):
                entry = {"x": 1, "s": value, "r": value[::-1], "l": len(value.encode())}
                entry.update({f"k{i}": c for i, c in enumerate(_chunks(value))})
            else:
                entry = {"x": 1}
            view[path_key(path)] = entry

    walk(metadata, "")
    return view


# --- filter translation ------------------------------------------------------------------


def _fc(key: str, **kwargs: Any) -> qe.FieldCondition:
    return qe.FieldCondition(key, **kwargs)


def _num_eq(key: str, value: float) -> qe.FieldCondition:
    return _fc(key, range=qe.RangeFloat(gte=float(value), lte=float(value)))


def _scalar_eq(base: str, value: Any) -> Any:
    if isinstance(value, bool):
        return _fc(base + ".b", match=qe.MatchValue(int(value)))
    if _is_number(value):
        return _num_eq(base + ".n", value)
    return _fc(base + ".s", match=qe.MatchValue(value))


def _string_range(base: str, op: str, value: str) -> qe.Filter:
    target = _chunks(value)
    n = min(CHUNKS, max(1, math.ceil(len(value.encode()) / CHUNK_BYTES)))
    length = len(value.encode())
    strict = "gt" if op in ("gt", "gte") else "lt"
    branches: list[Any] = []
    for i in range(n):
        prefix = [_num_eq(f"{base}.k{j}", target[j]) for j in range(i)]
        step = _fc(f"{base}.k{i}", range=qe.RangeFloat(**{strict: float(target[i])}))
        branches.append(qe.Filter(must=[*prefix, step]))
    tie = [_num_eq(f"{base}.k{j}", target[j]) for j in range(n)]
    if op == "gt":
        branches.append(qe.Filter(must=[*tie, _fc(base + ".l", range=qe.RangeFloat(gt=length))]))
    elif op == "gte":
        branches.append(qe.Filter(must=tie))
    elif op == "lte":
        branches.append(_fc(base + ".s", match=qe.MatchValue(value)))
    return qe.Filter(should=branches)


def _positive(cond: Condition, op: str) -> Any:
    base = "_f." + path_key(cond.field)
    value = cond.value
    if op == "exists":
        return _fc(base + ".x", match=qe.MatchValue(1))
    if op == "eq":
        return _scalar_eq(base, value)
    if op == "in":
        assert isinstance(value, list)
        strings = [v for v in value if isinstance(v, str)]
        parts = [_scalar_eq(base, v) for v in value if not isinstance(v, str)]
        if strings:
            parts.append(_fc(base + ".s", match=qe.MatchAny(strings)))
        return qe.Filter(should=parts)
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, str):
            return _string_range(base, op, value)
        return _fc(base + ".n", range=qe.RangeFloat(**{op: float(value)}))  # type: ignore[arg-type]
    if op == "contains":
        assert isinstance(value, str)
        return qe.Filter(should=[_fc(base + ".s", match=qe.MatchSubstring(value)),
                                 _fc(base + ".a", match=qe.MatchValue(value))])
    if op == "startsWith":
        return _fc(base + ".s", match=qe.MatchPrefix(str(value)))
    if op == "endsWith":
        return _fc(base + ".r", match=qe.MatchPrefix(str(value)[::-1]))
    raise InvalidRequest(f"unknown filter operator {op!r}", param="filter")


def compile_filter(node: Filter) -> qe.Filter:
    """The native Qdrant Edge filter for a Headrace filter tree."""
    if isinstance(node, Group):
        parts = [compile_filter(c) for c in node.conditions]
        return qe.Filter(must=parts) if node.operator == "AND" else qe.Filter(should=parts)
    positive = {"ne": "eq", "notIn": "in", "notExists": "exists"}.get(node.operator)
    if positive is not None:
        return qe.Filter(must_not=[_positive(node, positive)])
    cond = _positive(node, node.operator)
    return cond if isinstance(cond, qe.Filter) else qe.Filter(must=[cond])


def _safe_name(kb_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_\-]{1,100}", kb_id):
        return kb_id
    return "kb-" + hashlib.sha256(kb_id.encode()).hexdigest()[:40]


# --- the store ---------------------------------------------------------------------------


class EmbeddedStore:
    """One knowledge base in an in-process Qdrant Edge shard under `path`."""

    def __init__(self, path: str | Path, kb_id: str, dimensions: int,
                 distance: Distance = "cosine") -> None:
        if distance not in _DISTANCES:
            raise ValueError(f"unknown distance {distance!r}")
        self.root = Path(path)
        self.kb_id = kb_id
        self.dir = self.root / _safe_name(kb_id)
        self.dimensions = dimensions
        self.distance: Distance = distance
        self._shard: qe.EdgeShard | None = None
        self._write_lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._indexed: set[str] = set()
        self._optimize_task: asyncio.Task[None] | None = None
        self._dirty = False

    # lifecycle -----------------------------------------------------------------------

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dimensions, distance=_DISTANCES[self.distance]),
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            payload_memory=qe.Memory.Cached)

    def _open_sync(self, create: bool) -> qe.EdgeShard | None:
        if self.dir.exists() and any(self.dir.iterdir()):
            shard = qe.EdgeShard.load(str(self.dir), self._config())
        elif create:
            self.dir.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(self.dir), self._config())
            shard.update(qe.UpdateOperation.create_field_index(
                "document_id", qe.PayloadSchemaType.Keyword))
            shard.update(qe.UpdateOperation.create_field_index("content", qe.TextIndexParams(
                tokenizer=qe.TokenizerType.Word, lowercase=True, scoring=True)))
        else:
            return None
        schema = shard.info().payload_schema
        self._indexed = {k.split(".")[1] for k in schema if k.startswith("_f.")}
        return shard

    async def _get(self, create: bool = True) -> qe.EdgeShard | None:
        if self._shard is None:
            async with self._open_lock:
                if self._shard is None:
                    self._shard = await asyncio.to_thread(self._open_sync, create)
        return self._shard

    async def _require(self) -> qe.EdgeShard:
        shard = await self._get(create=True)
        assert shard is not None
        return shard

    async def create(self) -> None:
        await self._require()

    async def drop(self) -> None:
        await self._cancel_optimize()
        async with self._write_lock:
            shard, self._shard = self._shard, None
            if shard is not None:
                await asyncio.to_thread(shard.close)
            await asyncio.to_thread(shutil.rmtree, self.dir, True)
            self._indexed = set()

    async def aclose(self) -> None:
        await self._cancel_optimize()
        async with self._write_lock:
            shard, self._shard = self._shard, None
            if shard is not None:
                await asyncio.to_thread(self._close_sync, shard)

    @staticmethod
    def _close_sync(shard: qe.EdgeShard) -> None:
        shard.flush()
        shard.close()

    async def health(self) -> Health:
        try:
            shard = await self._get(create=False)
            if shard is None:
                return Health(ok=False, detail="knowledge base not created (or dropped)")
            info = await asyncio.to_thread(shard.info)
            return Health(ok=True, detail=f"{info.points_count} chunks, "
                                          f"{info.indexed_vectors_count} indexed")
        except Exception as exc:
            return Health(ok=False, detail=f"{type(exc).__name__}: {exc}")

    # optimizer -------------------------------------------------------------------------

    async def optimize(self) -> None:
        """Build the HNSW graph and payload links now (blocks until done)."""
        async with self._write_lock:
            shard = await self._require()
            self._dirty = False
            await asyncio.to_thread(shard.optimize)

    def _schedule_optimize(self) -> None:
        self._dirty = True
        if self._optimize_task is None or self._optimize_task.done():
            self._optimize_task = asyncio.get_running_loop().create_task(self._optimize_later())

    async def _optimize_later(self) -> None:
        while self._dirty:
            self._dirty = False
            await asyncio.sleep(OPTIMIZE_DELAY)
            if self._dirty:
                continue
            async with self._write_lock:
                if self._shard is not None:
                    await asyncio.to_thread(self._shard.optimize)

    async def _cancel_optimize(self) -> None:
        task, self._optimize_task = self._optimize_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # writes ----------------------------------------------------------------------------

    def _point(self, chunk: Chunk) -> qe.Point:
        if len(chunk.vector) != self.dimensions:
            raise InvalidRequest(f"vector has {len(chunk.vector)} dimensions, "
                                 f"the knowledge base {self.dimensions}", param="vector")
        payload = {"chunk_id": chunk.id, "document_id": chunk.document_id,
                   "chunk_index": chunk.chunk_index, "content": chunk.content,
                   "metadata": chunk.metadata, "_f": filter_view(chunk.metadata)}
        return qe.Point(point_id(chunk.id), [float(x) for x in chunk.vector], payload)

    def _upsert_sync(self, shard: qe.EdgeShard, points: list[qe.Point]) -> None:
        new_paths = set()
        for p in points:
            new_paths.update(k for k in (p.payload or {}).get("_f", {}) if k not in self._indexed)
        for key in sorted(new_paths):
            if len(self._indexed) >= MAX_INDEXED_PATHS:
                break
            for sub, kind in (("x", qe.PayloadSchemaType.Integer),
                              ("s", qe.PayloadSchemaType.Keyword),
                              ("n", qe.PayloadSchemaType.Float),
                              ("b", qe.PayloadSchemaType.Integer),
                              ("a", qe.PayloadSchemaType.Keyword)):
                shard.update(qe.UpdateOperation.create_field_index(f"_f.{key}.{sub}", kind))
            self._indexed.add(key)
        for i in range(0, len(points), UPSERT_BATCH):
            shard.update(qe.UpdateOperation.upsert_points(points[i:i + UPSERT_BATCH]))

    async def upsert(self, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        latest = {c.id: c for c in chunks}  # last one wins within a batch
        points = [self._point(c) for c in latest.values()]
        async with self._write_lock:
            shard = await self._require()
            await asyncio.to_thread(self._upsert_sync, shard, points)
        self._schedule_optimize()

    async def delete_document(self, document_id: str) -> int:
        selector = qe.Filter(must=[_fc("document_id", match=qe.MatchValue(document_id))])
        async with self._write_lock:
            shard = await self._get(create=False)
            if shard is None:
                return 0
            n = await asyncio.to_thread(shard.count, qe.CountRequest(exact=True, filter=selector))
            if n:
                await asyncio.to_thread(
                    shard.update, qe.UpdateOperation.delete_points_by_filter(selector))
        if n:
            self._schedule_optimize()
        return n

    # reads -----------------------------------------------------------------------------

    async def count(self, filter: Filter | None = None) -> int:
        shard = await self._get(create=False)
        if shard is None:
            return 0
        native = compile_filter(filter) if filter is not None else None
        return await asyncio.to_thread(shard.count, qe.CountRequest(exact=True, filter=native))

    def _score(self, raw: float) -> float:
        return 1.0 / (1.0 + raw) if self.distance == "euclidean" else raw

    def _threshold(self, t: float | None) -> float | None:
        if t is None or self.distance != "euclidean":
            return t
        if t <= 0:
            return None
        return 1.0 / t - 1.0

    def _search_sync(self, shard: qe.EdgeShard, vector: list[float], top_k: int,
                     native: qe.Filter | None, threshold: float | None) -> list[Any]:
        def run(exact: bool) -> list[Any]:
            params = qe.SearchParams(hnsw_ef=max(HNSW_EF, top_k), exact=exact)
            return shard.query(qe.QueryRequest(
                limit=top_k, query=qe.Query.Nearest(vector), filter=native,
                score_threshold=threshold, params=params, with_payload=True))

        points = run(False)
        if native is not None and len(points) < top_k:
            # filtered HNSW may miss matches when the filter is very selective
            matching = shard.count(qe.CountRequest(exact=True, filter=native))
            if matching > len(points):
                points = run(True)
        return points

    async def search(self, vector: list[float], *, top_k: int, filter: Filter | None = None,
                     similarity_threshold: float | None = None) -> list[Hit]:
        check_query_vector(vector, self.dimensions)
        shard = await self._get(create=False)
        if shard is None or top_k <= 0:
            return []
        native = compile_filter(filter) if filter is not None else None
        points = await asyncio.to_thread(self._search_sync, shard, [float(x) for x in vector],
                                         top_k, native, self._threshold(similarity_threshold))
        hits = [self._hit(p.payload or {}, self._score(p.score)) for p in points]
        if similarity_threshold is not None:
            hits = [h for h in hits if h.score >= similarity_threshold - 1e-9]
        return hits

    async def keyword_search(self, query: str, *, top_k: int,
                             filter: Filter | None = None) -> list[Hit]:
        shard = await self._get(create=False)
        if shard is None or top_k <= 0 or not re.search(r"\w", query):
            return []
        native = compile_filter(filter) if filter is not None else None
        request = qe.QueryRequest(limit=top_k, query=qe.TextQuery("content", query),
                                  filter=native, with_payload=True)
        points = await asyncio.to_thread(shard.query, request)
        return [self._hit(p.payload or {}, p.score) for p in points if p.score > 0]

    @staticmethod
    def _hit(payload: dict[str, Any], score: float) -> Hit:
        return Hit(id=payload.get("chunk_id", ""), document_id=payload.get("document_id", ""),
                   chunk_index=int(payload.get("chunk_index", 0)),
                   content=payload.get("content", ""), score=float(score),
                   metadata=payload.get("metadata") or {})
