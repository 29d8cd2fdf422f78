"""Serve a chat or embedding request through a model or a chain.

For each plan step (one for a model, one per chain step): up to `max_retries`
retries with backoff; each attempt routes to a deployment whose circuit
allows it, holds a slot of its bulkhead, and calls the provider under the
step's latency limit. A step that gives up falls back to the next one.

Streams commit at the first token: until then a failed attempt is retried or
falls back and the client sees none of it; after it, the stream is the
client's and a break ends it with an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from engine import metrics
from engine.catalog import Catalog, Plan, PlanStep
from engine.context import current_trace
from engine.errors import HeadraceError, ServiceUnavailable, UpstreamTimeout
from engine.gateway.breaker import CircuitBreakers, Permit
from engine.gateway.prompting import expand_prompts
from engine.gateway.providers import Call, ChatProvider
from engine.gateway.retry import Backoff, classify, counts_against_deployment, should_retry
from engine.gateway.routing import Router
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest
from engine.schemas.models import ModelSpec, ResolvedDeployment
from engine.secrets import Secrets

T = TypeVar("T")


@dataclass(slots=True)
class Attempt:
    deployment: str
    outcome: str
    duration_ms: float
    error: str | None = None


@dataclass(slots=True)
class Report:
    """What happened while serving one request."""

    target: str
    attempts: list[Attempt] = field(default_factory=list)
    fallbacks: int = 0
    model: ModelSpec | None = None
    deployment: ResolvedDeployment | None = None
    upstream_s: float = 0.0
    waited_s: float = 0.0

    async def sleep(self, seconds: float) -> None:
        self.waited_s += seconds
        await asyncio.sleep(seconds)


@dataclass(slots=True)
class Lease:
    """The resources one attempt holds on a deployment until it is done."""

    deployment: ResolvedDeployment
    permit: Permit
    release: Callable[[], None]


class Stream:
    """A committed stream: the chunks read before committing, then the rest."""

    def __init__(self, report: Report, prefix: list[dict[str, Any]],
                 rest: AsyncIterator[dict[str, Any]] | None,
                 finish: Callable[[BaseException | None], Awaitable[None]]):
        self.report = report
        self._prefix = prefix
        self._rest = rest
        self._finish = finish

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        failure: BaseException | None = None
        try:
            for chunk in self._prefix:
                yield chunk
            if self._rest is not None:
                async for chunk in self._rest:
                    yield chunk
        except HeadraceError as error:  # the upstream broke the stream
            failure = error
            raise
        finally:  # also when the client went away (GeneratorExit, cancellation)
            if self._rest is not None:
                await self._rest.aclose()  # type: ignore[attr-defined]
            await self._finish(failure)


def has_output(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries the first token (content, a tool call, or the end)."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or choice.get("finish_reason"):
            return True
    return False


class Gateway:
    def __init__(self, catalog: Catalog, providers: dict[str, ChatProvider], secrets: Secrets,
                 breakers: CircuitBreakers, router: Router):
        self.catalog = catalog
        self.providers = providers
        self.secrets = secrets
        self.breakers = breakers
        self.router = router

    # --- public entry points ----------------------------------------------------------

    async def complete(self, request: ChatCompletionRequest) -> tuple[dict[str, Any], Report]:
        request = await expand_prompts(request.normalised(), self.catalog)
        plan = self.catalog.plan(request.model)
        report = Report(plan.target)

        async def attempt(provider: ChatProvider, call: Call, model: ModelSpec) -> dict:
            return await provider.complete(call, apply_defaults(request, model))

        response, lease = await self._serve(plan, report, attempt)
        lease.release()
        return response, report

    async def stream(self, request: ChatCompletionRequest) -> Stream:
        """Open a stream; returns once it has committed (the first token arrived)."""
        request = await expand_prompts(request.normalised(), self.catalog)
        plan = self.catalog.plan(request.model)
        report = Report(plan.target)

        async def attempt(provider: ChatProvider, call: Call, model: ModelSpec):
            chunks = provider.stream(call, apply_defaults(request, model))
            prefix: list[dict[str, Any]] = []
            try:
                async for chunk in chunks:
                    prefix.append(chunk)
                    if has_output(chunk):
                        return prefix, chunks
            except BaseException:
                await chunks.aclose()  # type: ignore[attr-defined]
                raise
            return prefix, None  # the whole stream arrived before any output

        (prefix, rest), lease = await self._serve(plan, report, attempt, hold=True)
        model = report.model
        assert model is not None

        async def finish(failure: BaseException | None) -> None:
            lease.release()
            if failure is not None:
                key = lease.deployment.key
                metrics.upstream_requests.labels(model.id, key, "stream_broken").inc()
                if counts_against_deployment(failure):
                    await self.breakers.failure(lease.permit, model.circuit_breaker)

        return Stream(report, prefix, rest, finish)

    async def embed(self, request: EmbeddingRequest) -> tuple[dict[str, Any], Report]:
        plan = self.catalog.plan(request.model, kind="embedding")
        report = Report(plan.target)

        async def attempt(provider: ChatProvider, call: Call, model: ModelSpec) -> dict:
            return await provider.embed(call, request)

        response, lease = await self._serve(plan, report, attempt)
        lease.release()
        return response, report

    # --- plan, steps, attempts ----------------------------------------------------------

    async def _serve(self, plan: Plan, report: Report,
                     attempt: Callable[[ChatProvider, Call, ModelSpec], Awaitable[T]],
                     *, hold: bool = False) -> tuple[T, Lease]:
        last_error: BaseException | None = None
        for index, step in enumerate(plan.steps):
            if index:
                report.fallbacks += 1
                metrics.fallbacks.labels(plan.target).inc()
            try:
                return await self._run_step(plan, step, report, attempt, hold)
            except HeadraceError as error:
                if classify(error) == "fatal":
                    raise
                last_error = error
                if step.on_failure == "fail":
                    break
        assert last_error is not None
        if len(report.attempts) > 1:
            last_error.message = (  # type: ignore[attr-defined]
                f"{plan.kind} '{plan.target}' failed after {len(report.attempts)} attempts "
                f"and {report.fallbacks} fallbacks; last error: {last_error.message}"  # type: ignore[attr-defined]
            )
        raise last_error

    async def _run_step(self, plan: Plan, step: PlanStep, report: Report,
                        attempt: Callable[[ChatProvider, Call, ModelSpec], Awaitable[T]],
                        hold: bool) -> tuple[T, Lease]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(step.max_retries + 1),
            wait=Backoff(plan.retry),
            retry=retry_if_exception(lambda e: should_retry(e, plan.retry)),
            sleep=report.sleep,
            before_sleep=lambda _: metrics.retries.labels(plan.target).inc(),
            reraise=True,
        )
        async for try_ in retrying:
            with try_:
                return await self._attempt(step, report, attempt, hold)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(self, step: PlanStep, report: Report,
                       attempt: Callable[[ChatProvider, Call, ModelSpec], Awaitable[T]],
                       hold: bool) -> tuple[T, Lease]:
        model = step.model
        lease = await self._lease(step)
        deployment = lease.deployment
        provider = self.providers[deployment.provider]
        limit_ms = deployment.timeouts.total_ms
        latency_limited = step.max_latency_ms is not None and step.max_latency_ms < limit_ms
        if latency_limited:
            limit_ms = step.max_latency_ms  # type: ignore[assignment]
        trace = current_trace()
        started = time.perf_counter()
        try:
            reference = deployment.credentials
            secret = await self.secrets.get(reference) if reference else None
            call = Call(deployment, secret, limit_ms / 1000,
                        trace.child().traceparent if trace else None)
            try:
                async with asyncio.timeout(limit_ms / 1000):
                    result = await attempt(provider, call, model)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"deployment '{deployment.key}' did not answer within {limit_ms} ms"
                    + (" (the chain step's latency limit)" if latency_limited else ""),
                    code="latency_limit" if latency_limited else "upstream_timeout",
                ) from None
        except BaseException as error:
            elapsed = time.perf_counter() - started
            report.upstream_s += elapsed
            lease.release()
            outcome = getattr(error, "code", None) or type(error).__name__
            report.attempts.append(
                Attempt(deployment.key, outcome, round(elapsed * 1000, 3),
                        getattr(error, "message", None) or type(error).__name__)
            )
            metrics.upstream_requests.labels(model.id, deployment.key, outcome).inc()
            if counts_against_deployment(error):
                await self.breakers.failure(lease.permit, model.circuit_breaker)
            else:
                await self.breakers.release(lease.permit)
            raise
        elapsed = time.perf_counter() - started
        report.upstream_s += elapsed
        report.attempts.append(Attempt(deployment.key, "ok", round(elapsed * 1000, 3)))
        report.model, report.deployment = model, deployment
        self.router.runtime(deployment).observe(elapsed)
        metrics.upstream_requests.labels(model.id, deployment.key, "ok").inc()
        metrics.upstream_latency.labels(model.id, deployment.key).observe(elapsed)
        await self.breakers.success(lease.permit)
        if not hold:
            lease.release()
            lease = Lease(deployment, lease.permit, _noop)
        return result, lease

    async def _lease(self, step: PlanStep) -> Lease:
        """Route to a deployment whose circuit allows a call, and take a bulkhead slot."""
        model = step.model
        for deployment in await self.router.order(model.id, model.routing, step.deployments):
            permit = await self.breakers.allow(deployment.key)
            if permit is None:
                continue
            runtime = self.router.runtime(deployment)
            if runtime.bulkhead is not None:
                try:
                    await runtime.bulkhead.acquire(deployment.key)
                except ServiceUnavailable:
                    await self.breakers.release(permit)
                    raise
            runtime.in_flight += 1
            released = False

            def release(runtime=runtime) -> None:
                nonlocal released
                if not released:
                    released = True
                    runtime.in_flight -= 1
                    if runtime.bulkhead is not None:
                        runtime.bulkhead.release()

            return Lease(deployment, permit, release)
        raise ServiceUnavailable(
            f"every deployment of model '{model.id}' has an open circuit; retry later",
            code="circuit_open",
            retry_after=5,
        )


def _noop() -> None:
    return None


def apply_defaults(request: ChatCompletionRequest, model: ModelSpec) -> ChatCompletionRequest:
    """The model's default parameters, where the request left them unset."""
    defaults = model.defaults
    updates = {
        name: value
        for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed")
        if (value := getattr(defaults, name)) is not None and getattr(request, name) is None
    }
    if defaults.max_tokens is not None and request.token_limit is None:
        updates["max_tokens"] = defaults.max_tokens
    if defaults.stop is not None and request.stop is None:
        updates["stop"] = defaults.stop
    return request.model_copy(update=updates) if updates else request
