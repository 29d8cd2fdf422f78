"""Evaluate -> decide -> account, for every request, outside the route handlers.

- evaluate: `authenticate` (who is calling) and `authorize` (may it use this
  model, chain or prompt);
- decide: `admit` (rate limits and concurrency of the key and its team) and,
  for gateway calls, a budget reservation sized to the request's worst case;
- account: after the call, the actual cost settles the reservation, tokens
  are charged to the token-per-minute windows, and a usage record is queued.

`GovernedGateway` wraps the gateway with all of it, so every client-facing API
(chat, responses, messages, embeddings) is governed the same way. The caller's
principal and rate-limit admission travel in context variables set by the
API layer; a stream takes over the admission and releases it when it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.catalog import Catalog, Plan
from engine.context import current_request_id
from engine.errors import HeadraceError, PermissionDenied
from engine.gateway.executor import Gateway, Report, Stream
from engine.governance.budgets import BudgetGuard, Reservation
from engine.governance.keys import Authenticator, Principal
from engine.governance.ratelimit import NO_LIMITS, Admission, RateLimiter, Subject
from engine.governance.usage import UsageEvent, UsageRecorder, cost_of
from engine.logs import get_logger
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest
from engine.tokens import count_messages, count_tokens

log = get_logger("headrace.governance")
T = TypeVar("T")


@dataclass(slots=True)
class AdmissionHolder:
    """The request's admission until someone (the request's end, or a stream) releases it."""

    admission: Admission | None

    def take(self) -> Admission | None:
        admission, self.admission = self.admission, None
        return admission


principal_var: ContextVar[Principal | None] = ContextVar("principal", default=None)
# Governed calls made so far by this request (a workflow makes several): each
# gets its own usage record id, `<request id>`, `<request id>:1`, ...
calls_var: ContextVar[list[int] | None] = ContextVar("governed_calls", default=None)


def usage_id() -> str:
    request_id = current_request_id() or f"unknown-{time.time_ns()}"
    calls = calls_var.get()
    if calls is None:
        return request_id
    seq = calls[0]
    calls[0] += 1
    return request_id if seq == 0 else f"{request_id}:{seq}"
admission_var: ContextVar[AdmissionHolder | None] = ContextVar("admission", default=None)


class Governance:
    def __init__(self, *, authenticator: Authenticator, limiter: RateLimiter, catalog: Catalog,
                 budgets: BudgetGuard, usage: UsageRecorder):
        self.authenticator = authenticator
        self.limiter = limiter
        self.catalog = catalog
        self.budgets = budgets
        self.usage = usage
        self._settling: set[asyncio.Task[None]] = set()

    def settle_later(self, work: Awaitable[None]) -> None:
        """Account for a finished call after its response has gone: the caller does
        not wait for budget settlement and token charging (Redis round trips)."""
        task = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("accounting for a request failed",
                      error=f"{type(task.exception()).__name__}: {task.exception()}"[:300])

    async def drain(self) -> None:
        """Finish pending accounting (at shutdown, and in tests)."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)

    async def authenticate(self, secret: str) -> Principal:
        return await self.authenticator.authenticate(secret)

    def subjects(self, principal: Principal) -> list[Subject]:
        subjects = []
        if not principal.rate_limits.is_empty():
            subjects.append(Subject.api_key(principal.key_id, principal.rate_limits))
        team = self.catalog.snapshot.teams.get(principal.team_id or "")
        if team is not None and not team.rate_limits.is_empty():
            subjects.append(Subject.team(team.id, team.rate_limits))
        return subjects

    async def admit(self, principal: Principal) -> Admission:
        subjects = self.subjects(principal)
        return await self.limiter.acquire(subjects) if subjects else NO_LIMITS

    @staticmethod
    def authorize(principal: Principal, resource_type: str, resource_id: str, *,
                  param: str | None = None) -> None:
        if not principal.may(resource_type, resource_id):
            singular = resource_type.removesuffix("s").replace("_", " ")
            raise PermissionDenied(
                f"API key {principal.key_id} may not use {singular} '{resource_id}'",
                param=param, code="resource_not_allowed",
            )

    async def open(self, principal: Principal, plan: Plan, *, kind: str, prompt_tokens: int,
                   max_tokens: int | None) -> Ticket:
        budgets = self.budgets.applicable(principal.key_id, principal.team_id,
                                          self.catalog.snapshot.budgets)
        reservation = None
        if budgets:
            estimate = max(
                self.budgets.estimate_cost(step.model.pricing, prompt_tokens, max_tokens,
                                           context_window=step.model.context_window)
                for step in plan.steps
            )
            reservation = await self.budgets.reserve(budgets, estimate)
        return Ticket(self, principal, kind, reservation, time.perf_counter())


class Ticket:
    """One governed call: settles its budget reservation and records usage once."""

    def __init__(self, governance: Governance, principal: Principal, kind: str,
                 reservation: Reservation | None, started: float):
        self.governance = governance
        self.principal = principal
        self.kind = kind
        self.reservation = reservation
        self.started = started
        self.closed = False
        self.usage_id = usage_id()

    async def failing(self, call: Awaitable[T], *, stream: bool = False) -> T:
        """Await `call`; if it fails, close the ticket with the failure, then re-raise."""
        try:
            return await call
        except HeadraceError as error:
            await self.close(None, None, status=error.code or "error", stream=stream)
            raise
        except BaseException:
            await self.close(None, None, status="cancelled", stream=stream)
            raise

    async def run(self, call: Awaitable[tuple[dict[str, Any], Report]]
                  ) -> tuple[dict[str, Any], Report]:
        """Await a gateway call and account for it, however it ends."""
        result, report = await self.failing(call)
        self.governance.settle_later(self.close(report, result.get("usage")))
        return result, report

    async def close(self, report: Report | None, usage: dict[str, Any] | None, *,
                    status: str = "ok", stream: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        prompt = int((usage or {}).get("prompt_tokens") or 0)
        completion = int((usage or {}).get("completion_tokens") or 0)
        model = report.model if report else None
        cost = cost_of(model.pricing if model else None, prompt, completion)
        try:
            if self.reservation is not None:
                await self.reservation.settle(cost)
            tokens = prompt + completion
            if tokens:
                subjects = self.governance.subjects(self.principal)
                if subjects:
                    await self.governance.limiter.charge_tokens(subjects, tokens)
        finally:
            self.governance.usage.record(UsageEvent(
                request_id=self.usage_id,
                kind=self.kind, key_id=self.principal.key_id, team_id=self.principal.team_id,
                model=model.id if model else (report.target if report else None),
                deployment=report.deployment.key if report and report.deployment else None,
                prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost,
                latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
                status=status, stream=stream,
            ))


class GovernedGateway:
    """The gateway as clients reach it: authorised, budgeted and accounted."""

    def __init__(self, gateway: Gateway, governance: Governance):
        self.gateway = gateway
        self.governance = governance

    def _principal(self) -> Principal:
        principal = principal_var.get()
        if principal is None:  # the API layer authenticates every /v1 request first
            raise PermissionDenied("no authenticated caller", code="unauthenticated")
        return principal

    def _plan(self, principal: Principal, name: str, kind: str) -> Plan:
        plan = self.governance.catalog.plan(name, kind=kind)  # type: ignore[arg-type]
        self.governance.authorize(principal, f"{plan.kind}s", plan.target, param="model")
        return plan

    def _check_prompts(self, principal: Principal, request: ChatCompletionRequest) -> None:
        for index, message in enumerate(request.messages):
            if message.prompt_id is not None:
                self.governance.authorize(principal, "prompts", message.prompt_id,
                                          param=f"messages[{index}].prompt_id")

    async def _open(self, principal: Principal, plan: Plan, request: ChatCompletionRequest,
                    kind: str) -> Ticket:
        budgeted = self.governance.budgets.applicable(
            principal.key_id, principal.team_id, self.governance.catalog.snapshot.budgets)
        # Counting tokens costs time; only a budget needs the estimate up front.
        prompt_tokens = count_messages(
            [m.model_dump(exclude_none=True) for m in request.messages], plan.steps[0].model.model
        ) if budgeted else 0
        return await self.governance.open(principal, plan, kind=kind,
                                          prompt_tokens=prompt_tokens,
                                          max_tokens=request.token_limit)

    def check(self, request: ChatCompletionRequest) -> None:
        """Refuse now what the call would refuse (unknown model, no permission):
        for work that runs later, as an async operation."""
        principal = self._principal()
        self._plan(principal, request.model, "chat")
        self._check_prompts(principal, request)

    async def complete(self, request: ChatCompletionRequest, *, kind: str = "chat"
                       ) -> tuple[dict[str, Any], Report]:
        principal = self._principal()
        plan = self._plan(principal, request.model, "chat")
        self._check_prompts(principal, request)
        ticket = await self._open(principal, plan, request, kind)
        return await ticket.run(self.gateway.complete(request))

    async def stream(self, request: ChatCompletionRequest, *, kind: str = "chat"
                     ) -> GovernedStream:
        principal = self._principal()
        plan = self._plan(principal, request.model, "chat")
        self._check_prompts(principal, request)
        ticket = await self._open(principal, plan, request, kind)
        stream = await ticket.failing(self.gateway.stream(request), stream=True)
        holder = admission_var.get()
        admission = holder.take() if holder is not None else None
        return GovernedStream(stream, ticket, admission)

    async def embed(self, request: EmbeddingRequest) -> tuple[dict[str, Any], Report]:
        principal = self._principal()
        plan = self._plan(principal, request.model, "embedding")
        texts = request.texts or []
        budgeted = self.governance.budgets.applicable(
            principal.key_id, principal.team_id, self.governance.catalog.snapshot.budgets)
        prompt_tokens = sum(count_tokens(t) for t in texts) if budgeted else 0
        ticket = await self.governance.open(principal, plan, kind="embeddings",
                                            prompt_tokens=prompt_tokens, max_tokens=0)
        return await ticket.run(self.gateway.embed(request))


class GovernedStream:
    """A committed stream that accounts for itself when it ends, however it ends.

    Upstreams are always asked for usage; a stream that reports none is
    counted with tiktoken from the text it carried.
    """

    def __init__(self, stream: Stream, ticket: Ticket, admission: Admission | None):
        self.stream = stream
        self.report = stream.report
        self.ticket = ticket
        self.admission = admission

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        usage: dict[str, Any] | None = None
        text: list[str] = []
        status = "ok"
        try:
            async for chunk in self.stream:
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        text.append(content)
                yield chunk
        except HeadraceError as error:
            status = error.code or "stream_broken"
            raise
        except BaseException:
            status = "cancelled"
            raise
        finally:
            if usage is None and text:
                model = self.report.model.model if self.report.model else None
                usage = {"prompt_tokens": 0, "completion_tokens": count_tokens("".join(text),
                                                                               model)}
            try:
                await self.ticket.close(self.report, usage, status=status, stream=True)
            finally:
                if self.admission is not None:
                    await self.admission.release()
