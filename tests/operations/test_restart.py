"""Restart recovery for real: `headrace serve` killed mid-operation (SIGKILL, no
shutdown code runs) and started again on the same data directory."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.gateway.conftest import model_spec
from tests.support.live import AUTH, live_server
from tests.support.mock_upstream import MockUpstream


def test_an_operation_cut_off_by_a_crash_ends_failed_with_the_reason(tmp_path: Path):
    mock = MockUpstream.start_in_thread()
    env = {"HEADRACE_TEST_KEY": "sk-test"}
    try:
        with live_server(tmp_path, env=env) as first:
            http = httpx.Client(base_url=first.url, headers=AUTH)
            http.post("/admin/models", json=model_spec("m1", "openai", mock.url)
                      ).raise_for_status()
            accepted = http.post("/v1/chat/completions?async=true", json={
                "model": "m1",
                "messages": [{"role": "user", "content": "slow [[mock:delay_ms=30000]]"}]})
            operation_id = accepted.json()["operation_id"]
            deadline = time.monotonic() + 10
            while http.get(f"/v1/operations/{operation_id}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
        with live_server(tmp_path, env=env) as second:
            body = httpx.get(f"{second.url}/v1/operations/{operation_id}", headers=AUTH).json()
    finally:
        mock.stop_in_thread()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "interrupted"
    assert "interrupted by a restart" in body["error"]["message"]
    assert body["finished_at"] is not None
