"""Run the mock upstream standalone: ``python -m tests.support.mock_upstream --port 9999``."""

from __future__ import annotations

import argparse
import asyncio
import signal

from tests.support.mock_upstream import MockUpstream, new_event_loop
from tests.support.mock_upstream.state import DEFAULT_LOG_LIMIT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.support.mock_upstream",
                                     description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--log-limit", type=int, default=DEFAULT_LOG_LIMIT,
                        help="how many requests the log keeps (oldest dropped first)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    mock = MockUpstream(args.host, args.port, log_limit=args.log_limit)
    mock.configure(latency_ms=args.latency_ms, ttft_ms=args.ttft_ms,
                   chunk_delay_ms=args.chunk_delay_ms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with mock:
        print(f"mock upstream listening on {mock.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(args))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
