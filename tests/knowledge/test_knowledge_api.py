"""Knowledge bases through HTTP: CRUD, documents (upload, text, URL), search with
filters and hybrid retrieval, on the embedded default with the offline model."""

from __future__ import annotations

import io

import pytest
from quart.datastructures import FileStorage

from tests.gateway.conftest import create, mock, model_spec, upstream_keys  # noqa: F401
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401

CHUNKING = {"strategy": "paragraph", "size": 400, "overlap": 0}


@pytest.fixture(params=["embedded", "qdrant", "pgvector"])
def kb_spec(request) -> dict:
    """The same API behaviour on every backend."""
    backend: dict = {"type": request.param}
    if request.param == "pgvector":
        backend["url"] = request.getfixturevalue("postgres_url")
    return {"id": "kb1", "name": "Handbook", "backend": backend, "chunking": CHUNKING}


async def add_text(client, text, **extra):
    response = await client.post("/admin/knowledge-bases/kb1/documents",
                                 json={"text": text, **extra})
    body = await response.get_json()
    assert response.status_code == 201, body
    return body["data"][0]


@pytest.fixture
async def kb(client, kb_spec):
    await create(client, "/admin/knowledge-bases", kb_spec)
    await add_text(client, "Cats are small domesticated felines that purr.\n\n"
                   "They sleep most of the day.", id="cats",
                   metadata={"topic": "animals", "year": 2021})
    await add_text(client, "The quarterly revenue grew by twelve percent.\n\n"
                   "Costs were flat.", id="finance", metadata={"topic": "finance", "year": 2024})
    await add_text(client, "Dogs are loyal companions and love long walks.", id="dogs",
                   metadata={"topic": "animals", "year": 2019, "tags": ["pets"]})
    return "kb1"


async def search(client, **body):
    response = await client.post("/v1/knowledge-bases/kb1/search", json=body)
    data = await response.get_json()
    assert response.status_code == 200, data
    return data


async def test_kb_crud_with_counts_and_health(client, kb, kb_spec):
    got = await (await client.get("/admin/knowledge-bases/kb1")).get_json()
    assert got["object"] == "knowledge_base"
    assert got["backend"]["type"] == kb_spec["backend"]["type"]
    assert got["embedding"]["dimensions"] == 384
    assert got["document_count"] == 3 and got["chunk_count"] >= 3
    assert got["health"]["ok"] is True
    listing = await (await client.get("/admin/knowledge-bases")).get_json()
    assert [k["id"] for k in listing["data"]] == ["kb1"]


async def test_search_ranks_by_meaning(client, kb):
    result = await search(client, query="Which animal purrs?", top_k=3)
    assert result["count"] == 3
    top = result["documents"][0]
    assert top["document_id"] == "cats" and "purr" in top["content"]
    scores = [d["score"] for d in result["documents"]]
    assert scores == sorted(scores, reverse=True)
    assert set(top) >= {"id", "document_id", "content", "score", "metadata", "chunk_index"}
    assert top["metadata"]["topic"] == "animals"


async def test_search_filters(client, kb):
    only_finance = await search(client, query="animals", top_k=10,
                                filter={"field": "topic", "operator": "eq", "value": "finance"})
    assert {d["document_id"] for d in only_finance["documents"]} == {"finance"}
    grouped = await search(client, query="pets", top_k=10, filter={
        "operator": "AND", "conditions": [
            {"field": "topic", "operator": "eq", "value": "animals"},
            {"operator": "OR", "conditions": [
                {"field": "year", "operator": "lt", "value": 2020},
                {"field": "tags", "operator": "exists"}]}]})
    assert {d["document_id"] for d in grouped["documents"]} == {"dogs"}
    threshold = await search(client, query="Which animal purrs?", top_k=10,
                             similarity_threshold=0.99)
    assert threshold["count"] == 0


@pytest.mark.parametrize(("flt", "param"), [
    ({"field": "year", "operator": "between", "value": 1}, "filter"),
    ({"field": "year", "operator": "in", "value": 3}, "filter"),
    ({"operator": "AND", "conditions": []}, "filter"),
    ({"field": "", "operator": "eq", "value": 1}, "filter"),
])
async def test_invalid_filters_are_400(client, kb, flt, param):
    response = await client.post("/v1/knowledge-bases/kb1/search",
                                 json={"query": "x", "filter": flt})
    error = (await response.get_json())["error"]
    assert response.status_code == 400, error
    assert error["param"].startswith(param)


async def test_hybrid_search_finds_exact_terms(client, kb):
    result = await search(client, query="quarterly revenue", top_k=2, hybrid=True)
    assert result["documents"][0]["document_id"] == "finance"


async def test_upload_list_get_replace_delete(client, kb):
    upload = await client.post("/admin/knowledge-bases/kb1/documents", files={
        "file": FileStorage(io.BytesIO(b"# Title\n\nUploaded words about bicycles."),
                            filename="bikes.md", content_type="text/markdown")},
        form={"metadata": '{"topic": "transport"}', "document_id": "bikes"})
    body = await upload.get_json()
    assert upload.status_code == 201, body
    assert body["data"][0]["id"] == "bikes" and body["data"][0]["chunk_count"] >= 1

    listing = await (await client.get("/admin/knowledge-bases/kb1/documents")).get_json()
    assert {d["id"] for d in listing["data"]} == {"cats", "finance", "dogs", "bikes"}
    one = await (await client.get("/admin/knowledge-bases/kb1/documents/bikes")).get_json()
    assert one["metadata"]["topic"] == "transport"
    assert one["chunks"] and "bicycles" in one["chunks"][0]["content"]

    replaced = await client.put("/admin/knowledge-bases/kb1/documents/bikes",
                                json={"text": "Now about tricycles only."})
    assert replaced.status_code == 200, await replaced.get_json()
    hits = await search(client, query="bicycles tricycles", top_k=10,
                        filter={"field": "document_id", "operator": "eq", "value": "bikes"})
    assert [d["content"] for d in hits["documents"]] == ["Now about tricycles only."]

    deleted = await client.delete("/admin/knowledge-bases/kb1/documents/bikes")
    assert (await deleted.get_json())["deleted"] is True
    gone = await search(client, query="tricycles", top_k=10,
                        filter={"field": "document_id", "operator": "eq", "value": "bikes"})
    assert gone["count"] == 0
    assert (await client.get("/admin/knowledge-bases/kb1/documents/bikes")).status_code == 404


async def test_bad_documents_are_400_and_change_nothing(client, kb):
    empty = await client.post("/admin/knowledge-bases/kb1/documents", json={"text": ""})
    assert empty.status_code == 400
    both = await client.post("/admin/knowledge-bases/kb1/documents",
                             json={"text": "x", "url": "https://example.com"})
    assert both.status_code == 400
    for url in ("http://127.0.0.1:1/x", "http://169.254.169.254/latest/meta-data",
                "http://localhost/x", "file:///etc/passwd"):
        blocked = await client.post("/admin/knowledge-bases/kb1/documents", json={"url": url})
        error = (await blocked.get_json())["error"]
        assert blocked.status_code == 400, url
        assert error["param"] == "url"
    listing = await (await client.get("/admin/knowledge-bases/kb1/documents")).get_json()
    assert listing["total"] == 3


async def test_kb_validation(client, mock):  # noqa: F811
    bad = await client.post("/admin/knowledge-bases", json={
        "id": "kb2", "embedding": {"model": "missing", "dimensions": 8}})
    assert bad.status_code == 400
    assert (await bad.get_json())["error"]["param"] == "embedding.model"
    await create(client, "/admin/models", model_spec("chat1", "openai", mock.url))
    chat = await client.post("/admin/knowledge-bases", json={
        "id": "kb2", "embedding": {"model": "chat1", "dimensions": 8}})
    assert chat.status_code == 400
    overlap = await client.post("/admin/knowledge-bases", json={
        "id": "kb2", "chunking": {"size": 100, "overlap": 100}})
    assert overlap.status_code == 400
    missing = await client.post("/v1/knowledge-bases/nope/search", json={"query": "x"})
    assert missing.status_code == 404


async def test_gateway_embedding_model(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("emb", "openai", mock.url,
                                                     type="embedding", dimensions=8))
    await create(client, "/admin/knowledge-bases", {
        "id": "kb3", "embedding": {"model": "emb", "dimensions": 8}})
    added = await client.post("/admin/knowledge-bases/kb3/documents",
                              json={"text": "hello embeddings through the gateway"})
    assert added.status_code == 201, await added.get_json()
    result = await client.post("/v1/knowledge-bases/kb3/search", json={"query": "hello"})
    assert (await result.get_json())["count"] == 1
    assert any(r["path"].endswith("/embeddings") for r in mock.requests())


async def test_deleting_a_kb_drops_its_documents(client, kb, kb_spec):
    assert (await client.delete("/admin/knowledge-bases/kb1")).status_code == 200
    await create(client, "/admin/knowledge-bases", kb_spec)
    listing = await (await client.get("/admin/knowledge-bases/kb1/documents")).get_json()
    assert listing["total"] == 0
    result = await search(client, query="cats", top_k=10)
    assert result["count"] == 0


async def test_key_permissions_apply_to_search(client, anonymous, kb):
    response = await client.post("/admin/api-keys", json={
        "name": "no kb", "permissions": {"knowledge_bases": "none"}})
    secret = (await response.get_json())["secret"]
    refused = await anonymous.post("/v1/knowledge-bases/kb1/search", json={"query": "x"},
                                   headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 403


async def test_rerunning_a_batch_skips_what_is_already_stored(client, kb):
    again = await client.post("/admin/knowledge-bases/kb1/documents", json={
        "id": "cats", "text": "Cats are small domesticated felines that purr.\n\n"
        "They sleep most of the day.", "metadata": {"topic": "animals", "year": 2021}})
    body = await again.get_json()
    assert again.status_code == 201, body
    assert body["data"] == [] and body["skipped"] == [{"name": "cats", "reason": "unchanged"}]
    changed = await client.post("/admin/knowledge-bases/kb1/documents", json={
        "id": "cats", "text": "Cats are small domesticated felines that purr.\n\n"
        "They sleep most of the day.", "metadata": {"topic": "animals", "year": 2022}})
    assert (await changed.get_json())["data"][0]["metadata"]["year"] == 2022
