"""Run a compiled workflow.

The list is cut into segments at conditional steps: a conditional waits for
every step before it, and every step after it waits for the conditional.
Inside a segment the steps form a DAG (explicit `depends_on` plus the steps
they reference) and ready steps run concurrently, at most `max_concurrency`
at a time; a workflow without any reference between steps and without
`depends_on` runs in list order.

Conditional actions: `continue`; `go_to_step` (forward: the steps jumped over
are recorded as skipped; backward: the steps from the target on run again, at
most `max_iterations` jumps per conditional, after which it continues);
`end_workflow` (the run ends with that output).

Per step: retries with exponential backoff, a timeout per attempt, and
`on_error`: `fail_workflow` ends the run unsuccessfully, `skip_step` records
the step as skipped (references to it resolve to null), `fallback_value` uses
the fallback as its output.

Events go to an async callback as dicts `{"event", "run_id", "seq",
"timestamp", "data"}`: run_started (with the run's `input`), step_started,
step_output_delta (chat content), step_finished, run_finished.

Each step's `input` is what it received once its references were resolved (the
request a chat step sent, the search it made, the conditions it evaluated...;
each step module says what): the runner sets `StepContext.input`, and the
executor keeps it, bounded (`engine.workflows.trace.bounded`), in the
`StepResult` and sends it in the **step_finished** event (not step_started:
it is known only once the step has rendered its fields). A step that failed
before getting that far, or was jumped over, has `input: None`. The run's
`input` (the workflow input as given, bounded the same way) is in the run
result and its record.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.errors import HeadraceError
from engine.workflows.references import Scope
from engine.workflows.steps.base import StepContext
from engine.workflows.trace import bounded
from engine.workflows.validate import CompiledStep, CompiledWorkflow, validate_input

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], Awaitable[None]]
MAX_ERROR_CHARS = 2000


@dataclass(slots=True)
class StepResult:
    name: str
    type: str
    success: bool
    skipped: bool
    output: Any
    error: str | None
    started_at: datetime
    finished_at: datetime
    execution_time_ms: float
    tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    warnings: list[str] = field(default_factory=list)
    input: Any = None  # what the step received, references resolved (bounded)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "success": self.success,
                "skipped": self.skipped, "input": self.input, "output": self.output,
                "error": self.error,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "execution_time_ms": self.execution_time_ms, "tokens": self.tokens,
                "cost": self.cost, "attempts": self.attempts, "warnings": self.warnings}


@dataclass(slots=True)
class RunResult:
    run_id: str
    workflow_id: str
    success: bool
    output: Any
    error: str | None
    steps: list[StepResult]
    started_at: datetime
    finished_at: datetime
    execution_time_ms: float
    warnings: list[str] = field(default_factory=list)
    input: Any = None  # the workflow input as given (bounded)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.steps)

    @property
    def cost(self) -> float | None:
        costs = [s.cost for s in self.steps if s.cost is not None]
        return sum(costs) if costs else None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "workflow_id": self.workflow_id,
                "success": self.success, "input": self.input, "output": self.output,
                "error": self.error,
                "steps": [s.to_dict() for s in self.steps],
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "execution_time_ms": self.execution_time_ms, "tokens": self.tokens,
                "cost": self.cost, "warnings": self.warnings}


class _Abort(Exception):
    def __init__(self, result: StepResult):
        self.result = result


class _Run:
    """State of one run."""

    __slots__ = ("emit", "outputs", "request", "results", "run_id", "seq", "workflow")

    def __init__(self, workflow: CompiledWorkflow, request: dict[str, Any], run_id: str,
                 emit: EventCallback | None):
        self.workflow = workflow
        self.request = request
        self.outputs: dict[str, Any] = {}
        self.results: list[StepResult] = []
        self.run_id = run_id
        self.emit = emit
        self.seq = 0

    async def event(self, name: str, data: dict[str, Any]) -> None:
        if self.emit is None:
            return
        self.seq += 1
        try:
            await self.emit({"event": name, "run_id": self.run_id, "seq": self.seq,
                             "timestamp": datetime.now(UTC).isoformat(), "data": data})
        except Exception:
            log.exception("workflow event callback failed", extra={"run_id": self.run_id})


class WorkflowExecutor:
    """Runs compiled workflows against injected `StepServices`.

    One executor can serve many concurrent runs; `max_concurrency` bounds the
    steps running at once within a run.
    """

    def __init__(self, services: Any = None, *, max_concurrency: int = 8,
                 allow_private_http: bool = False):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.services = services
        self.max_concurrency = max_concurrency
        self.allow_private_http = allow_private_http

    async def run(self, workflow: CompiledWorkflow, inputs: dict[str, Any] | None = None, *,
                  run_id: str | None = None, on_event: EventCallback | None = None,
                  check_input: bool = True) -> RunResult:
        """Run to the end. An invalid input raises InvalidRequest before anything runs;
        a step failure does not raise, it gives `success: False`."""
        inputs = {} if inputs is None else inputs
        if check_input:
            validate_input(workflow, inputs)
        run = _Run(workflow, inputs, run_id or f"run_{uuid.uuid4().hex}", on_event)
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        await run.event("run_started", {"workflow_id": workflow.spec.id, "input": inputs})
        success, error, output, warnings = True, None, None, []
        try:
            output, warnings = await self._execute(run)
        except _Abort as abort:
            success = False
            error = f"step '{abort.result.name}' failed: {abort.result.error}"
        elapsed = (time.perf_counter() - clock) * 1000
        result = RunResult(run.run_id, workflow.spec.id, success, output, error, run.results,
                           started_at, datetime.now(UTC), elapsed, warnings, bounded(inputs))
        await run.event("run_finished", {"success": success, "output": output, "error": error,
                                         "execution_time_ms": elapsed, "tokens": result.tokens,
                                         "cost": result.cost})
        return result

    async def _execute(self, run: _Run) -> tuple[Any, list[str]]:
        steps = run.workflow.steps
        count = len(steps)
        jumps: dict[int, int] = {}
        position = 0
        while position < count:
            step = steps[position]
            if step.type != "conditional":
                end = position + 1
                while end < count and steps[end].type != "conditional":
                    end += 1
                await self._run_segment(run, position, end)
                position = end
                continue
            result = await self._step(run, step)
            self._record(run, step, result)
            decision = result.output if result.success else None
            action = decision.get("action") if isinstance(decision, dict) else "continue"
            if action == "end_workflow":
                return decision["output"], []  # type: ignore[index]
            if action != "go_to_step":
                position += 1
                continue
            target = run.workflow.by_name[decision["target"]]  # type: ignore[index]
            bound = decision.get("max_iterations")  # type: ignore[union-attr]
            taken = jumps.get(position, 0)
            if bound is not None and taken >= bound:
                result.warnings.append(f"go_to_step '{steps[target].name}' reached "
                                       f"max_iterations {bound}; continuing")
                position += 1
                continue
            jumps[position] = taken + 1
            for skipped in steps[position + 1:target]:
                now = datetime.now(UTC)
                run.outputs.pop(skipped.name, None)
                run.results.append(StepResult(skipped.name, skipped.type, False, True, None,
                                              None, now, now, 0.0))
            position = target
        return self._output(run)

    def _output(self, run: _Run) -> tuple[Any, list[str]]:
        workflow = run.workflow
        if workflow.output is not None:
            scope = Scope(run.request, run.outputs)
            return workflow.output.render(scope), scope.warnings
        for step in reversed(workflow.steps):
            if step.type != "conditional" and step.name in run.outputs:
                return run.outputs[step.name], []
        return None, []

    def _record(self, run: _Run, step: CompiledStep, result: StepResult) -> None:
        run.results.append(result)
        if result.skipped:
            run.outputs.pop(step.name, None)
        elif result.success or step.on_error == "fallback_value":
            run.outputs[step.name] = result.output
        if not result.success and not result.skipped and step.on_error == "fail_workflow":
            raise _Abort(result)

    async def _run_segment(self, run: _Run, low: int, high: int) -> None:
        steps = run.workflow.steps
        if run.workflow.sequential or high - low == 1:
            for step in steps[low:high]:
                self._record(run, step, await self._step(run, step))
            return
        waiting: dict[int, set[int]] = {}
        dependents: dict[int, list[int]] = {i: [] for i in range(low, high)}
        ready: deque[int] = deque()
        for i in range(low, high):
            deps = {d for d in steps[i].deps if low <= d < high}
            waiting[i] = deps
            for d in deps:
                dependents[d].append(i)
            if not deps:
                ready.append(i)
        running: dict[asyncio.Future[StepResult], int] = {}
        try:
            while ready or running:
                if not running and len(ready) == 1:
                    index = ready.popleft()  # nothing to overlap with: no task needed
                    self._record(run, steps[index], await self._step(run, steps[index]))
                    finished = [index]
                else:
                    while ready and len(running) < self.max_concurrency:
                        index = ready.popleft()
                        running[asyncio.ensure_future(self._step(run, steps[index]))] = index
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    finished = []
                    for task in done:
                        index = running.pop(task)
                        self._record(run, steps[index], task.result())
                        finished.append(index)
                for index in finished:
                    for j in dependents[index]:
                        waiting[j].discard(index)
                        if not waiting[j]:
                            ready.append(j)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _step(self, run: _Run, step: CompiledStep) -> StepResult:
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        name = step.name
        if run.emit is not None:
            await run.event("step_started", {"step": name, "type": step.type})
        scope = Scope(run.request, run.outputs)
        context = StepContext(scope, self.services, self.allow_private_http)
        if run.emit is not None and step.type == "chat_completion":
            async def delta(text: str) -> None:
                await run.event("step_output_delta", {"step": name, "delta": text})
            context.emit_delta = delta
        output: Any = None
        error: str | None = None
        attempt = 0
        while True:
            attempt += 1
            try:
                if step.timeout_s is not None:
                    async with asyncio.timeout(step.timeout_s):
                        output = await step.runner(context)
                else:
                    output = await step.runner(context)
                error = None
                break
            except TimeoutError:
                error = f"timed out after {round(step.timeout_s * 1000)} ms" \
                    if step.timeout_s is not None else "timed out"
            except HeadraceError as failure:
                error = failure.message
            except Exception as failure:
                error = f"{type(failure).__name__}: {failure}"
            if attempt >= step.max_attempts:
                break
            if step.backoff_ms:
                await asyncio.sleep(step.backoff_ms * 2 ** (attempt - 1) / 1000)
        success = error is None
        skipped = False
        if not success:
            error = error[:MAX_ERROR_CHARS]  # type: ignore[index]
            if step.on_error == "skip_step":
                skipped, output = True, None
            elif step.on_error == "fallback_value":
                output = step.fallback_value
            else:
                output = None
        elapsed = (time.perf_counter() - clock) * 1000
        warnings = scope.warnings + context.warnings
        recorded = bounded(context.input)
        result = StepResult(name, step.type, success, skipped, output, error, started_at,
                            datetime.now(UTC), elapsed, context.tokens, context.cost, attempt,
                            warnings, recorded)
        if run.emit is not None:
            await run.event("step_finished", {
                "step": name, "type": step.type, "success": success, "skipped": skipped,
                "input": recorded, "output": output, "error": error, "execution_time_ms": elapsed,
                "tokens": context.tokens, "cost": context.cost, "attempts": attempt,
                "warnings": warnings})
        return result
