"""The distributed mode end to end: an API process that only enqueues and two
`headrace worker` processes on one PostgreSQL database, with the mock upstream
standing in for the LLM vendor."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import model_spec
from tests.support.live import AUTH, LiveServer, live_server, worker_process
from tests.support.mock_upstream import MockUpstream

FINISHED = ("completed", "failed", "cancelled")


class Cluster:
    def __init__(self, api: LiveServer, workers: list[LiveServer], mock: MockUpstream):
        self.api, self.workers, self.mock = api, workers, mock
        self.http = httpx.Client(base_url=api.url, headers=AUTH, timeout=30)

    def submit(self, content: str) -> str:
        response = self.http.post("/v1/chat/completions?async=true", json={
            "model": "m1", "messages": [{"role": "user", "content": content}]})
        assert response.status_code == 202, response.text
        return response.json()["operation_id"]

    def get(self, operation_id: str) -> dict:
        return self.http.get(f"/v1/operations/{operation_id}").json()

    def wait(self, operation_ids: list[str], status: tuple[str, ...] = FINISHED,
             timeout_s: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.http.get("/v1/operations", params={"ids": ",".join(operation_ids)})
            bodies = found.json()["data"]
            if len(bodies) == len(operation_ids) and all(b["status"] in status for b in bodies):
                return bodies
            if time.monotonic() > deadline:
                logs = "\n".join(w.log()[-3000:] for w in self.workers)
                raise AssertionError(f"not {status} in time: {bodies}\n{logs}")
            time.sleep(0.1)

    def depth(self) -> dict:
        return self.http.get("/admin/operations/queue").json()


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    mock = MockUpstream.start_in_thread()
    env = {"HEADRACE_DATABASE_URL": postgres_url, "HEADRACE_OPERATIONS_MODE": "distributed",
           "HEADRACE_OPERATIONS_HEARTBEAT_S": "0.5",
           "HEADRACE_OPERATIONS_STALLED_AFTER_S": "3",
           "HEADRACE_OPERATIONS_SHUTDOWN_GRACE_S": "1", "HEADRACE_TEST_KEY": "sk-test",
           }
    try:
        with ExitStack() as stack:
            api = stack.enter_context(live_server(
                tmp_path / "api", command="api", env={**env, "HEADRACE_AUTO_MIGRATE": "true"}))
            workers = [stack.enter_context(worker_process(
                tmp_path / f"w{n}", {**env, "HEADRACE_DATA_DIR": str(tmp_path / f"w{n}")},
                name=f"w{n}")) for n in (1, 2)]
            cluster = Cluster(api, workers, mock)
            created = cluster.http.post("/admin/models",
                                        json=model_spec("m1", "openai", mock.url, max_retries=0))
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 30
            while cluster.depth()["workers"] < 2:
                assert time.monotonic() < deadline, [w.log() for w in workers]
                assert all(w.process.poll() is None for w in workers), [w.log() for w in workers]
                time.sleep(0.1)
            yield cluster
    finally:
        mock.stop_in_thread()


def _worker_pid(body_or_row: str) -> int:
    return int(body_or_row.rsplit(":", 1)[1])


def test_operations_spread_over_two_workers_and_run_once(cluster: Cluster, postgres_url: str):
    cluster.mock.configure(latency_ms=100)
    ids = [cluster.submit(f"question {n}") for n in range(40)]
    done = cluster.wait(ids)
    assert [b["status"] for b in done] == ["completed"] * 40
    for n, body in enumerate(done):
        assert f"question {n}" in body["result"]["choices"][0]["message"]["content"]
    # Each operation reached the upstream exactly once...
    asked = [r["json"]["messages"][0]["content"] for r in cluster.mock.requests()]
    assert sorted(asked) == sorted(f"question {n}" for n in range(40))
    # ... and the work was shared by both workers.
    rows = _rows(postgres_url, ids)
    assert all(attempts == 1 for _, attempts in rows.values())
    pids = {_worker_pid(worker) for worker, _ in rows.values()}
    assert pids == {w.process.pid for w in cluster.workers}
    depth = cluster.depth()
    assert depth["mode"] == "distributed" and depth["workers"] == 2
    assert depth["queue"] == {"queued": 0, "in_progress": 0}


def test_cancel_reaches_the_worker_and_aborts_the_upstream_call(cluster: Cluster):
    operation_id = cluster.submit("slow [[mock:delay_ms=20000]]")
    cluster.wait([operation_id], status=("running",))
    deadline = time.monotonic() + 10
    while not cluster.mock.requests():
        assert time.monotonic() < deadline, "the upstream never saw the request"
        time.sleep(0.05)
    cancelled = cluster.http.delete(f"/v1/operations/{operation_id}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while not cluster.mock.requests()[0]["aborted"]:
        assert time.monotonic() < deadline, "the worker did not abort the upstream request"
        time.sleep(0.05)
    assert cluster.get(operation_id)["status"] == "cancelled"
    assert cluster.http.delete(f"/v1/operations/{operation_id}").status_code == 409


def test_a_killed_worker_s_operation_is_finished_by_the_other(cluster: Cluster,
                                                               postgres_url: str):
    operation_id = cluster.submit("takes a while [[mock:delay_ms=4000]]")
    cluster.wait([operation_id], status=("running",))
    worker, attempts = _rows(postgres_url, [operation_id])[operation_id]
    assert attempts == 1
    victim = _worker_pid(worker)
    os.kill(victim, signal.SIGKILL)  # no goodbye: its heartbeat just stops
    survivor = next(w for w in cluster.workers if w.process.pid != victim)
    [done] = cluster.wait([operation_id], timeout_s=60)
    assert done["status"] == "completed", done
    worker, attempts = _rows(postgres_url, [operation_id])[operation_id]
    assert attempts == 2 and _worker_pid(worker) == survivor.process.pid


def _rows(postgres_url: str, ids: list[str]) -> dict[str, tuple[str, int]]:
    """`worker` and `attempts` of each operation, read straight from the database."""
    import asyncio

    import sqlalchemy as sa

    from engine.store import Database
    from engine.store.tables import OperationRow

    async def read() -> dict[str, tuple[str, int]]:
        db = Database(postgres_url)
        try:
            async with db.session() as session:
                rows = await session.exec(sa.select(  # type: ignore[call-overload]
                    OperationRow.id, OperationRow.worker, OperationRow.attempts
                ).where(OperationRow.id.in_(ids)))  # type: ignore[union-attr]
                return {i: (w, a) for i, w, a in rows.all()}
        finally:
            await db.close()

    return asyncio.run(read())


def test_a_stopped_worker_hands_its_operation_back(cluster: Cluster, postgres_url: str):
    operation_id = cluster.submit("longer than the grace [[mock:delay_ms=4000]]")
    cluster.wait([operation_id], status=("running",))
    worker, _ = _rows(postgres_url, [operation_id])[operation_id]
    stopping = next(w for w in cluster.workers if w.process.pid == _worker_pid(worker))
    stopping.process.send_signal(signal.SIGTERM)  # 1 s of grace, then hand it back
    assert stopping.process.wait(timeout=20) == 0
    [done] = cluster.wait([operation_id], timeout_s=60)
    assert done["status"] == "completed", done
    worker, attempts = _rows(postgres_url, [operation_id])[operation_id]
    assert attempts == 2 and _worker_pid(worker) != stopping.process.pid
    requests = cluster.mock.requests()
    assert len(requests) == 2 and requests[0]["aborted"] and not requests[1]["aborted"]
