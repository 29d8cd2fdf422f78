"""Conformance suite for vector-store backends.

Every backend must return, for every filter case, exactly the chunks that the
reference evaluator below selects from the corpus. The evaluator is the
written-down filter semantics (see `connectors/vector/__init__.py`):

- a field is missing when absent or null; every condition on a missing field
  is false except `ne`, `notIn`, `notExists` (the exact negations of `eq`,
  `in`, `exists`);
- values are typed: numbers compare as numbers (2 == 2.0), never equal to
  strings or booleans;
- scalar operators are false on arrays and objects; `contains` is substring
  on strings and membership on arrays; `exists` is false for an empty array;
- string ranges compare byte-wise; a path never descends into an array.

Backends may raise `NotSupported` only for the cases listed in
`EXPECTED_UNSUPPORTED`.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from engine.errors import NotSupported
from engine.knowledge.filters import parse_filter
from engine.knowledge.store import Chunk, Distance, VectorStore

DIMS = 8
N = 30
MISSING = object()


# --- corpus -----------------------------------------------------------------------------


def _vector(rng: random.Random) -> list[float]:
    # values on a 1/64 grid: exact in float32, so every backend stores the same numbers
    while True:
        v = [rng.randint(-64, 64) / 64 for _ in range(DIMS)]
        if any(v):
            return v


def _metadata(i: int) -> dict[str, Any]:
    titles = ["Intro to vectors", "Advanced SQL_tips", "100% guide", "intro notes",
              "The end.txt", "Vectors in practice", "1000 ideas", "Basic SQLxtips"]
    tag_pool = ["ai", "ml", "db", "web", "Rust"]
    names = ["Alice", "Bob", "Carla", "Li Wei", "Émile"]
    meta: dict[str, Any] = {"title": titles[i % len(titles)] + f" #{i}" * (i % 5 == 0)}
    if i % 10 != 9:
        meta["category"] = ["news", "blog", "paper"][i % 3]
    if i == 5:
        meta["year"] = "2020"  # a string, not a number
    elif i % 7 != 0:
        meta["year"] = 2015 + i % 10
    if i % 11 != 0:
        meta["rating"] = [3, 3.0, 1.5, 4.25, 0.5, 2][i % 6]
    if i % 6 != 0:
        meta["published"] = f"2024-{1 + i % 12:02d}-{1 + (i * 7) % 28:02d}"
    if i == 13:
        meta["draft"] = "false"  # a string, not a boolean
    elif i % 5 != 0:
        meta["draft"] = i % 2 == 0
    if i % 9 != 0:
        meta["tags"] = [] if i % 8 == 0 else [t for j, t in enumerate(tag_pool) if (i >> j) & 1]
    if i % 4 != 3:
        meta["author"] = {"name": None if i % 12 == 0 else names[i % 5],
                          "org": {"country": ["DE", "US", "FR"][i % 3], "size": i * 10}}
    if i % 13 == 0:
        meta["note"] = None
    elif i % 3 == 0:
        meta["note"] = "checked"
    if i % 5 == 2:
        meta["refs"] = [{"id": 1}, {"id": i}]
    if i % 2 == 1:
        meta["x-score"] = i - 15
    if i % 4 == 1:
        meta["keywords"] = "ml basics"  # a string here, an array elsewhere
    elif i % 4 == 2:
        meta["keywords"] = ["ml", "db"]
    return meta


def _corpus() -> list[Chunk]:
    rng = random.Random(20241107)
    words = ["vector", "search", "postgres", "qdrant", "filter", "hybrid", "ranking", "index"]
    chunks = []
    for i in range(N):
        doc = f"doc{i // 3}"
        text = " ".join(rng.choice(words) for _ in range(6))
        if i in (4, 17):
            text += " zebra"
        chunks.append(Chunk(id=f"{doc}:{i % 3}", document_id=doc, chunk_index=i % 3,
                            content=f"Chunk {i}: {text}.", vector=_vector(rng),
                            metadata=_metadata(i)))
    return chunks


CORPUS = _corpus()
QUERY = _vector(random.Random(99))
ALL_IDS = {c.id for c in CORPUS}


# --- the reference evaluator (the oracle) --------------------------------------------


def _get(meta: Any, field: str) -> Any:
    value = meta
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return MISSING if value is None else value


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _scalar_eq(x: Any, v: Any) -> bool:
    if isinstance(v, bool) or isinstance(x, bool):
        return isinstance(v, bool) and isinstance(x, bool) and x == v
    if _is_number(v):
        return _is_number(x) and x == v
    return isinstance(x, str) and x == v


def _compare(x: Any, op: str, v: Any) -> bool:
    if _is_number(v):
        if not _is_number(x):
            return False
    elif not isinstance(x, str):
        return False
    return {"gt": x > v, "gte": x >= v, "lt": x < v, "lte": x <= v}[op]


def _positive(op: str, x: Any, v: Any) -> bool:
    if x is MISSING:
        return False
    if op == "exists":
        return x != []
    if op == "contains":
        if isinstance(x, str):
            return v in x
        return isinstance(x, list) and any(isinstance(e, str) and e == v for e in x)
    if isinstance(x, list | dict):
        return False
    if op == "eq":
        return _scalar_eq(x, v)
    if op == "in":
        return any(_scalar_eq(x, e) for e in v)
    if op in ("gt", "gte", "lt", "lte"):
        return _compare(x, op, v)
    if op == "startsWith":
        return isinstance(x, str) and x.startswith(v)
    if op == "endsWith":
        return isinstance(x, str) and x.endswith(v)
    raise AssertionError(op)


def evaluate(flt: dict[str, Any], meta: dict[str, Any]) -> bool:
    if flt["operator"] in ("AND", "OR"):
        results = [evaluate(c, meta) for c in flt["conditions"]]
        return all(results) if flt["operator"] == "AND" else any(results)
    op, x, v = flt["operator"], _get(meta, flt["field"]), flt.get("value")
    negated = {"ne": "eq", "notIn": "in", "notExists": "exists"}
    if op in negated:
        return not _positive(negated[op], x, v)
    return _positive(op, x, v)


# --- filter cases -----------------------------------------------------------------------


def c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "operator": op, **({} if value is None else {"value": value})}


def AND(*conds: dict[str, Any]) -> dict[str, Any]:
    return {"operator": "AND", "conditions": list(conds)}


def OR(*conds: dict[str, Any]) -> dict[str, Any]:
    return {"operator": "OR", "conditions": list(conds)}


CASES: dict[str, dict[str, Any]] = {
    "eq-string": c("category", "eq", "news"),
    "eq-int": c("year", "eq", 2020),
    "eq-string-not-number": c("year", "eq", "2020"),
    "eq-int-matches-float": c("rating", "eq", 3),
    "eq-float": c("rating", "eq", 4.25),
    "eq-bool-true": c("draft", "eq", True),
    "eq-bool-false-not-string": c("draft", "eq", False),
    "eq-nested": c("author.org.country", "eq", "DE"),
    "eq-on-array-is-false": c("tags", "eq", "ai"),
    "eq-through-array-is-false": c("refs.id", "eq", 1),
    "ne-string": c("category", "ne", "news"),
    "ne-int": c("year", "ne", 2020),
    "ne-bool": c("draft", "ne", True),
    "ne-on-array-is-true": c("tags", "ne", "ai"),
    "gt-int": c("year", "gt", 2019),
    "gte-float": c("rating", "gte", 2.5),
    "lt-float": c("rating", "lt", 1),
    "lte-int": c("year", "lte", 2016),
    "gt-negative": c("x-score", "gt", -3),
    "gt-nested-int": c("author.org.size", "gt", 150),
    "gt-date": c("published", "gt", "2024-06-01"),
    "lte-date": c("published", "lte", "2024-03-15"),
    "gt-number-on-string-field": c("year", "gte", 2000),
    "gt-string": c("title", "gt", "M"),
    "contains-substring": c("title", "contains", "SQL"),
    "contains-membership": c("tags", "contains", "ml"),
    "contains-case-sensitive": c("title", "contains", "intro"),
    "contains-string-or-array": c("keywords", "contains", "ml"),
    "contains-substring-not-in-array": c("keywords", "contains", "m"),
    "contains-nested": c("author.name", "contains", "li"),
    "contains-skips-numbers": c("year", "contains", "20"),
    "startsWith": c("title", "startsWith", "Intro"),
    "startsWith-case-sensitive": c("title", "startsWith", "intro"),
    "startsWith-percent-literal": c("title", "startsWith", "100%"),
    "endsWith": c("title", "endsWith", ".txt"),
    "endsWith-underscore-literal": c("title", "endsWith", "_tips"),
    "endsWith-hash": c("title", "endsWith", "#10"),
    "in-strings": c("category", "in", ["news", "paper"]),
    "in-mixed-types": c("year", "in", [2016, 2020, "2021", True]),
    "in-bools": c("draft", "in", [False]),
    "notIn-strings": c("category", "notIn", ["news"]),
    "notIn-bool": c("draft", "notIn", [True]),
    "exists-array": c("tags", "exists"),
    "exists-null-is-false": c("note", "exists"),
    "exists-object": c("author", "exists"),
    "exists-nested-null": c("author.name", "exists"),
    "exists-through-array-is-false": c("refs.id", "exists"),
    "digit-segment-is-not-an-index": c("tags.0", "exists"),
    "notExists": c("note", "notExists"),
    "notExists-nested": c("author.org.country", "notExists"),
    "missing-eq": c("nope", "eq", 1),
    "missing-ne": c("nope", "ne", 1),
    "missing-gt": c("nope.deeper", "gt", 1),
    "missing-notIn": c("nope", "notIn", ["a"]),
    "missing-contains": c("nope", "contains", "a"),
    "and": AND(c("category", "eq", "news"), c("year", "gte", 2018)),
    "or": OR(c("draft", "eq", True), c("rating", "gt", 4)),
    "nested-3-deep": AND(
        OR(c("category", "eq", "blog"),
           AND(c("tags", "contains", "ai"), c("year", "lt", 2020))),
        c("note", "notExists"),
        OR(c("rating", "exists"), c("author.org.country", "in", ["FR"]))),
    "nested-3-deep-negations": OR(
        AND(c("category", "ne", "news"),
            OR(c("title", "startsWith", "The"), c("tags", "notExists"))),
        c("published", "gte", "2024-11-01")),
}

# Cases a backend is allowed to refuse with NotSupported (documented in the backend).
EXPECTED_UNSUPPORTED: dict[str, set[str]] = {
    "qdrant": {"gt-string"},  # Qdrant compares strings only as ISO datetimes
}


def test_cases_are_meaningful() -> None:
    """The oracle selects a proper, non-trivial subset for most cases."""
    sizes = {name: sum(evaluate(flt, ch.metadata) for ch in CORPUS) for name, flt in CASES.items()}
    trivial = {name for name, size in sizes.items() if size in (0, N)}
    assert trivial == {
        "eq-on-array-is-false", "ne-on-array-is-true", "eq-through-array-is-false",
        "exists-through-array-is-false", "digit-segment-is-not-an-index",
        "missing-eq", "missing-ne", "missing-gt", "missing-notIn", "missing-contains"}
    assert len(CASES) >= 40


@pytest.fixture(scope="module")
async def corpus_store(store_factory: Any) -> VectorStore:
    """A cosine store holding the corpus; tests must not modify it."""
    store = await store_factory("cosine", DIMS)
    await store.upsert(CORPUS)
    return store


@pytest.mark.parametrize("case", list(CASES))
async def test_filter_conformance(corpus_store: VectorStore, backend: str, case: str) -> None:
    raw = CASES[case]
    flt = parse_filter(raw)
    if case in EXPECTED_UNSUPPORTED.get(backend, set()):
        with pytest.raises(NotSupported, match=raw["operator"]):
            await corpus_store.search(QUERY, top_k=100, filter=flt)
        with pytest.raises(NotSupported):
            await corpus_store.count(flt)
        return
    expected = {ch.id for ch in CORPUS if evaluate(raw, ch.metadata)}
    hits = await corpus_store.search(QUERY, top_k=100, filter=flt)
    assert sorted(h.id for h in hits) == sorted(expected)
    assert await corpus_store.count(flt) == len(expected)


async def test_filtered_search_fills_top_k(corpus_store: VectorStore) -> None:
    flt = c("category", "eq", "paper")
    expected = _ranked(QUERY, "cosine", [ch for ch in CORPUS if evaluate(flt, ch.metadata)])
    hits = await corpus_store.search(QUERY, top_k=3, filter=parse_filter(flt))
    assert [h.id for h in hits] == [ch_id for ch_id, _ in expected[:3]]


async def test_hits_carry_the_chunk(corpus_store: VectorStore) -> None:
    hits = await corpus_store.search(CORPUS[7].vector, top_k=1)
    assert len(hits) == 1
    hit, chunk = hits[0], CORPUS[7]
    assert (hit.id, hit.document_id, hit.chunk_index, hit.content, hit.metadata) == (
        chunk.id, chunk.document_id, chunk.chunk_index, chunk.content, chunk.metadata)


# --- scores -----------------------------------------------------------------------------


def _score(a: list[float], b: list[float], distance: Distance) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if distance == "cosine":
        return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    if distance == "euclidean":
        return 1 / (1 + math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True))))
    return dot


def _ranked(query: list[float], distance: Distance, chunks: list[Chunk]) -> list[tuple[str, float]]:
    scored = [(ch.id, _score(query, ch.vector, distance)) for ch in chunks]
    return sorted(scored, key=lambda item: -item[1])


DISTANCES: list[Distance] = ["cosine", "euclidean", "inner_product"]


@pytest.mark.parametrize("distance", DISTANCES)
async def test_scores_follow_the_convention(store_factory: Any, distance: Distance) -> None:
    """Same scores on every backend: each must match the formula within 1e-4."""
    store = await store_factory(distance, DIMS)
    await store.upsert(CORPUS)
    expected = _ranked(QUERY, distance, CORPUS)
    hits = await store.search(QUERY, top_k=N)
    assert [h.id for h in hits] == [ch_id for ch_id, _ in expected]
    for hit, (_, score) in zip(hits, expected, strict=True):
        assert hit.score == pytest.approx(score, abs=1e-4)
    top = await store.search(QUERY, top_k=5)
    assert [h.id for h in top] == [ch_id for ch_id, _ in expected[:5]]

    # similarity_threshold: halfway between the 10th and 11th best scores
    threshold = (expected[9][1] + expected[10][1]) / 2
    hits = await store.search(QUERY, top_k=N, similarity_threshold=threshold)
    assert [h.id for h in hits] == [ch_id for ch_id, _ in expected[:10]]
    flt = c("category", "eq", "blog")
    hits = await store.search(QUERY, top_k=N, similarity_threshold=threshold,
                              filter=parse_filter(flt))
    assert {h.id for h in hits} == {
        ch_id for ch_id, _ in expected[:10]
        if evaluate(flt, next(ch for ch in CORPUS if ch.id == ch_id).metadata)}


# --- writes and lifecycle ---------------------------------------------------------------


async def test_upsert_replaces_and_delete_document(store_factory: Any) -> None:
    store = await store_factory("cosine", DIMS)
    await store.upsert(CORPUS[:6])
    assert await store.count() == 6
    old = CORPUS[0]
    new = Chunk(id=old.id, document_id=old.document_id, chunk_index=0, content="replaced text",
                vector=CORPUS[20].vector, metadata={"category": "changed"})
    await store.upsert([new])
    assert await store.count() == 6
    assert await store.count(parse_filter(c("category", "eq", "changed"))) == 1
    hits = await store.search(CORPUS[20].vector, top_k=1)
    assert (hits[0].id, hits[0].content, hits[0].metadata) == (old.id, "replaced text",
                                                                 {"category": "changed"})
    assert await store.delete_document("doc0") == 3
    assert await store.delete_document("doc0") == 0
    assert await store.count() == 3
    assert {h.document_id for h in await store.search(QUERY, top_k=10)} == {"doc1"}


async def test_keyword_search(store_factory: Any) -> None:
    store = await store_factory("cosine", DIMS)
    await store.upsert(CORPUS)
    hits = await store.keyword_search("zebra", top_k=10)
    assert {h.id for h in hits} == {CORPUS[4].id, CORPUS[17].id}
    assert all("zebra" in h.content for h in hits)
    assert hits[0].score >= hits[-1].score > 0
    hits = await store.keyword_search("zebra", top_k=10,
                                      filter=parse_filter(c("category", "eq", "blog")))
    assert [h.id for h in hits] == [CORPUS[4].id]
    assert len(await store.keyword_search("search", top_k=2)) == 2
    assert await store.keyword_search("unicorn", top_k=10) == []


async def test_health_create_idempotent_and_drop(store_factory: Any) -> None:
    store = await store_factory("euclidean", DIMS)
    await store.create()  # idempotent
    await store.upsert(CORPUS[:3])
    health = await store.health()
    assert health.ok, health.detail
    await store.drop()
    assert not (await store.health()).ok
    await store.create()
    assert await store.count() == 0
    assert (await store.health()).ok


# --- backend specifics ------------------------------------------------------------------


async def test_pgvector_parameterises_filters_and_sanitises_names(pg_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from connectors.vector.pgvector import PgVectorStore, compile_filter

    hostile = "x'); DROP TABLE users; --"
    sql, params = compile_filter(parse_filter(AND(c("title", "eq", hostile),
                                                  c("a.b", "startsWith", "50%_"))))
    assert hostile not in sql and "title" not in sql and "50%" not in sql
    assert hostile in params.values() and "50\\%\\_%" in params.values()

    engine = create_async_engine(pg_url)
    store = PgVectorStore(engine, 'KB "quoted"; DROP', DIMS, "inner_product")
    try:
        await store.create()
        assert store.table.startswith('"kb_kb__quoted___drop_')
        await store.upsert([Chunk(id="a", document_id="d", chunk_index=0, content="t",
                                  vector=QUERY, metadata={"title": hostile})])
        assert await store.count(parse_filter(c("title", "eq", hostile))) == 1
        await store.drop()
        await store.aclose()  # does not dispose an engine it was given
        async with engine.connect():
            pass
    finally:
        await engine.dispose()


async def test_qdrant_local_path_mode_persists(tmp_path: Any) -> None:
    from qdrant_client import AsyncQdrantClient

    from connectors.vector.qdrant import QdrantStore

    store = QdrantStore(AsyncQdrantClient(path=str(tmp_path)), "kb/on disk", DIMS, "euclidean")
    await store.create()
    await store.upsert(CORPUS[:4])
    await store.aclose()  # closes the client it owns, releasing the path
    reopened = QdrantStore(AsyncQdrantClient(path=str(tmp_path)), "kb/on disk", DIMS,
                           "euclidean")
    try:
        assert await reopened.count() == 4
        assert (await reopened.search(CORPUS[2].vector, top_k=1))[0].id == CORPUS[2].id
        assert (await reopened.health()).ok
    finally:
        await reopened.drop()
        await reopened.aclose()
