"""Knowledge-base ingestion from an S3 prefix (moto server), incremental by ETag."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiobotocore.session import get_session

from api.knowledge import s3_document_id
from tests.gateway.conftest import create
from tests.support.secret_servers import MotoServer

DOCS = "/admin/knowledge-bases/kb1/documents"
CHUNKING = {"strategy": "paragraph", "size": 400, "overlap": 0}
OBJECTS = {
    "docs/cats.md": "# Cats\n\nCats are small domesticated felines that purr.",
    "docs/dogs.txt": "Dogs are loyal companions and love long walks.",
    "docs/sub/finance.txt": "The quarterly revenue grew by twelve percent.",
}


async def put(moto: MotoServer, bucket: str, objects: dict[str, str | bytes], *,
              create_bucket: bool = False) -> None:
    async with get_session().create_client("s3", region_name="us-east-1",
                                           endpoint_url=moto.endpoint_url) as s3:
        if create_bucket:
            await s3.create_bucket(Bucket=bucket)
        for key, body in objects.items():
            await s3.put_object(Bucket=bucket, Key=key,
                                Body=body.encode() if isinstance(body, str) else body)


@pytest.fixture
async def bucket(moto: MotoServer) -> str:
    name = f"kb-{uuid.uuid4().hex[:12]}"
    await put(moto, name, OBJECTS, create_bucket=True)
    return name


@pytest.fixture
async def kb(client) -> str:
    await create(client, "/admin/knowledge-bases",
                 {"id": "kb1", "name": "Docs", "chunking": CHUNKING})
    return "kb1"


async def ingest(client, moto: MotoServer, bucket: str, status: int = 201, **extra) -> dict:
    response = await client.post(DOCS, json={"s3": {
        "bucket": bucket, "prefix": "docs/", "endpoint_url": moto.endpoint_url, **extra}})
    body = await response.get_json()
    assert response.status_code == status, body
    return body


async def search(client, query: str) -> list[dict]:
    response = await client.post("/v1/knowledge-bases/kb1/search",
                                 json={"query": query, "top_k": 10})
    assert response.status_code == 200
    return (await response.get_json())["documents"]


async def test_ingest_then_reingest_skips_unchanged_and_replaces_changed(
        client, kb, moto, bucket):
    first = await ingest(client, moto, bucket)
    assert first["errors"] == [] and first["skipped"] == []
    ids = {d["id"] for d in first["data"]}
    assert ids == {"docs-cats.md", "docs-dogs.txt", "docs-sub-finance.txt"}
    cats = next(d for d in first["data"] if d["id"] == "docs-cats.md")
    assert cats["metadata"]["source_uri"] == f"s3://{bucket}/docs/cats.md"
    assert cats["metadata"]["s3_etag"] and cats["source"] == f"s3://{bucket}/docs/cats.md"
    listing = await (await client.get(DOCS)).get_json()
    assert listing["total"] == 3

    again = await ingest(client, moto, bucket)
    assert again["data"] == [] and again["errors"] == []
    assert sorted(s["name"] for s in again["skipped"]) == sorted(OBJECTS)
    assert {s["reason"] for s in again["skipped"]} == {"unchanged"}

    await put(moto, bucket, {"docs/dogs.txt": "Parrots are colourful birds that mimic speech."})
    changed = await ingest(client, moto, bucket)
    assert [d["id"] for d in changed["data"]] == ["docs-dogs.txt"]
    assert changed["data"][0]["metadata"]["s3_etag"] != next(
        d for d in first["data"] if d["id"] == "docs-dogs.txt")["metadata"]["s3_etag"]
    assert sorted(s["name"] for s in changed["skipped"]) == ["docs/cats.md",
                                                             "docs/sub/finance.txt"]
    contents = [h["content"] for h in await search(client, "pets and birds")
                if h["document_id"] == "docs-dogs.txt"]
    assert contents and all("Parrots" in c for c in contents)
    everything = " ".join(h["content"] for h in await search(client, "loyal dogs walks"))
    assert "loyal companions" not in everything
    assert (await (await client.get(DOCS)).get_json())["total"] == 3


async def test_missing_bucket_is_400_naming_it(client, kb, moto):
    body = await ingest(client, moto, "no-such-bucket-here", status=400)
    assert body["error"]["param"] == "s3"
    assert "no-such-bucket-here" in body["error"]["message"]
    assert "testing" not in orjson.dumps(body).decode()


async def test_unparseable_object_is_an_error_while_others_succeed(client, kb, moto, bucket):
    await put(moto, bucket, {"docs/blob.bin": bytes(range(256)) * 4})
    body = await ingest(client, moto, bucket)
    assert {d["id"] for d in body["data"]} == {"docs-cats.md", "docs-dogs.txt",
                                               "docs-sub-finance.txt"}
    assert [e["name"] for e in body["errors"]] == ["docs/blob.bin"]
    # The failed object stored nothing, so the next run tries it again.
    again = await ingest(client, moto, bucket)
    assert [e["name"] for e in again["errors"]] == ["docs/blob.bin"]
    assert len(again["skipped"]) == 3


async def test_credentials_from_a_secret_reference(client, kb, moto, bucket, monkeypatch):
    monkeypatch.setenv("S3_TEST_CREDS", orjson.dumps(
        {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}).decode())
    body = await ingest(client, moto, bucket, credentials="env:S3_TEST_CREDS", max_objects=2)
    assert len(body["data"]) == 2
    monkeypatch.setenv("S3_BAD_CREDS", "not json")
    bad = await ingest(client, moto, bucket, status=400, credentials="env:S3_BAD_CREDS")
    assert bad["error"]["param"] == "s3.credentials"


@pytest.mark.parametrize("s3", [
    {"bucket": "Bad_Bucket"},
    {"bucket": "ok-bucket", "endpoint_url": "ftp://example.com"},
    {"bucket": "ok-bucket", "max_objects": 0},
])
async def test_invalid_s3_sources_are_400(client, kb, s3):
    response = await client.post(DOCS, json={"s3": s3})
    assert response.status_code == 400
    both = await client.post(DOCS, json={"text": "x", "s3": {"bucket": "ok-bucket"}})
    assert both.status_code == 400


def test_document_ids_from_keys():
    assert s3_document_id("a/b c.txt") == "a-b-c.txt"
    long = s3_document_id("x" * 300)
    assert len(long) == 128 and long != s3_document_id("x" * 299)


def test_cli_posts_the_s3_source_and_prints_counts(monkeypatch):
    import httpx
    from click.testing import CliRunner

    from api.cli import cli

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"object": "list", "data": [
            {"id": "a", "chunk_count": 2}], "errors": [{"name": "b.bin", "error": "bad"}],
            "skipped": [{"name": "c.txt", "reason": "unchanged"}]})

    real = httpx.Client
    monkeypatch.setattr(httpx, "Client",
                        lambda **kw: real(transport=httpx.MockTransport(handler), **kw))
    result = CliRunner().invoke(cli, [
        "ingest", "kb1", "s3://my-bucket/docs/", "--api-key", "k",
        "--s3-endpoint-url", "http://127.0.0.1:9000", "--s3-region", "eu-west-1"])
    assert result.exit_code == 1, result.output
    assert "1 ingested, 1 skipped (unchanged), 1 failed" in result.output
    assert sent[0].url.path == "/admin/knowledge-bases/kb1/documents"
    assert orjson.loads(sent[0].content) == {"s3": {
        "bucket": "my-bucket", "prefix": "docs/", "region": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:9000"}}
