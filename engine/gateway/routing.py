"""Choosing among a model's deployments, and each deployment's local runtime state.

A strategy orders the enabled deployments; the executor takes the first whose
circuit allows a call. Strategies: weighted random, round-robin (the counter
lives on shared state, so replicas take turns together), least in-flight and
latency-aware (EWMA of recent latency; deployments without data go first so
they get measured).
"""

from __future__ import annotations

import asyncio
import random

from engine.errors import ServiceUnavailable
from engine.schemas.models import ResolvedDeployment, Routing
from engine.state import SharedState

EWMA_ALPHA = 0.3


class Bulkhead:
    """At most `limit` calls at once, at most `queue` waiting; beyond that, fail fast."""

    def __init__(self, limit: int, queue: int):
        self.limit = limit
        self.queue = queue
        self.waiting = 0
        self._semaphore = asyncio.Semaphore(limit)

    async def acquire(self, deployment: str) -> None:
        if self._semaphore.locked():
            if self.waiting >= self.queue:
                raise ServiceUnavailable(
                    f"deployment '{deployment}' is at its concurrency limit ({self.limit}) and "
                    f"its wait queue ({self.queue}) is full",
                    code="deployment_saturated",
                    retry_after=1,
                )
            self.waiting += 1
            try:
                await self._semaphore.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._semaphore.acquire()

    def release(self) -> None:
        self._semaphore.release()


class DeploymentRuntime:
    """What this process knows about one deployment right now."""

    __slots__ = ("_limits", "bulkhead", "ewma_s", "in_flight", "key")

    def __init__(self, key: str):
        self.key = key
        self.in_flight = 0
        self.ewma_s: float | None = None
        self.bulkhead: Bulkhead | None = None
        self._limits: tuple[int | None, int] | None = None

    def configure(self, max_concurrency: int | None, max_queue: int) -> None:
        if self._limits == (max_concurrency, max_queue):
            return
        self._limits = (max_concurrency, max_queue)
        self.bulkhead = Bulkhead(max_concurrency, max_queue) if max_concurrency else None

    def observe(self, seconds: float) -> None:
        previous = self.ewma_s
        self.ewma_s = (
            seconds if previous is None else EWMA_ALPHA * seconds + (1 - EWMA_ALPHA) * previous
        )


class Router:
    def __init__(self, state: SharedState):
        self.state = state
        self.runtimes: dict[str, DeploymentRuntime] = {}

    def runtime(self, deployment: ResolvedDeployment) -> DeploymentRuntime:
        runtime = self.runtimes.get(deployment.key)
        if runtime is None:
            runtime = self.runtimes[deployment.key] = DeploymentRuntime(deployment.key)
        runtime.configure(deployment.max_concurrency, deployment.max_queue)
        return runtime

    async def order(
        self, model_id: str, strategy: Routing, deployments: list[ResolvedDeployment]
    ) -> list[ResolvedDeployment]:
        candidates = [d for d in deployments if d.enabled]
        if len(candidates) <= 1:
            return candidates
        if strategy == "round_robin":
            turn = await self.state.incr(f"rr:{model_id}")
            start = turn % len(candidates)
            return candidates[start:] + candidates[:start]
        if strategy == "least_in_flight":
            return sorted(candidates, key=lambda d: (self.runtime(d).in_flight, random.random()))  # noqa: S311
        if strategy == "latency":
            return sorted(
                candidates,
                key=lambda d: (
                    -1.0 if (ewma := self.runtime(d).ewma_s) is None else ewma,
                    random.random(),  # noqa: S311
                ),
            )
        # Weighted random order without replacement (Efraimidis-Spirakis keys).
        return sorted(candidates, key=lambda d: random.random() ** (1.0 / d.weight), reverse=True)  # noqa: S311
