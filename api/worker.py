"""`headrace worker`: run queued operations (distributed mode).

A worker is the app without an HTTP listener: the same wiring (gateway,
governance, knowledge bases, workflows), started and stopped the same way, so an
operation runs exactly the code its synchronous call runs.
"""

from __future__ import annotations

from api.app import create_app
from engine.logs import get_logger
from engine.operations.distributed import DistributedOperations
from engine.settings import Settings

log = get_logger("headrace.worker")


async def run_worker(settings: Settings) -> None:
    """Work until SIGTERM or SIGINT; operations still running then are handed back
    to the queue after a grace period."""
    app = create_app(settings, serve_ui=False)
    state = app.extensions["headrace"]
    state.knowledge.embedded_stores = False
    operations = state.operations
    assert isinstance(operations, DistributedOperations)
    await app.startup()
    try:
        log.info("worker started", worker=operations.worker,
                 concurrency=settings.operations_max_concurrency)
        # Handlers read the app's state through Quart's app context.
        async with app.app_context():
            await operations.work(concurrency=settings.operations_max_concurrency)
    finally:
        await app.shutdown()
        log.info("worker stopped", worker=operations.worker)
