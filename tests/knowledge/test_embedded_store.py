"""Behaviour of the embedded default vector store (Qdrant Edge in-process).

Filter semantics across backends are covered by `test_vector_stores.py`; these
tests cover the store itself: upsert/replace, delete, count, persistence,
thresholds, keyword search, distances and the HNSW path after optimizing.
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path

import pytest

from connectors.vector.embedded import EmbeddedStore
from engine.knowledge.filters import parse_filter
from engine.knowledge.store import Chunk

DIMS = 8


def _vec(rng: random.Random, dims: int = DIMS) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(dims)]


def _chunks(n: int, seed: int = 1, doc_size: int = 4) -> list[Chunk]:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta"]
    return [Chunk(id=f"d{i // doc_size}:{i % doc_size}", document_id=f"d{i // doc_size}",
                  chunk_index=i % doc_size, content=f"chunk {i} {words[i % 4]} text",
                  vector=_vec(rng), metadata={"i": i, "even": i % 2 == 0,
                                              "tags": ["x"] if i % 3 == 0 else [],
                                              "meta": {"kind": "k" + str(i % 5)}})
            for i in range(n)]


async def _store(tmp_path: Path, distance: str = "cosine", dims: int = DIMS) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path / "knowledge", "kb1", dims, distance)  # type: ignore[arg-type]
    await store.create()
    return store


async def test_upsert_search_replace_and_delete(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    chunks = _chunks(20)
    await store.upsert(chunks)
    assert await store.count() == 20
    hits = await store.search(chunks[7].vector, top_k=3)
    assert hits[0].id == chunks[7].id and math.isclose(hits[0].score, 1.0, abs_tol=1e-5)
    assert hits[0].metadata == chunks[7].metadata and hits[0].content == chunks[7].content
    assert hits[0].document_id == "d1" and hits[0].chunk_index == 3
    # replace by id
    changed = Chunk(id=chunks[7].id, document_id="d1", chunk_index=3, content="new",
                    vector=chunks[0].vector, metadata={"v": 2})
    await store.upsert([changed])
    assert await store.count() == 20
    top = (await store.search(chunks[0].vector, top_k=2))
    assert {h.id for h in top} == {chunks[0].id, chunks[7].id}
    assert next(h for h in top if h.id == chunks[7].id).metadata == {"v": 2}
    assert await store.delete_document("d1") == 4
    assert await store.delete_document("d1") == 0
    assert await store.count() == 16
    await store.drop()
    await store.aclose()


async def test_filters_and_count(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    chunks = _chunks(30)
    await store.upsert(chunks)
    flt = parse_filter({"operator": "AND", "conditions": [
        {"field": "even", "operator": "eq", "value": True},
        {"field": "meta.kind", "operator": "in", "value": ["k0", "k2"]},
        {"field": "tags", "operator": "notExists"}]})
    expected = {c.id for c in chunks if c.metadata["i"] % 2 == 0
                and c.metadata["i"] % 5 in (0, 2) and c.metadata["i"] % 3 != 0}
    hits = await store.search(chunks[0].vector, top_k=30, filter=flt)
    assert {h.id for h in hits} == expected
    assert await store.count(flt) == len(expected)
    assert await store.count(parse_filter({"field": "tags", "operator": "contains",
                                           "value": "x"})) == 10
    rng = parse_filter({"field": "i", "operator": "gte", "value": 25})
    assert await store.count(rng) == 5
    await store.drop()
    await store.aclose()


async def test_persistence_across_reopen(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    chunks = _chunks(12)
    await store.upsert(chunks)
    await store.aclose()
    again = EmbeddedStore(tmp_path / "knowledge", "kb1", DIMS, "cosine")
    assert await again.count() == 12
    assert (await again.search(chunks[3].vector, top_k=1))[0].id == chunks[3].id
    flt = parse_filter({"field": "meta.kind", "operator": "eq", "value": "k1"})
    assert await again.count(flt) == 3
    assert (await again.health()).ok
    await again.aclose()


async def test_keyword_search_bm25(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    chunks = _chunks(12)
    await store.upsert(chunks)
    hits = await store.keyword_search("gamma", top_k=10)
    assert {h.id for h in hits} == {c.id for c in chunks if "gamma" in c.content}
    assert all(h.score > 0 for h in hits)
    flt = parse_filter({"field": "i", "operator": "lt", "value": 5})
    assert [h.id for h in await store.keyword_search("Gamma", top_k=10, filter=flt)] == ["d0:2"]
    assert await store.keyword_search("nothing-here", top_k=5) == []
    assert await store.keyword_search("  ", top_k=5) == []
    await store.drop()
    await store.aclose()


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "inner_product"])
async def test_scores_and_threshold(tmp_path: Path, distance: str) -> None:
    store = await _store(tmp_path, distance)
    chunks = _chunks(15)
    await store.upsert(chunks)
    query = _vec(random.Random(5))

    def score(v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(query, v, strict=True))
        if distance == "cosine":
            return dot / math.sqrt(sum(a * a for a in query) * sum(b * b for b in v))
        if distance == "euclidean":
            return 1 / (1 + math.dist(query, v))
        return dot

    ranked = sorted(((c.id, score(c.vector)) for c in chunks), key=lambda t: -t[1])
    hits = await store.search(query, top_k=5)
    assert [h.id for h in hits] == [i for i, _ in ranked[:5]]
    for hit, (_, s) in zip(hits, ranked, strict=False):
        assert math.isclose(hit.score, s, rel_tol=1e-4, abs_tol=1e-4)
    threshold = ranked[3][1] - 1e-6
    above = await store.search(query, top_k=10, similarity_threshold=threshold)
    assert [h.id for h in above] == [i for i, _ in ranked[:4]]
    await store.drop()
    await store.aclose()


async def test_hnsw_path_after_optimize_with_selective_filter(tmp_path: Path) -> None:
    dims = 16
    rng = random.Random(3)
    chunks = [Chunk(id=f"c{i}", document_id=f"doc{i // 10}", chunk_index=i % 10, content="t",
                    vector=_vec(rng, dims), metadata={"group": i % 200})
              for i in range(12000)]
    store = await _store(tmp_path, dims=dims)
    await store.upsert(chunks)
    await store.optimize()
    query = _vec(random.Random(9), dims)
    hits = await store.search(query, top_k=10)
    assert len(hits) == 10
    flt = parse_filter({"field": "group", "operator": "eq", "value": 7})
    filtered = await store.search(query, top_k=10, filter=flt)
    assert len(filtered) == 10 and all(h.metadata["group"] == 7 for h in filtered)
    assert await store.count(flt) == 60
    await store.drop()
    await store.aclose()


async def test_concurrent_writes_and_reads(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    batches = [_chunks(10, seed=s) for s in range(5)]
    renamed = [[Chunk(id=f"b{b}-{c.id}", document_id=f"b{b}", chunk_index=c.chunk_index,
                      content=c.content, vector=c.vector, metadata=c.metadata) for c in batch]
               for b, batch in enumerate(batches)]
    await asyncio.gather(*(store.upsert(b) for b in renamed),
                         *(store.search(batches[0][0].vector, top_k=3) for _ in range(5)))
    assert await store.count() == 50
    await store.drop()
    await store.aclose()


async def test_wrong_dimensions_rejected(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    with pytest.raises(Exception, match="dimensions"):
        await store.search([0.1, 0.2], top_k=1)
    await store.aclose()
