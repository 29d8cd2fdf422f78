"""Start the real `headrace` command as a subprocess and wait until it answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.services import free_port

# The bootstrap admin key every test server starts with (HEADRACE_ADMIN_API_KEY).
TEST_ADMIN_KEY = "pk_test_headrace_suite_admin_key_0123456789"
AUTH = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def isolated_env(**overrides: str) -> dict[str, str]:
    """The current environment without any HEADRACE_* setting, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env.update(overrides)
    return env


@contextmanager
def live_server(
    data_dir: Path, *, command: str = "serve", env: dict[str, str] | None = None,
    timeout: float = 30.0, args: Sequence[str] = (), executable: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> Iterator[LiveServer]:
    """`headrace <command> <args>` (or `executable <command> <args>`) on a free port."""
    port = free_port()
    log_path = data_dir / f"{command or 'default'}-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = isolated_env(
        HEADRACE_HOST="127.0.0.1",
        HEADRACE_PORT=str(port),
        HEADRACE_DATA_DIR=str(data_dir),
        HEADRACE_LOG_FORMAT="json",
        **{"HEADRACE_ADMIN_API_KEY": TEST_ADMIN_KEY, **(env or {})},
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*(executable or [sys.executable, "-m", "api.cli"]),
             *([command] if command else []), *args],
            env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
        )
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_healthy(server, timeout)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it takes longer than `timeout`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"headrace exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"headrace did not become healthy in {timeout} s:\n{server.log()}")


@contextmanager
def worker_process(data_dir: Path, env: dict[str, str], *, name: str = "worker",
                   concurrency: int = 4) -> Iterator[LiveServer]:
    """`headrace worker` as a subprocess (no port: `url` is empty); stopped with
    SIGTERM, or already killed by the test."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker", "--concurrency", str(concurrency)],
            env=isolated_env(HEADRACE_LOG_FORMAT="json", **env),
            stdout=log, stderr=subprocess.STDOUT)
    try:
        yield LiveServer(url="", process=process, log_path=log_path)
    finally:
        stop(process)
