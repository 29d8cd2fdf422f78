"""Settings from `HEADRACE_*` environment variables and an optional YAML file.

Precedence, highest first: explicit arguments, environment, the file named by
`HEADRACE_CONFIG`, defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path(".headrace")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file under data_dir"
    )
    auto_migrate: bool | None = Field(
        None, description="Migrate at start-up; default yes for SQLite, no for PostgreSQL"
    )
    redis_url: str | None = None
    max_body_bytes: int = Field(26_214_400, gt=0, description="Largest request body accepted")
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    access_log: bool = True
    admin_api_key: SecretStr | None = None
    serve_ui: bool = True
    # Gateway
    catalog_refresh_s: float = Field(
        2.0, gt=0, description="How often models, chains and prompts are re-read (replicas)"
    )
    secrets_ttl_s: float = Field(300.0, ge=0, description="How long a resolved secret is cached")
    secrets_file_root: str | None = Field(
        None, description="If set, file: references must lie under this directory"
    )
    vault_addr: str | None = Field(None, description="Vault/OpenBao address for vault: refs")
    vault_token: SecretStr | None = None
    vault_namespace: str | None = None
    aws_region: str | None = Field(None, description="Region for aws: secret references")
    aws_endpoint_url: str | None = Field(None, description="Secrets Manager endpoint override")
    # Knowledge bases
    knowledge_allow_private_urls: bool = Field(
        False, description="Let document URLs point at private, loopback or link-local hosts")
    knowledge_max_document_bytes: int = Field(50_000_000, gt=0)
    # Async operations
    operations_mode: Literal["embedded", "distributed"] = Field(
        "embedded", description="embedded: run in the API process; distributed: the API "
        "only enqueues and `headrace worker` processes run them (PostgreSQL)")
    operations_max_concurrency: int = Field(
        4, ge=1, le=1000, description="Operations one process (API or worker) runs at once")
    operations_max_attempts: int = Field(
        3, ge=1, le=20, description="Distributed: attempts for a transient failure or a "
        "worker that died")
    operations_heartbeat_s: float = Field(
        10.0, gt=0, description="Distributed: how often a worker reports it is alive")
    operations_stalled_after_s: float = Field(
        30.0, gt=0, description="Distributed: a worker silent this long is presumed dead "
        "and its operations are requeued (must exceed heartbeat + shutdown grace)")
    operations_shutdown_grace_s: float = Field(
        10.0, ge=0, description="Distributed: on SIGTERM a worker lets running operations "
        "finish this long, then hands them back to the queue")
    operations_retention_days: float = Field(7.0, gt=0, description="Finished operations "
                                             "are deleted after this")
    webhook_secret: SecretStr | None = Field(
        None, description="Signs operation webhooks (X-Headrace-Signature); webhook_url "
        "is refused while unset")
    # Workflows
    workflow_run_retention_days: float = Field(
        30.0, gt=0, description="Runs older than this are deleted (in small batches)")

    @field_validator("admin_api_key")
    @classmethod
    def _admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 20:
            raise ValueError("HEADRACE_ADMIN_API_KEY must be at least 20 characters")
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'headrace.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("HEADRACE_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def normalise_database_url(url: str) -> str:
    """Pick the async driver for a plain `postgresql://` or `sqlite://` URL."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url
