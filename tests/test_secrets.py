"""Credential sources against real servers: env, mounted files, Vault (OpenBao), AWS (moto).

Every failure must be a SecretError naming the reference, and no secret value
or token may show up in an error, a log line or an admin response.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session

from api.app import create_app
from connectors.secrets.aws import AwsSecretsSource
from connectors.secrets.env import EnvSource
from connectors.secrets.file import FileSource
from connectors.secrets.vault import VaultSource
from engine.errors import InvalidRequest
from engine.secrets import SecretError, Secrets, parse_reference
from engine.settings import Settings
from tests.support.live import AUTH, TEST_ADMIN_KEY
from tests.support.secret_servers import (
    MotoServer,
    ServiceUnavailable,
    VaultServer,
    vault_server,
)
from tests.support.services import free_port, unavailable

REGION = "us-east-1"


def secret_value(kind: str) -> str:
    """A value unique enough that finding it anywhere means it leaked."""
    return f"sk-{kind}-{uuid.uuid4().hex}"


# --- servers ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _vault_server() -> Iterator[VaultServer | str]:
    with ExitStack() as stack:
        try:
            server: VaultServer | str = stack.enter_context(vault_server())
        except ServiceUnavailable as error:
            server = str(error)
        yield server


@pytest.fixture
def vault(_vault_server: VaultServer | str) -> VaultServer:
    if isinstance(_vault_server, str):
        unavailable(f"Vault API (OpenBao): {_vault_server}")
    return _vault_server


async def vault_write(vault: VaultServer, path: str, data: dict[str, str]) -> None:
    """Write a KV v2 secret at secret/<path> through the HTTP API."""
    async with httpx.AsyncClient(headers={"X-Vault-Token": vault.token}) as client:
        response = await client.post(f"{vault.address}/v1/secret/data/{path}",
                                     json={"data": data})
    assert response.status_code == 200, response.text


@pytest.fixture
async def vault_source(vault: VaultServer) -> AsyncIterator[VaultSource]:
    source = VaultSource(vault.address, vault.token)
    yield source
    await source.aclose()


async def aws_create_secret(moto: MotoServer, name: str, value: str) -> None:
    async with get_session().create_client(
        "secretsmanager", region_name=REGION, endpoint_url=moto.endpoint_url
    ) as client:
        await client.create_secret(Name=name, SecretString=value)


@pytest.fixture
async def aws_source(moto: MotoServer) -> AsyncIterator[AwsSecretsSource]:
    source = AwsSecretsSource(REGION, endpoint_url=moto.endpoint_url)
    yield source
    await source.aclose()


def assert_clean(message: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in message


# --- references -------------------------------------------------------------------------


def test_parse_reference() -> None:
    assert parse_reference("vault:secret/llm/openai#api_key") == (
        "vault", "secret/llm/openai#api_key")
    assert parse_reference("aws:arn:aws:secretsmanager:x") == ("aws", "arn:aws:secretsmanager:x")
    for bad in ("OPENAI_API_KEY", "env:", ":x", "e-nv:X"):
        with pytest.raises(InvalidRequest):
            parse_reference(bad)


def test_unknown_scheme_is_refused_on_save() -> None:
    secrets = Secrets([EnvSource()])
    with pytest.raises(InvalidRequest, match="unknown scheme 'vault'"):
        secrets.check_reference("vault:secret/x#y")


# --- env --------------------------------------------------------------------------------


async def test_env_present(monkeypatch: pytest.MonkeyPatch) -> None:
    value = secret_value("env")
    monkeypatch.setenv("HEADRACE_TEST_SECRET_KEY", value)
    assert await Secrets([EnvSource()]).get("env:HEADRACE_TEST_SECRET_KEY") == value


async def test_env_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADRACE_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(SecretError) as raised:
        await Secrets([EnvSource()]).get("env:HEADRACE_TEST_NO_SUCH_KEY")
    assert "env:HEADRACE_TEST_NO_SUCH_KEY" in raised.value.message
    assert raised.value.code == "credential_unavailable"


# --- file -------------------------------------------------------------------------------


async def test_file_read_strips_whitespace(tmp_path: Path) -> None:
    value = secret_value("file")
    path = tmp_path / "openai"
    path.write_text(f"  {value}\n")
    assert await Secrets([FileSource()]).get(f"file:{path}") == value


async def test_file_rotation_is_seen_before_the_ttl(tmp_path: Path) -> None:
    path = tmp_path / "openai"
    secrets = Secrets([FileSource()], ttl_s=3600)
    # Rewrite right after each read: file times are coarser than the clock.
    for round_ in range(20):
        path.write_text(f"value-{round_}\n")
        assert await secrets.get(f"file:{path}") == f"value-{round_}"
        assert await secrets.get(f"file:{path}") == f"value-{round_}"


async def test_file_rotation_by_atomic_replace(tmp_path: Path) -> None:
    """Mounted secrets rotate by swapping in a file written earlier (older mtime)."""
    path = tmp_path / "openai"
    path.write_text("old-value\n")
    staged = tmp_path / "openai.new"
    staged.write_text("new-value\n")
    earlier = time.time() - 60
    os.utime(staged, (earlier, earlier))
    secrets = Secrets([FileSource()], ttl_s=3600)
    assert await secrets.get(f"file:{path}") == "old-value"
    os.replace(staged, path)
    assert await secrets.get(f"file:{path}") == "new-value"


async def test_file_unchanged_is_not_reread(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "openai"
    path.write_text("value\n")
    earlier = time.time() - 60  # not just written: a fresh file is re-read until it settles
    os.utime(path, (earlier, earlier))
    source = FileSource()
    reads = 0
    fetch = source.fetch

    async def counting_fetch(p: str) -> str:
        nonlocal reads
        reads += 1
        return await fetch(p)

    monkeypatch.setattr(source, "fetch", counting_fetch)
    secrets = Secrets([source], ttl_s=3600)
    for _ in range(5):
        assert await secrets.get(f"file:{path}") == "value"
    assert reads == 1


async def test_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(SecretError) as raised:
        await Secrets([FileSource()]).get(f"file:{path}")
    assert f"file:{path}" in raised.value.message


async def test_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        await Secrets([FileSource()]).get(f"file:{path}")


async def test_file_root_confinement(tmp_path: Path) -> None:
    root = tmp_path / "secrets"
    root.mkdir()
    (root / "openai").write_text("inside\n")
    outside = secret_value("outside")
    (tmp_path / "outside").write_text(outside)
    (root / "link").symlink_to(tmp_path / "outside")
    secrets = Secrets([FileSource(str(root))])
    assert await secrets.get("file:openai") == "inside"
    for escape in ("../outside", f"{tmp_path}/outside", "link", "openai/../../outside"):
        with pytest.raises(SecretError, match="outside the allowed") as raised:
            await secrets.get(f"file:{escape}")
        assert_clean(raised.value.message, outside)


# --- Vault (OpenBao) --------------------------------------------------------------------


async def test_vault_resolves_kv2_field(vault: VaultServer, vault_source: VaultSource) -> None:
    value = secret_value("vault")
    await vault_write(vault, "llm/openai", {"api_key": value, "org": "acme"})
    secrets = Secrets([vault_source])
    assert await secrets.get("vault:secret/llm/openai#api_key") == value
    assert await secrets.get("vault:secret/llm/openai#org") == "acme"


async def test_vault_single_field_needs_no_name(vault: VaultServer,
                                                vault_source: VaultSource) -> None:
    value = secret_value("vault")
    await vault_write(vault, "llm/single", {"api_key": value})
    assert await vault_source.fetch("secret/llm/single") == value


async def test_vault_missing_path(vault_source: VaultSource) -> None:
    with pytest.raises(SecretError, match="does not exist") as raised:
        await vault_source.fetch("secret/llm/absent#api_key")
    assert "vault:secret/llm/absent#api_key" in raised.value.message


async def test_vault_missing_field(vault: VaultServer, vault_source: VaultSource) -> None:
    value = secret_value("vault")
    await vault_write(vault, "llm/fields", {"api_key": value})
    with pytest.raises(SecretError, match="no field 'token'") as raised:
        await vault_source.fetch("secret/llm/fields#token")
    assert_clean(raised.value.message, value, vault.token)


async def test_vault_wrong_token(vault: VaultServer) -> None:
    value = secret_value("vault")
    await vault_write(vault, "llm/guarded", {"api_key": value})
    wrong = f"wrong-{uuid.uuid4().hex}"
    source = VaultSource(vault.address, wrong)
    try:
        with pytest.raises(SecretError, match="refused access") as raised:
            await source.fetch("secret/llm/guarded#api_key")
    finally:
        await source.aclose()
    assert "vault:secret/llm/guarded#api_key" in raised.value.message
    assert_clean(raised.value.message, value, wrong, vault.token)


async def test_vault_unreachable() -> None:
    token = f"token-{uuid.uuid4().hex}"
    source = VaultSource(f"http://127.0.0.1:{free_port()}", token, timeout_s=2)
    try:
        with pytest.raises(SecretError, match="unreachable") as raised:
            await source.fetch("secret/llm/openai#api_key")
    finally:
        await source.aclose()
    assert "vault:secret/llm/openai#api_key" in raised.value.message
    assert_clean(raised.value.message, token)


async def test_vault_address_that_is_not_vault() -> None:
    """A vault_addr pointing at some other web server: a SecretError, not a crash."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<html>sign in</html>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = VaultSource(f"http://127.0.0.1:{port}", "token")
    try:
        with pytest.raises(SecretError, match="no KV v2 secret"):
            await source.fetch("secret/llm/openai#api_key")
    finally:
        await source.aclose()
        server.close()
        await server.wait_closed()


async def test_vault_malformed_reference(vault_source: VaultSource) -> None:
    with pytest.raises(SecretError, match="vault:<mount>/<path>"):
        await vault_source.fetch("secret#api_key")


async def test_vault_rotation_after_ttl(vault: VaultServer, vault_source: VaultSource) -> None:
    await vault_write(vault, "llm/rotating", {"api_key": "first"})
    secrets = Secrets([vault_source], ttl_s=0.2)
    assert await secrets.get("vault:secret/llm/rotating#api_key") == "first"
    await vault_write(vault, "llm/rotating", {"api_key": "second"})
    assert await secrets.get("vault:secret/llm/rotating#api_key") == "first"  # cached
    await asyncio.sleep(0.3)
    assert await secrets.get("vault:secret/llm/rotating#api_key") == "second"


# --- AWS Secrets Manager (moto) ---------------------------------------------------------


async def test_aws_json_secret_field(moto: MotoServer, aws_source: AwsSecretsSource) -> None:
    value = secret_value("aws")
    name = f"prod/llm-{uuid.uuid4().hex[:8]}"
    await aws_create_secret(moto, name, f'{{"openai": "{value}", "anthropic": "other"}}')
    secrets = Secrets([aws_source])
    assert await secrets.get(f"aws:{name}#openai") == value
    assert await secrets.get(f"aws:{name}#anthropic") == "other"
    with pytest.raises(SecretError, match="no field 'mistral'") as raised:
        await secrets.get(f"aws:{name}#mistral")
    with pytest.raises(SecretError, match="several fields"):
        await secrets.get(f"aws:{name}")
    assert_clean(raised.value.message, value)


async def test_aws_plain_string_secret(moto: MotoServer, aws_source: AwsSecretsSource) -> None:
    value = secret_value("aws")
    name = f"plain-{uuid.uuid4().hex[:8]}"
    await aws_create_secret(moto, name, value)
    assert await aws_source.fetch(name) == value
    with pytest.raises(SecretError, match="not a JSON object") as raised:
        await aws_source.fetch(f"{name}#openai")
    assert_clean(raised.value.message, value)


async def test_aws_concurrent_first_use(moto: MotoServer, aws_source: AwsSecretsSource) -> None:
    names = [f"concurrent-{i}-{uuid.uuid4().hex[:8]}" for i in range(5)]
    for name in names:
        await aws_create_secret(moto, name, name.upper())
    values = await asyncio.gather(*(aws_source.fetch(name) for name in names))
    assert values == [name.upper() for name in names]


async def test_aws_missing_secret(moto: MotoServer, aws_source: AwsSecretsSource) -> None:
    with pytest.raises(SecretError, match="ResourceNotFoundException") as raised:
        await aws_source.fetch("prod/absent#openai")
    assert "aws:prod/absent#openai" in raised.value.message


# --- the cache --------------------------------------------------------------------------


class CountingSource:
    """A fake source that counts fetches; each fetch returns a new value."""

    scheme = "fake"
    description = "counts fetches"

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.fetches = 0

    async def fetch(self, path: str) -> str:
        self.fetches += 1
        number = self.fetches
        await asyncio.sleep(self.delay_s)
        return f"{path}-{number}"

    def changed(self, path: str, fetched_at: float) -> bool:
        return False


async def test_cache_fetches_once_within_ttl() -> None:
    source = CountingSource()
    secrets = Secrets([source], ttl_s=60)
    for _ in range(10):
        assert await secrets.get("fake:key") == "key-1"
    assert source.fetches == 1
    assert await secrets.get("fake:other") == "other-2"
    assert source.fetches == 2


async def test_cache_refetches_after_ttl() -> None:
    source = CountingSource()
    secrets = Secrets([source], ttl_s=0.1)
    assert await secrets.get("fake:key") == "key-1"
    await asyncio.sleep(0.15)
    assert await secrets.get("fake:key") == "key-2"
    assert await secrets.get("fake:key") == "key-2"
    assert source.fetches == 2


async def test_cache_invalidate() -> None:
    source = CountingSource()
    secrets = Secrets([source], ttl_s=60)
    await secrets.get("fake:key")
    secrets.invalidate("fake:key")
    assert await secrets.get("fake:key") == "key-2"


async def test_concurrent_gets_fetch_once() -> None:
    source = CountingSource(delay_s=0.05)
    secrets = Secrets([source], ttl_s=60)
    values = await asyncio.gather(*(secrets.get("fake:key") for _ in range(50)))
    assert values == ["key-1"] * 50
    assert source.fetches == 1


async def test_failed_fetch_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADRACE_TEST_LATE_KEY", raising=False)
    secrets = Secrets([EnvSource()], ttl_s=60)
    assert (await secrets.resolves("env:HEADRACE_TEST_LATE_KEY"))[0] is False
    monkeypatch.setenv("HEADRACE_TEST_LATE_KEY", "now-set")
    assert await secrets.get("env:HEADRACE_TEST_LATE_KEY") == "now-set"


# --- resolves() and leaks ---------------------------------------------------------------


class LeakySource:
    """A broken source whose exception text carries the secret."""

    scheme = "leaky"
    description = "raises with the value in the message"

    def __init__(self, value: str):
        self.value = value

    async def fetch(self, path: str) -> str:
        raise RuntimeError(f"could not parse {self.value}")

    def changed(self, path: str, fetched_at: float) -> bool:
        return False


async def test_resolves(monkeypatch: pytest.MonkeyPatch, vault: VaultServer) -> None:
    value = secret_value("env")
    monkeypatch.setenv("HEADRACE_TEST_PRESENT", value)
    monkeypatch.delenv("HEADRACE_TEST_ABSENT", raising=False)
    wrong_token = f"wrong-{uuid.uuid4().hex}"
    vault_value = secret_value("vault")
    await vault_write(vault, "llm/resolves", {"api_key": vault_value})
    wrong_vault = VaultSource(vault.address, wrong_token)
    secrets = Secrets([EnvSource(), LeakySource(value), wrong_vault])
    try:
        assert await secrets.resolves("env:HEADRACE_TEST_PRESENT") == (True, None)
        ok, message = await secrets.resolves("env:HEADRACE_TEST_ABSENT")
        assert ok is False and "env:HEADRACE_TEST_ABSENT" in message
        ok, message = await secrets.resolves("leaky:anything")
        assert ok is False and message == "RuntimeError"
        ok, message = await secrets.resolves("vault:secret/llm/resolves#api_key")
        assert ok is False and "refused access" in message
        assert_clean(message, vault_value, wrong_token, vault.token)
        ok, message = await secrets.resolves("nope:x")
        assert ok is False and "nope" in message
    finally:
        await wrong_vault.aclose()


async def test_no_secret_in_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str], vault: VaultServer, moto: MotoServer,
) -> None:
    # The most verbose root level; httpx and botocore keep the caps configure_logging gives
    # them in production (botocore at DEBUG would print response bodies).
    caplog.set_level(logging.DEBUG)
    values = {kind: secret_value(kind) for kind in ("env", "file", "vault", "aws")}
    monkeypatch.setenv("HEADRACE_TEST_LOGGED_KEY", values["env"])
    (tmp_path / "key").write_text(values["file"])
    await vault_write(vault, "llm/logged", {"api_key": values["vault"]})
    aws_name = f"logged-{uuid.uuid4().hex[:8]}"
    await aws_create_secret(moto, aws_name,
                            f'{{"openai": "{values["aws"]}", "other": "{values["aws"]}x"}}')
    caplog.clear()
    capfd.readouterr()

    vault_source = VaultSource(vault.address, vault.token)
    aws_source = AwsSecretsSource(REGION, endpoint_url=moto.endpoint_url)
    secrets = Secrets([EnvSource(), FileSource(), vault_source, aws_source])
    try:
        for reference, kind in [
            ("env:HEADRACE_TEST_LOGGED_KEY", "env"), (f"file:{tmp_path / 'key'}", "file"),
            ("vault:secret/llm/logged#api_key", "vault"), (f"aws:{aws_name}#openai", "aws"),
        ]:
            assert await secrets.get(reference) == values[kind]
        for reference in ("vault:secret/llm/logged#other", f"aws:{aws_name}#missing",
                          f"aws:{aws_name}", "aws:logged-absent#openai"):
            assert (await secrets.resolves(reference))[0] is False
    finally:
        await vault_source.aclose()
        await aws_source.aclose()

    captured = capfd.readouterr()
    logged = caplog.text + "".join(
        str(record.__dict__) for record in caplog.records) + captured.out + captured.err
    assert_clean(logged, *values.values(), vault.token)


# --- the admin API ----------------------------------------------------------------------


async def test_admin_credentials_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vault: VaultServer, moto: MotoServer,
) -> None:
    vault_value = secret_value("vault")
    await vault_write(vault, "llm/openai", {"api_key": vault_value})
    aws_value = secret_value("aws")
    aws_name = f"admin-{uuid.uuid4().hex[:8]}"
    await aws_create_secret(moto, aws_name, f'{{"anthropic": "{aws_value}"}}')
    monkeypatch.delenv("HEADRACE_TEST_MISSING_KEY", raising=False)
    settings = Settings(
        data_dir=tmp_path / "data", log_format="json", access_log=False,
        vault_addr=vault.address, vault_token=vault.token,
        aws_region=REGION, aws_endpoint_url=moto.endpoint_url, admin_api_key=TEST_ADMIN_KEY,
    )
    app = create_app(settings)
    async with app.test_app() as running:
        client = running.test_client()
        for spec in (
            {"id": "m1", "provider": "openai", "model": "gpt-4o",
             "credentials": "vault:secret/llm/openai#api_key"},
            {"id": "m2", "provider": "openai", "model": "gpt-4o-mini",
             "credentials": "env:HEADRACE_TEST_MISSING_KEY"},
            {"id": "m3", "provider": "anthropic", "model": "claude-sonnet-4",
             "credentials": f"aws:{aws_name}#anthropic"},
        ):
            response = await client.post("/admin/models", json=spec, headers=AUTH)
            assert response.status_code == 201, await response.get_data(as_text=True)
        response = await client.get("/admin/credentials", headers=AUTH)
        assert response.status_code == 200
        body = await response.get_data(as_text=True)
        data = await response.get_json()
    # The app's shutdown (GatewayParts.aclose) does not close the secret sources yet.
    await app.extensions["headrace"].secrets.aclose()

    assert {s["scheme"] for s in data["sources"]} == {"env", "file", "vault", "aws"}
    assert vault.address in next(s["description"] for s in data["sources"]
                                 if s["scheme"] == "vault")
    by_reference = {r["reference"]: r for r in data["references"]}
    assert by_reference["vault:secret/llm/openai#api_key"]["resolves"] is True
    assert by_reference["vault:secret/llm/openai#api_key"]["error"] is None
    assert by_reference[f"aws:{aws_name}#anthropic"]["resolves"] is True
    missing = by_reference["env:HEADRACE_TEST_MISSING_KEY"]
    assert missing["resolves"] is False
    assert "HEADRACE_TEST_MISSING_KEY" in missing["error"]
    assert [u.split("/")[0] for u in missing["used_by"]] == ["m2"]
    assert_clean(body, vault_value, aws_value, vault.token)
