"""Knowledge bases, documents and search."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from engine.schemas.common import ResourceId, Strict

LOCAL_EMBEDDING_MODEL = "local:all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384


class BackendSpec(Strict):
    type: Literal["embedded", "pgvector", "qdrant"] = Field(
        "embedded", description="embedded: in-process, no server; pgvector: PostgreSQL; "
        "qdrant: a Qdrant server")
    url: str | None = Field(
        None, max_length=2048,
        description="pgvector: a PostgreSQL URL (default: Headrace's own database if it is "
        "PostgreSQL); qdrant: the server URL (default: local mode under the data dir)")
    credentials: str | None = Field(None, max_length=512,
                                    description="Secret reference for the backend's API key")


class EmbeddingSpec(Strict):
    model: str = Field(LOCAL_EMBEDDING_MODEL, min_length=1, max_length=128,
                       description="A gateway embedding model id, or local:all-MiniLM-L6-v2 "
                       "(offline, 384 dimensions)")
    dimensions: int = Field(LOCAL_DIMENSIONS, ge=1, le=16_000)
    batch_size: int = Field(64, ge=1, le=2048)
    concurrency: int = Field(2, ge=1, le=32)

    @model_validator(mode="after")
    def _local(self) -> EmbeddingSpec:
        if self.model == LOCAL_EMBEDDING_MODEL and self.dimensions != LOCAL_DIMENSIONS:
            raise ValueError(f"{LOCAL_EMBEDDING_MODEL} has {LOCAL_DIMENSIONS} dimensions")
        return self


class ChunkingSpec(Strict):
    strategy: Literal["fixed", "sentence", "paragraph", "recursive", "token"] = "recursive"
    size: int = Field(1000, ge=16, le=100_000, description="In `unit`s")
    overlap: int = Field(100, ge=0, le=50_000)
    unit: Literal["chars", "tokens"] = "chars"

    @model_validator(mode="after")
    def _overlap(self) -> ChunkingSpec:
        if self.overlap >= self.size:
            raise ValueError("overlap must be smaller than size")
        return self


class KnowledgeBaseSpec(Strict):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    backend: BackendSpec = Field(default_factory=BackendSpec)
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec)
    distance: Literal["cosine", "euclidean", "inner_product"] = "cosine"
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=20_000)
    top_k: int = Field(10, ge=1, le=1000)
    similarity_threshold: float | None = Field(None, ge=-1_000_000, le=1_000_000)
    filter: dict[str, Any] | None = Field(
        None, description='{"field", "operator", "value"} or {"operator": "AND"|"OR", '
        '"conditions": [...]}')
    hybrid: bool = Field(False, description="Fuse vector and keyword results (RRF)")


class SearchDocument(BaseModel):
    id: str
    document_id: str
    content: str
    score: float
    metadata: dict[str, Any]
    chunk_index: int


class SearchResponse(BaseModel):
    documents: list[SearchDocument]
    count: int


class S3Source(Strict):
    """Every object under an S3 prefix; unchanged objects (same ETag) are skipped."""

    bucket: str = Field(min_length=3, max_length=63,
                        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field("", max_length=1024)
    region: str = Field("us-east-1", min_length=1, max_length=64,
                        pattern=r"^[a-z0-9-]+$")
    endpoint_url: str | None = Field(None, max_length=2048,
                                     description="An S3-compatible endpoint (http or https)")
    credentials: str | None = Field(
        None, max_length=512,
        description='Secret reference to JSON {"aws_access_key_id", "aws_secret_access_key"}; '
        "default: the AWS credential chain")
    max_objects: int = Field(1000, ge=1, le=100_000)

    @field_validator("endpoint_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must be http:// or https://")
        return value


class TextDocument(Strict):
    """A document given as text (or JSON) in the request body."""

    id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    name: str | None = Field(None, max_length=512)
    text: str | None = Field(None, min_length=1)
    url: str | None = Field(None, max_length=2048, description="Fetch the document from here")
    s3: S3Source | None = Field(None, description="Ingest every object under an S3 prefix")
    content_type: str | None = Field(None, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunking: ChunkingSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TextDocument:
        if sum(v is not None for v in (self.text, self.url, self.s3)) != 1:
            raise ValueError("give exactly one of text, url or s3")
        return self

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("url must be http:// or https://")
        return value


class Document(BaseModel):
    id: str
    object: Literal["document"] = "document"
    knowledge_base_id: str
    name: str
    source: str
    content_type: str | None
    status: Literal["ready", "failed", "ingesting"]
    error: str | None
    chunk_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
