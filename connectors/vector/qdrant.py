"""Qdrant backend: one collection per knowledge base.

Works with a Qdrant server (`AsyncQdrantClient(url=...)`) and with
qdrant-client's local mode (`location=":memory:"` or `path=...`), which is
what the tests here use.

Points: Qdrant ids must be UUIDs or integers, so a point's id is
`uuid5(namespace, chunk id)` and the chunk id is kept in the payload. The
payload holds `chunk_id`, `document_id`, `chunk_index`, `content`, the nested
caller `metadata`, and `_h`, helper data that lets filters stay native:

- `_h.arrays`: the dotted paths in `metadata` whose value is an array. Qdrant
  flattens arrays when it matches a key, so `eq "x"` would match `["x", "y"]`;
  the shared semantics (see `connectors.vector`) say scalar operators are false
  on arrays and that `contains` means substring on strings but membership on
  arrays. A `must_not` on `_h.arrays` tells the two cases apart.
- `_h.rev`: the metadata's string values reversed (same nesting). Qdrant has a
  native prefix match (`MatchPrefix`) but no suffix match, so `endsWith v` is
  `MatchPrefix(reversed v)` on `_h.rev.<field>`. This doubles the storage of
  metadata strings (not of `content`).

Filter translation: groups become `must` (AND) / `should` (OR) filters;
`ne`, `notIn`, `notExists` are `must_not` around `eq`, `in`, `exists`, which
gives "a condition on a missing field is false except ne/notIn/notExists";
numbers use `Range` (so `2` matches `2.0`, never `true`), strings and booleans
`MatchValue`/`MatchAny`, `contains` `MatchSubstring`/`MatchValue`,
`startsWith` `MatchPrefix`, `exists` `must_not IsEmpty`.

Unsupported here: `gt`/`gte`/`lt`/`lte` with a string value are only
supported when the value is an ISO-8601 date or datetime; they compare as
datetimes (`DatetimeRange`), which agrees with the other backends' string
order when stored dates share one ISO format. Any other string range raises
`engine.errors.NotSupported` (Qdrant has no lexical range on keywords).

Scores: Qdrant's cosine score is the cosine similarity and its dot score the
dot product; its euclidean score is the distance `d`, converted to
`1 / (1 + d)` (and a `similarity_threshold` t to the distance bound
`1/t - 1`).

Keyword search: Qdrant has no BM25 ranking in local mode (and only with a
scoring text index on a server), so `keyword_search` filters natively with
`MatchText` (every query token present), scrolls at most
`KEYWORD_SCAN_LIMIT` matching points and ranks those payloads by a simple
term-frequency score (sum of `log(1 + tf)` over query tokens, divided by the
square root of the chunk's token count).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
import warnings
from collections import Counter
from datetime import date, datetime
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from engine.errors import InvalidRequest, NotSupported
from engine.knowledge.filters import Condition, Filter, Group
from engine.knowledge.store import Chunk, Distance, Health, Hit, check_query_vector

KEYWORD_SCAN_LIMIT = 1000
_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c7d-9e0f-1a2b3c4d5e6f")
_DISTANCES = {"cosine": models.Distance.COSINE, "euclidean": models.Distance.EUCLID,
              "inner_product": models.Distance.DOT}
_RESULT_FIELDS = ["chunk_id", "document_id", "chunk_index", "content", "metadata"]
_BATCH = 256


def collection_name(kb_id: str) -> str:
    sanitised = re.sub(r"[^a-z0-9_]", "_", kb_id.lower())[:32]
    digest = hashlib.sha1(kb_id.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"kb_{sanitised}_{digest}"


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


def _tokens(text: str) -> list[str]:
    # Qdrant's default word tokenizer: runs of letters/digits, lower-cased.
    return [t.lower() for t in re.findall(r"[^\W_]+", text)]


def _helper_payload(metadata: dict[str, Any]) -> dict[str, Any]:
    arrays: list[str] = []

    def walk(obj: dict[str, Any], prefix: str) -> dict[str, Any]:
        rev: dict[str, Any] = {}
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if isinstance(value, list):
                arrays.append(path)
            elif isinstance(value, dict):
                rev[key] = walk(value, path + ".")
            elif isinstance(value, str):
                rev[key] = value[::-1]
        return rev

    rev = walk(metadata, "")
    return {"arrays": arrays, "rev": rev}


def _parse_datetime(value: str, operator: str) -> datetime | date:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise NotSupported(
            f"filter operator {operator!r} with a non-date string value is not supported by "
            "the qdrant vector backend (Qdrant compares strings only as ISO-8601 datetimes)",
            param="filter", code="filter_not_supported") from None


def _field(key: str, **kwargs: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, **kwargs)


def _scalar_match(key: str, value: Any) -> models.FieldCondition:
    if isinstance(value, bool) or isinstance(value, str):
        return _field(key, match=models.MatchValue(value=value))
    return _field(key, range=models.Range(gte=value, lte=value))


def compile_filter(node: Filter) -> models.Filter:
    """The native Qdrant filter for a Headrace filter tree."""
    if isinstance(node, Group):
        parts = [compile_filter(c) for c in node.conditions]
        return models.Filter(must=parts) if node.operator == "AND" else models.Filter(should=parts)
    positive = {"ne": "eq", "notIn": "in", "notExists": "exists"}.get(node.operator)
    if positive is not None:
        return models.Filter(must_not=[_positive(node, positive)])
    return _positive(node, node.operator)


def _positive(cond: Condition, op: str) -> models.Filter:
    parts = cond.path
    key = "metadata." + cond.field
    prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    # true when the field itself, or an object on the way to it, is an array
    array_all = _field("_h.arrays", match=models.MatchAny(any=prefixes))
    array_above = (_field("_h.arrays", match=models.MatchAny(any=prefixes[:-1]))
                   if len(prefixes) > 1 else None)
    above = [array_above] if array_above is not None else []
    value = cond.value

    def scalar(*conditions: Any, should: bool = False) -> models.Filter:
        if should:
            return models.Filter(should=list(conditions), must_not=[array_all])
        return models.Filter(must=list(conditions), must_not=[array_all])

    if op == "eq":
        return scalar(_scalar_match(key, value))
    if op == "in":
        strings = [v for v in value if isinstance(v, str)]
        others = [_scalar_match(key, v) for v in value if not isinstance(v, str)]
        if strings:
            others.append(_field(key, match=models.MatchAny(any=strings)))
        return scalar(*others, should=True)
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, str):
            bound = _parse_datetime(value, cond.operator)
            return scalar(_field(key, range=models.DatetimeRange(**{op: bound})))
        return scalar(_field(key, range=models.Range(**{op: value})))
    if op == "contains":
        member = models.Filter(
            must=[_field("_h.arrays", match=models.MatchValue(value=cond.field)),
                  _field(key, match=models.MatchValue(value=value))],
            must_not=above)
        substring = scalar(_field(key, match=models.MatchSubstring(substring=value)))
        return models.Filter(should=[member, substring])
    if op == "startsWith":
        return scalar(_field(key, match=models.MatchPrefix(prefix=value)))
    if op == "endsWith":
        return scalar(_field("_h.rev." + cond.field, match=models.MatchPrefix(prefix=value[::-1])))
    if op == "exists":
        return models.Filter(
            must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=key)), *above])
    raise InvalidRequest(f"unknown filter operator {op!r}", param="filter")


class QdrantStore:
    """One knowledge base's chunks in a Qdrant collection.

    `aclose()` closes the client (local mode holds a lock on its `path` until
    then); pass `owns_client=False` when the client is shared between stores.
    """

    def __init__(self, client: AsyncQdrantClient, kb_id: str, dimensions: int,
                 distance: Distance, *, owns_client: bool = True) -> None:
        if distance not in _DISTANCES:
            raise InvalidRequest(f"unknown distance {distance!r}", param="distance")
        if not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidRequest("dimensions must be a positive integer", param="dimensions")
        self.client = client
        self.kb_id = kb_id
        self.dimensions = dimensions
        self.distance = distance
        self.collection = collection_name(kb_id)
        self._owns_client = owns_client

    # --- lifecycle ---------------------------------------------------------------------

    async def create(self) -> None:
        if await self.client.collection_exists(self.collection):
            return
        try:
            await self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.dimensions,
                                                   distance=_DISTANCES[self.distance]))
        except Exception:
            if not await self.client.collection_exists(self.collection):
                raise
            return  # created concurrently
        with warnings.catch_warnings():
            # local mode warns that payload indexes have no effect there
            warnings.simplefilter("ignore")
            await self.client.create_payload_index(
                self.collection, "document_id", field_schema=models.PayloadSchemaType.KEYWORD)
            await self.client.create_payload_index(
                self.collection, "content",
                field_schema=models.TextIndexParams(type=models.TextIndexType.TEXT,
                                                    tokenizer=models.TokenizerType.WORD,
                                                    lowercase=True))

    async def drop(self) -> None:
        if await self.client.collection_exists(self.collection):
            await self.client.delete_collection(self.collection)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.close()

    async def health(self) -> Health:
        try:
            exists = await self.client.collection_exists(self.collection)
        except Exception as exc:  # any transport failure is "unhealthy"
            return Health(ok=False, detail=f"{type(exc).__name__}: {exc}")
        if not exists:
            return Health(ok=False, detail=f"collection {self.collection} does not exist")
        return Health(ok=True)

    # --- writes ------------------------------------------------------------------------

    async def upsert(self, chunks: list[Chunk]) -> None:
        points = []
        for chunk in chunks:
            if len(chunk.vector) != self.dimensions:
                raise InvalidRequest(
                    f"chunk {chunk.id!r} has {len(chunk.vector)} dimensions, "
                    f"expected {self.dimensions}", param="vector")
            points.append(models.PointStruct(
                id=point_id(chunk.id), vector=[float(x) for x in chunk.vector],
                payload={"chunk_id": chunk.id, "document_id": chunk.document_id,
                         "chunk_index": chunk.chunk_index, "content": chunk.content,
                         "metadata": chunk.metadata, "_h": _helper_payload(chunk.metadata)}))
        for start in range(0, len(points), _BATCH):
            await self.client.upsert(self.collection, points=points[start:start + _BATCH],
                                     wait=True)

    async def delete_document(self, document_id: str) -> int:
        selector = models.Filter(must=[_field("document_id",
                                              match=models.MatchValue(value=document_id))])
        count = (await self.client.count(self.collection, count_filter=selector,
                                         exact=True)).count
        if count:
            await self.client.delete(self.collection,
                                     points_selector=models.FilterSelector(filter=selector),
                                     wait=True)
        return count

    # --- reads -------------------------------------------------------------------------

    async def count(self, filter: Filter | None = None) -> int:
        native = compile_filter(filter) if filter is not None else None
        result = await self.client.count(self.collection, count_filter=native, exact=True)
        return result.count

    async def search(self, vector: list[float], *, top_k: int, filter: Filter | None = None,
                     similarity_threshold: float | None = None) -> list[Hit]:
        check_query_vector(vector, self.dimensions)
        if top_k < 1:
            return []
        threshold = similarity_threshold
        if threshold is not None and self.distance == "euclidean":
            if threshold <= 0:
                threshold = None  # every 1/(1+d) is positive
            else:
                threshold = 1.0 / threshold - 1.0  # Qdrant bounds the distance from above
        response = await self.client.query_points(
            self.collection, query=[float(x) for x in vector], limit=top_k,
            query_filter=compile_filter(filter) if filter is not None else None,
            score_threshold=threshold, with_payload=_RESULT_FIELDS)
        hits = [self._hit(p.payload or {}, self._score(p.score)) for p in response.points]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits

    async def keyword_search(self, query: str, *, top_k: int,
                             filter: Filter | None = None) -> list[Hit]:
        terms = _tokens(query)
        if top_k < 1 or not terms:
            return []
        must: list[Any] = [_field("content", match=models.MatchText(text=" ".join(terms)))]
        if filter is not None:
            must.append(compile_filter(filter))
        points, _ = await self.client.scroll(
            self.collection, scroll_filter=models.Filter(must=must), limit=KEYWORD_SCAN_LIMIT,
            with_payload=_RESULT_FIELDS, with_vectors=False)
        ranked = []
        for point in points:
            payload = point.payload or {}
            words = _tokens(payload.get("content", ""))
            counts = Counter(words)
            score = sum(math.log1p(counts[t]) for t in set(terms)) / math.sqrt(max(1, len(words)))
            ranked.append(self._hit(payload, score))
        ranked.sort(key=lambda h: (-h.score, h.id))
        return ranked[:top_k]

    def _score(self, raw: float) -> float:
        if self.distance == "euclidean":
            return 1.0 / (1.0 + raw)
        return float(raw)

    @staticmethod
    def _hit(payload: dict[str, Any], score: float) -> Hit:
        return Hit(id=payload.get("chunk_id", ""), document_id=payload.get("document_id", ""),
                   chunk_index=int(payload.get("chunk_index", 0)),
                   content=payload.get("content", ""), score=score,
                   metadata=payload.get("metadata") or {})
