"""Knowledge bases: `/admin/knowledge-bases` (CRUD, documents) and
`POST /v1/knowledge-bases/<id>/search`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError
from quart import Blueprint, g, request
from quart_schema import tag

from api.admin.resources import mount
from api.operations import accept
from api.state import app_state
from api.validation import json_body, query_args, responds
from connectors import s3
from connectors.web import fetch
from engine.errors import HeadraceError, InvalidRequest, NotFound, UnsupportedMediaType
from engine.knowledge.service import document_body, document_id_for
from engine.schemas.common import Deleted, Page
from engine.schemas.knowledge import (
    Document,
    KnowledgeBaseSpec,
    S3Source,
    SearchDocument,
    SearchRequest,
    SearchResponse,
    TextDocument,
)
from engine.store.resources import ResourceRecord
from engine.validation import invalid_from, parse_spec

blueprint = Blueprint("knowledge", __name__)
TAG = ["Knowledge bases"]


async def _describe(record: ResourceRecord) -> dict[str, Any]:
    spec = parse_spec(KnowledgeBaseSpec, record.spec)
    return await app_state().knowledge.stats(spec)


mount(blueprint, "knowledge_base", KnowledgeBaseSpec, "knowledge-bases", "Knowledge base",
      describe=_describe,
      extra_fields={"document_count": (int | None, None), "chunk_count": (int | None, None),
                    "health": (dict[str, Any] | None, None)})


async def _spec(kb_id: str) -> KnowledgeBaseSpec:
    record = await app_state().resources.get("knowledge_base", kb_id)
    return parse_spec(KnowledgeBaseSpec, record.spec)


class IngestError(BaseModel):
    name: str
    error: str


class IngestSkipped(BaseModel):
    name: str
    reason: str


class IngestResult(BaseModel):
    object: Literal["list"] = "list"
    data: list[Document]
    errors: list[IngestError]
    skipped: list[IngestSkipped] = []


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Document]
    total: int
    limit: int
    offset: int
    has_more: bool


class Chunk(BaseModel):
    id: str
    chunk_index: int
    content: str
    metadata: dict[str, Any]


class DocumentWithChunks(Document):
    chunks: list[Chunk]


S3_CONCURRENCY = 4  # objects fetched at once


def s3_document_id(key: str) -> str:
    """A document id from an object key: the allowed characters, at most 128 (a long
    key keeps a hash of itself so truncated keys stay distinct)."""
    cleaned = re.sub(r"[^A-Za-z0-9._:-]+", "-", key).strip("-") or "object"
    if len(cleaned) > 128:
        cleaned = f"{cleaned[:119]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return cleaned


async def _s3_credentials(reference: str | None) -> dict[str, str] | None:
    if reference is None:
        return None
    value = await app_state().secrets.get(reference)
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("aws_access_key_id"), str)
            and isinstance(data.get("aws_secret_access_key"), str)):
        raise InvalidRequest(f"{reference} must hold JSON with aws_access_key_id and "
                             "aws_secret_access_key", param="s3.credentials")
    return data


async def _s3_sources(kb_id: str, body: TextDocument) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, str]]]:
    """The objects under the prefix that changed since their last ingest (each with a
    `fetch` coroutine function instead of `data`), and those skipped as unchanged."""
    source: S3Source = body.s3  # type: ignore[assignment]
    state = app_state()
    access = {"region": source.region, "endpoint_url": source.endpoint_url,
              "credentials": await _s3_credentials(source.credentials)}
    objects = await s3.list_objects(source.bucket, source.prefix,
                                    max_objects=source.max_objects, **access)
    max_bytes = state.settings.knowledge_max_document_bytes
    todo: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for obj in objects:
        document_id = s3_document_id(obj.key)
        if document_id in seen:
            todo.append({"name": obj.key, "error": f"document id '{document_id}' is also "
                         f"that of {seen[document_id]}"})
            continue
        seen[document_id] = obj.key
        try:
            existing = await state.knowledge.get_document(kb_id, document_id)
        except NotFound:
            existing = None
        if existing is not None and obj.etag and existing.etag == obj.etag:
            skipped.append({"name": obj.key, "reason": "unchanged"})
            continue
        uri = f"s3://{source.bucket}/{obj.key}"

        async def fetch_object(key: str = obj.key) -> bytes:
            return await s3.get_object(source.bucket, key, max_bytes=max_bytes, **access)

        todo.append({"name": obj.key, "fetch": fetch_object, "content_type": body.content_type,
                     "source": uri, "id": document_id, "etag": obj.etag,
                     "chunking": body.chunking,
                     "metadata": {**body.metadata, "source_uri": uri, "s3_etag": obj.etag}})
    return todo, skipped


async def _fetched(sources: list[dict[str, Any]]):
    """Each source with its data, fetching at most S3_CONCURRENCY ahead (bounded
    memory); a failed fetch yields the source with an `error`."""
    async def load(source: dict[str, Any]) -> dict[str, Any]:
        if "fetch" not in source:
            return source
        try:
            return {**source, "data": await source["fetch"]()}
        except HeadraceError as error:
            return {**source, "error": error.message}

    remaining = iter(sources)
    pending: deque[asyncio.Task] = deque()

    def start() -> None:
        nxt = next(remaining, None)
        if nxt is not None:
            pending.append(asyncio.ensure_future(load(nxt)))

    for _ in range(S3_CONCURRENCY):
        start()
    try:
        while pending:
            task = pending.popleft()
            start()
            yield await task
    finally:
        for task in pending:
            task.cancel()


async def _sources(kb_id: str, document_id: str | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """What the request wants ingested: uploaded files, one text/URL document, or the
    changed objects under an S3 prefix; and what was skipped as unchanged."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        form, files = await request.form, await request.files
        metadata: dict[str, Any] = {}
        if form.get("metadata"):
            try:
                metadata = orjson.loads(form["metadata"])
            except orjson.JSONDecodeError:
                raise InvalidRequest("metadata: not valid JSON", param="metadata") from None
            if not isinstance(metadata, dict):
                raise InvalidRequest("metadata: must be a JSON object", param="metadata")
        uploads = files.getlist("file") or files.getlist("files")
        if not uploads:
            raise InvalidRequest("upload at least one file in the field `file`", param="file")
        if document_id is not None and len(uploads) != 1:
            raise InvalidRequest("replacing a document takes exactly one file", param="file")
        return [{"name": f.filename or "upload", "data": f.read(),
                 "content_type": f.mimetype or None, "source": f"upload:{f.filename}",
                 "metadata": metadata, "id": document_id or form.get("document_id")}
                for f in uploads], []
    if mimetype != "application/json":
        raise UnsupportedMediaType("send multipart/form-data (files) or application/json "
                                   f"(text or url), not {mimetype or 'nothing'}")
    try:
        body = TextDocument.model_validate_json(await request.get_data())
    except ValidationError as error:
        raise invalid_from(error) from None
    return await _json_sources(kb_id, body, document_id)


async def _json_sources(kb_id: str, body: TextDocument, document_id: str | None = None
                        ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The documents a JSON body asks for: its text, the URL's content, or the
    changed objects under an S3 prefix (and those skipped as unchanged)."""
    state = app_state()
    if body.s3 is not None:
        if document_id is not None or body.id is not None:
            raise InvalidRequest("an s3 source names its documents by object key; "
                                 "give no document id", param="s3")
        return await _s3_sources(kb_id, body)
    if body.url is not None:
        settings = state.settings
        fetched = await fetch(body.url, allow_private=settings.knowledge_allow_private_urls,
                              max_bytes=settings.knowledge_max_document_bytes)
        name = body.name or fetched.url.rstrip("/").rsplit("/", 1)[-1] or fetched.url
        return [{"name": name, "data": fetched.data,
                 "content_type": body.content_type or fetched.content_type,
                 "source": fetched.url, "metadata": {"source_url": fetched.url, **body.metadata},
                 "id": document_id or body.id, "etag": fetched.etag, "chunking": body.chunking}
                ], []
    assert body.text is not None
    data = body.text.encode()
    # Without a name or id, the content names the document: two different texts
    # must not replace each other, and the same text again is the same document.
    name = body.name or body.id or f"text-{hashlib.sha256(data).hexdigest()[:16]}"
    return [{"name": name, "data": data,
             "content_type": body.content_type or "text/plain", "source": "text",
             "metadata": body.metadata, "id": document_id or body.id,
             "chunking": body.chunking}], []


def content_etag(spec: KnowledgeBaseSpec, source: dict[str, Any]) -> str:
    """What decides a document's chunks: its bytes, metadata and the settings that
    process them. The same again means nothing to do, so a batch can be re-run
    after a failure and only the missing or changed documents are ingested."""
    digest = hashlib.sha256(source["data"])
    digest.update(orjson.dumps([source["metadata"], source.get("content_type"),
                                (source.get("chunking") or spec.chunking).model_dump(),
                                spec.embedding.model_dump()], option=orjson.OPT_SORT_KEYS))
    return f"sha256:{digest.hexdigest()}"


async def _ingest(kb_id: str, document_id: str | None = None) -> tuple[dict, int]:
    if request.args.get("async", "").lower() in ("true", "1"):
        return await _accept_ingestion(kb_id, document_id)
    sources, skipped = await _sources(kb_id, document_id)
    result = await ingest_sources(kb_id, sources, skipped)
    return result, 201 if document_id is None else 200


async def _accept_ingestion(kb_id: str, document_id: str | None) -> Any:
    """`?async=true`: check the request now, ingest as an operation."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("async ingestion takes a JSON body (text, url or s3); "
                                   "upload files synchronously")
    await _spec(kb_id)
    try:
        body = TextDocument.model_validate_json(await request.get_data())
    except ValidationError as error:
        raise invalid_from(error) from None
    return await accept("ingestion", {"kb_id": kb_id, "document_id": document_id,
                                      "body": body.model_dump(mode="json")},
                        webhook_url=request.args.get("webhook_url"))


async def run_ingestion(row: Any, progress: Any) -> dict[str, Any]:
    """The `ingestion` operation: the same work and result as the synchronous call,
    reporting documents done of total as it goes."""
    kb_id, document_id = row.request["kb_id"], row.request.get("document_id")
    body = TextDocument.model_validate(row.request["body"])
    sources, skipped = await _json_sources(kb_id, body, document_id)
    return await ingest_sources(kb_id, sources, skipped, progress=progress)


async def ingest_sources(kb_id: str, sources: list[dict[str, Any]],
                         skipped: list[dict[str, str]], *, progress: Any = None
                         ) -> dict[str, Any]:
    spec = await _spec(kb_id)
    knowledge = app_state().knowledge
    done: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    total, chunks = len(sources) + len(skipped), 0

    async def report() -> None:
        if progress is not None:
            await progress({"documents_done": len(done) + len(errors) + len(skipped),
                            "documents_total": total, "chunks_done": chunks})

    async for source in _fetched(sources):
        if "error" in source:
            errors.append({"name": source["name"], "error": source["error"]})
            continue
        if not source.get("etag"):
            source["etag"] = content_etag(spec, source)
        source["id"] = source["id"] or document_id_for(source["name"])
        if await knowledge.unchanged(kb_id, source["id"], source["etag"]):
            skipped.append({"name": source["name"], "reason": "unchanged"})
            continue
        try:
            row = await knowledge.ingest(
                spec, source["data"], name=source["name"], source=source["source"],
                content_type=source["content_type"], metadata=source["metadata"],
                document_id=source["id"], chunking=source.get("chunking"),
                etag=source.get("etag"))
        except HeadraceError as error:
            errors.append({"name": source["name"], "error": error.message})
            await report()
            continue
        done.append(document_body(row))
        chunks += row.chunk_count
        await report()
    if not done and not skipped and errors:  # nothing stored: the request failed as a whole
        raise InvalidRequest(f"{errors[0]['name']}: {errors[0]['error']}",
                             code="ingestion_failed")
    return {"object": "list", "data": done, "errors": errors, "skipped": skipped}


@blueprint.post("/admin/knowledge-bases/<kb_id>/documents")
@tag(TAG)
@responds(201, IngestResult)
async def add_documents(kb_id: str) -> tuple[dict, int]:
    """Ingest documents: upload files (`multipart/form-data`, field `file`, optional
    `metadata` JSON and `document_id`), or JSON `{"text" | "url" | "s3", "metadata", ...}`.

    Parsed, chunked, embedded and stored; per-file failures are listed in `errors`.
    An `s3` source ingests every object under a prefix (document id: the key); objects
    whose ETag matches the stored document's are listed in `skipped`.
    """
    return await _ingest(kb_id)


@blueprint.put("/admin/knowledge-bases/<kb_id>/documents/<document_id>")
@tag(TAG)
@responds(200, IngestResult)
async def replace_document(kb_id: str, document_id: str) -> tuple[dict, int]:
    """Re-ingest a document under the same id; its old chunks go only once the new
    ones are stored."""
    await app_state().knowledge.get_document(kb_id, document_id)
    return await _ingest(kb_id, document_id)


@blueprint.get("/admin/knowledge-bases/<kb_id>/documents")
@tag(TAG)
@query_args(Page)
@responds(200, DocumentList)
async def list_documents(kb_id: str, query: Page) -> dict:
    """A knowledge base's documents."""
    await _spec(kb_id)
    rows, total = await app_state().knowledge.list_documents(kb_id, limit=query.limit,
                                                              offset=query.offset)
    return {"object": "list", "data": [document_body(r) for r in rows], "total": total,
            "limit": query.limit, "offset": query.offset,
            "has_more": query.offset + len(rows) < total}


@blueprint.get("/admin/knowledge-bases/<kb_id>/documents/<document_id>")
@tag(TAG)
@responds(200, DocumentWithChunks)
async def get_document(kb_id: str, document_id: str) -> dict:
    """A document with its chunks, in order."""
    spec = await _spec(kb_id)
    knowledge = app_state().knowledge
    row = await knowledge.get_document(kb_id, document_id)
    chunks = await knowledge.chunks_of(spec, row)
    return {**document_body(row), "chunks": [
        {"id": c.id, "chunk_index": c.chunk_index, "content": c.content,
         "metadata": c.metadata} for c in chunks]}


@blueprint.delete("/admin/knowledge-bases/<kb_id>/documents/<document_id>")
@tag(TAG)
@responds(200, Deleted)
async def delete_document(kb_id: str, document_id: str) -> dict:
    """Delete a document and its chunks."""
    spec = await _spec(kb_id)
    await app_state().knowledge.delete_document(spec, document_id)
    return {"id": document_id, "object": "document", "deleted": True}


@blueprint.post("/v1/knowledge-bases/<kb_id>/search")
@tag(TAG)
@json_body(SearchRequest)
@responds(200, SearchResponse)
async def search(kb_id: str, body: SearchRequest) -> dict:
    """Search a knowledge base: vector similarity, or hybrid (vector + keyword, fused
    with reciprocal rank fusion), with metadata filters."""
    app_state().governance.authorize(g.principal, "knowledge_bases", kb_id)
    spec = await _spec(kb_id)
    hits = await app_state().knowledge.search(spec, body)
    documents = [SearchDocument(id=h.id, document_id=h.document_id, content=h.content,
                                score=h.score, metadata=h.metadata,
                                chunk_index=h.chunk_index).model_dump() for h in hits]
    return {"documents": documents, "count": len(documents)}
