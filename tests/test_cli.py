"""The `headrace` command line, run as a real process."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

from engine.store import Database
from engine.store.migrate import schema_state
from tests.support.live import isolated_env, live_server


def headrace(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True, text=True, env=isolated_env(**(env or {})), timeout=timeout,
    )


def test_help_lists_the_commands():
    result = headrace("--help")
    assert result.returncode == 0
    for command in ("serve", "api", "migrate", "seed", "create-key", "worker"):
        assert f"  {command} " in result.stdout


def test_version():
    result = headrace("--version")
    assert result.returncode == 0 and "headrace, version" in result.stdout


async def test_migrate_creates_the_schema(tmp_path):
    result = headrace("migrate", env={"HEADRACE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "is at revision" in result.stdout
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'headrace.db'}")
    assert (await schema_state(db)).up_to_date
    await db.close()


async def test_migrate_postgres(postgres_url):
    result = headrace("migrate", env={"HEADRACE_DATABASE_URL": postgres_url})
    assert result.returncode == 0, result.stderr
    assert "***" in result.stdout or "postgres:@" not in result.stdout
    db = Database(postgres_url)
    assert (await schema_state(db)).up_to_date
    await db.close()


def test_serve_refuses_an_unmigrated_postgres(postgres_url, tmp_path):
    result = headrace(
        "serve", env={"HEADRACE_DATABASE_URL": postgres_url, "HEADRACE_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode != 0
    assert "Run `headrace migrate` first" in result.stderr


def test_worker_needs_a_migrated_postgres(postgres_url, tmp_path):
    on_sqlite = headrace("worker", env={"HEADRACE_DATA_DIR": str(tmp_path)})
    assert on_sqlite.returncode != 0
    assert "headrace worker needs PostgreSQL" in on_sqlite.stderr
    unmigrated = headrace("worker", env={"HEADRACE_DATABASE_URL": postgres_url})
    assert unmigrated.returncode != 0
    assert "Run `headrace migrate` first" in unmigrated.stderr


def test_serve_with_no_command_migrates_a_fresh_data_dir_and_answers(tmp_path):
    with live_server(tmp_path / "fresh", command="") as server:
        assert httpx.get(f"{server.url}/health").json()["status"] == "healthy"
        assert httpx.get(f"{server.url}/ready").json()["status"] == "ready"
        assert httpx.get(f"{server.url}/ui/").status_code == 200
    assert (tmp_path / "fresh" / "headrace.db").exists()


def test_api_command_serves_no_console(tmp_path):
    with live_server(tmp_path, command="api") as server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        response = httpx.get(f"{server.url}/ui/")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"


def test_sigterm_stops_the_server_cleanly(tmp_path):
    with live_server(tmp_path) as server:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=20) == 0


def test_logs_are_json_lines_with_request_ids(live):
    httpx.get(f"{live.url}/health", headers={"X-Request-ID": "cli-log-check"})
    lines = [line for line in live.log().splitlines() if "cli-log-check" in line]
    assert lines, live.log()[-2000:]
    import json

    event = json.loads(lines[-1])
    assert event["event"] == "request" and event["request_id"] == "cli-log-check"
    assert event["status"] == 200 and "timestamp" in event


def test_announced_oversize_body_is_refused_over_real_http(tmp_path):
    with live_server(tmp_path, env={"HEADRACE_MAX_BODY_BYTES": "1000"}) as server:
        response = httpx.request("GET", f"{server.url}/health", content=b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("port", ["-1", "not-a-port"])
def test_bad_settings_fail_with_a_message(tmp_path, port):
    result = headrace("serve", env={"HEADRACE_PORT": port, "HEADRACE_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "port" in (result.stderr + result.stdout).lower()


def test_create_key_prints_a_working_secret_once(tmp_path):
    result = headrace("create-key", "--name", "ops", "--admin",
                      env={"HEADRACE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert secret.startswith("pk_live_") and "shown only now" in result.stderr
    with live_server(tmp_path, env={"HEADRACE_ADMIN_API_KEY": ""}) as server:
        ok = httpx.get(f"{server.url}/admin/api-keys",
                       headers={"Authorization": f"Bearer {secret}"})
        assert ok.status_code == 200
        assert [k["name"] for k in ok.json()["data"]] == ["ops"]
    assert secret.encode() not in (tmp_path / "headrace.db").read_bytes()
