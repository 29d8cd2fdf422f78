"""SQLModel tables. The Alembic scripts in `migrations/` must create exactly this
schema; `tests/test_migrations.py` compares them on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from engine.store.types import JSONType, UTCDateTime

# Stable constraint names, so migrations can refer to them on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ResourceRow(SQLModel, table=True):
    """The current version of an admin resource (model, chain, prompt, workflow...).

    `spec` holds the resource as validated by its pydantic schema; the schema,
    not the table, defines its fields, so adding a field needs no migration.
    """

    __tablename__ = "resources"

    kind: str = Field(primary_key=True, max_length=32)
    id: str = Field(primary_key=True, max_length=64)
    version: int = Field(ge=1)
    spec: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class ResourceVersionRow(SQLModel, table=True):
    """Every version a resource ever had, the current one included."""

    __tablename__ = "resource_versions"

    kind: str = Field(primary_key=True, max_length=32)
    id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True, ge=1)
    spec: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    changed_by: str | None = Field(default=None, max_length=64)


class ResourceNameRow(SQLModel, table=True):
    """Names a client may use for a resource: models' and chains' ids and aliases.

    One table, one primary key, so a name is unique across models and chains and
    `"model": "<name>"` always means exactly one thing.
    """

    __tablename__ = "resource_names"

    name: str = Field(primary_key=True, max_length=128)
    kind: str = Field(max_length=32)
    id: str = Field(max_length=64, index=True)


class ApiKeyRow(SQLModel, table=True):
    """An API key. Only the SHA-256 of the secret is stored, with a short prefix
    for lookup and display; the secret itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    team_id: str | None = Field(default=None, max_length=64, index=True)
    prefix: str = Field(max_length=32, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    status: str = Field(max_length=16)
    admin: bool = False
    permissions: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    rate_limits: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    metadata_: dict[str, Any] = Field(sa_column=sa.Column("metadata", JSONType, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    last_used_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class UsageRow(SQLModel, table=True):
    """One served request's usage and cost; the request id makes writes idempotent."""

    __tablename__ = "usage_records"

    request_id: str = Field(primary_key=True, max_length=128)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    kind: str = Field(max_length=32)
    key_id: str | None = Field(default=None, max_length=64, index=True)
    team_id: str | None = Field(default=None, max_length=64, index=True)
    model: str | None = Field(default=None, max_length=128, index=True)
    deployment: str | None = Field(default=None, max_length=160)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    status: str = Field(max_length=64)
    stream: bool = False


class AuditRow(SQLModel, table=True):
    """One admin change: who, what, when, before and after (secrets redacted)."""

    __tablename__ = "audit_logs"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    actor_key_id: str | None = Field(default=None, max_length=64, index=True)
    action: str = Field(max_length=32)
    resource_type: str = Field(max_length=32, index=True)
    resource_id: str = Field(max_length=128)
    before: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    after: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    request_id: str | None = Field(default=None, max_length=128)


class DocumentRow(SQLModel, table=True):
    """A document in a knowledge base; its chunks live in the KB's vector store.

    `generation` changes on every (re)ingestion: chunk ids carry it, so a
    replacement stores the new chunks before removing the old ones.
    """

    __tablename__ = "kb_documents"

    kb_id: str = Field(primary_key=True, max_length=64)
    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(max_length=512)
    source: str = Field(max_length=2048)
    content_type: str | None = Field(default=None, max_length=128)
    etag: str | None = Field(default=None, max_length=256)
    status: str = Field(max_length=16)
    error: str | None = Field(default=None, max_length=2000)
    generation: int = 0
    chunk_count: int = 0
    metadata_: dict[str, Any] = Field(sa_column=sa.Column("metadata", JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class WorkflowRunRow(SQLModel, table=True):
    """One workflow run with its per-step trace, written once when the run ends."""

    __tablename__ = "workflow_runs"

    id: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(max_length=64, index=True)
    workflow_version: int
    key_id: str | None = Field(default=None, max_length=64)
    success: bool
    error: str | None = Field(default=None, max_length=4000)
    execution_time_ms: float
    tokens: int = 0
    cost_usd: float = 0.0
    record: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class OperationRow(SQLModel, table=True):
    """An asynchronous operation (chat completion, workflow run, ingestion).

    `request` says what to run; `result` is the body the synchronous call would
    have returned, `error` the OpenAI-shaped error when it failed.
    """

    __tablename__ = "operations"

    id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=32)
    status: str = Field(max_length=16, index=True)
    key_id: str | None = Field(default=None, max_length=64, index=True)
    team_id: str | None = Field(default=None, max_length=64, index=True)
    request: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    error: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    progress: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    webhook_url: str | None = Field(default=None, max_length=2048)
    # Who last started it and how many times it was started (more than once only
    # when a crashed or failed attempt was taken over).
    worker: str | None = Field(default=None, max_length=128)
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False,
                                                         server_default="0"))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    updated_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


class WebhookDeliveryRow(SQLModel, table=True):
    """One attempt to POST a finished operation to its webhook."""

    __tablename__ = "webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    operation_id: str = Field(max_length=64, index=True)
    attempt: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
