"""Validate a workflow definition (every problem at once) and compile it.

`validate_workflow(data)` lists problems, each with a path such as
`steps[2].depends_on`; `load_workflow(data)` raises `WorkflowInvalid` (a 400)
listing them, or returns a `CompiledWorkflow` ready for the executor.
`validate_input(workflow, inputs)` checks the execute input against the
workflow's `input_schema`, naming the field.

Ordering rules: a step may reference only steps earlier in the list; a
`depends_on` may point later only within the run of steps between two
conditionals (a conditional waits for every step before it and every step
after it waits for the conditional); `depends_on` must not form a cycle; a
`go_to_step` backwards (or to itself) needs `max_iterations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from engine.errors import InvalidRequest
from engine.workflows.references import (
    Compiled,
    ReferenceError_,
    compile_value,
    reference_errors,
    references_in,
    step_references,
)
from engine.workflows.schema import STEP_TYPES, Step, WorkflowSpec
from engine.workflows.steps import chat, conditional, crag, http, search, template
from engine.workflows.steps.base import StepRunner


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class WorkflowInvalid(InvalidRequest):
    """The workflow definition breaks rules; `problems` lists every one."""

    default_code = "invalid_workflow"

    def __init__(self, problems: list[Problem]):
        super().__init__("invalid workflow: " + "; ".join(str(p) for p in problems),
                         param=problems[0].path if problems else None)
        self.problems = problems


@dataclass(slots=True)
class CompiledStep:
    index: int
    name: str
    type: str
    runner: StepRunner
    deps: tuple[int, ...]  # indices of steps that must finish first
    on_error: str
    fallback_value: Any
    max_attempts: int
    backoff_ms: int
    timeout_s: float | None


@dataclass(slots=True)
class CompiledWorkflow:
    spec: WorkflowSpec
    steps: list[CompiledStep]
    by_name: dict[str, int]
    output: Compiled | None
    input_validator: Draft202012Validator | None
    sequential: bool  # no references between steps and no depends_on: run in list order


_STEP_ADAPTER: TypeAdapter[Any] = TypeAdapter(Step)


def _path(loc: tuple[Any, ...], error_type: str) -> str:
    out = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        if position == 2 and loc[0] == "steps" and part in STEP_TYPES:
            continue  # the discriminator's tag
        if part[:1].isupper() or "[" in part:
            continue  # a union member's name
        out += f".{part}" if out else part
    if error_type in ("union_tag_invalid", "union_tag_not_found"):
        out += ".type"
    return out or "body"


def _pydantic_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        problems.append(Problem(_path(item["loc"], item["type"]), message))
    return problems


def _segments(types: list[Any]) -> list[int]:
    """Segment number of each step: conditionals are segments of their own."""
    segment, out = 0, []
    for kind in types:
        if kind == "conditional":
            segment += 1
            out.append(segment)
            segment += 1
        else:
            out.append(segment)
    return out


def _actions(step: dict[str, Any]) -> list[tuple[str, Any]]:
    actions = []
    conditions = step.get("conditions")
    if isinstance(conditions, list):
        for k, condition in enumerate(conditions):
            if isinstance(condition, dict):
                actions.append((f"conditions[{k}].action", condition.get("action")))
    actions.append(("default_action", step.get("default_action")))
    return actions


def _crag_default(raw: list[dict[str, Any]], index: int) -> str | None:
    for j in range(index - 1, -1, -1):
        if raw[j].get("type") == "knowledge_base_search" and isinstance(raw[j].get("name"), str):
            return f"${{step:{raw[j]['name']}:documents}}"
    return None


def _graph_problems(raw: list[dict[str, Any]], output: Any) -> list[Problem]:
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for i, step in enumerate(raw):
        name = step.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(Problem(f"steps[{i}].name", f"duplicate step name '{name}' "
                                        f"(also steps[{names[name]}])"))
            else:
                names[name] = i
    segments = _segments([s.get("type") for s in raw])

    for i, step in enumerate(raw):
        own = step.get("name")
        # Malformed references.
        for key, value in step.items():
            for where, message in reference_errors(value, f"steps[{i}].{key}"):
                problems.append(Problem(where, message))
        # depends_on.
        depends = step.get("depends_on")
        if isinstance(depends, list):
            for target in depends:
                if not isinstance(target, str):
                    continue
                j = names.get(target)
                if j is None:
                    problems.append(Problem(f"steps[{i}].depends_on", f"unknown step '{target}'"))
                elif target == own:
                    problems.append(Problem(f"steps[{i}].depends_on", "a step cannot depend on "
                                            "itself"))
                elif j > i and segments[j] != segments[i]:
                    problems.append(Problem(
                        f"steps[{i}].depends_on", f"step '{target}' cannot have run before: a "
                        "conditional step lies between them"))
        # References to steps.
        for key, value in step.items():
            if key in ("name", "type", "depends_on", "fallback_value"):
                continue
            if key in ("conditions", "default_action"):
                refs = step_references({key: value})
                ends = references_in([a for _, a in _actions({key: value})])
                unknown_only = {r.step for r in ends if r.step} - refs
            else:
                refs = {r.step for r in references_in(value) if r.step}
                unknown_only = set()
            for target in sorted(refs | unknown_only):
                j = names.get(target)
                if j is None:
                    problems.append(Problem(f"steps[{i}].{key}",
                                            f"references unknown step '{target}'"))
                elif target in unknown_only:
                    continue  # end_workflow output may read any step
                elif j == i:
                    problems.append(Problem(f"steps[{i}].{key}", "a step cannot reference "
                                            "its own output"))
                elif j > i:
                    problems.append(Problem(f"steps[{i}].{key}", f"references step "
                                            f"'{target}', which comes later"))
        if step.get("type") == "crag_scoring" and step.get("input_documents") is None \
                and _crag_default(raw, i) is None:
            problems.append(Problem(f"steps[{i}].input_documents", "needed: no earlier "
                                    "knowledge_base_search step to default to"))
        # go_to_step targets and loop bounds.
        if step.get("type") == "conditional":
            for where, action in _actions(step):
                if not isinstance(action, dict) or "go_to_step" not in action:
                    continue
                target = action["go_to_step"]
                j = names.get(target) if isinstance(target, str) else None
                if j is None:
                    problems.append(Problem(f"steps[{i}].{where}.go_to_step",
                                            f"unknown step '{target}'"))
                elif j <= i and action.get("max_iterations") is None:
                    problems.append(Problem(f"steps[{i}].{where}.max_iterations",
                                            f"go_to_step '{target}' jumps backwards: set "
                                            "max_iterations to bound the loop"))
    problems.extend(_cycles(raw, names))
    for where, message in reference_errors(output, "output"):
        problems.append(Problem(where, message))
    for ref in references_in(output):
        if ref.step and ref.step not in names:
            problems.append(Problem("output", f"references unknown step '{ref.step}'"))
    return problems


def _cycles(raw: list[dict[str, Any]], names: dict[str, int]) -> list[Problem]:
    edges: dict[int, list[int]] = {}
    for i, step in enumerate(raw):
        depends = step.get("depends_on")
        targets = depends if isinstance(depends, list) else []
        edges[i] = [names[t] for t in targets if isinstance(t, str) and t in names
                    and names[t] != i]
    state: dict[int, int] = {}  # 1 visiting, 2 done
    problems: list[Problem] = []
    seen_cycles: set[frozenset[int]] = set()

    def visit(node: int, trail: list[int]) -> None:
        state[node] = 1
        trail.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    path = " -> ".join(str(raw[n].get("name")) for n in [*cycle, nxt])
                    problems.append(Problem(f"steps[{min(cycle)}].depends_on",
                                            f"depends_on cycle: {path}"))
            elif nxt not in state:
                visit(nxt, trail)
        trail.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [])
    return problems


def _analyse(data: Any) -> tuple[list[Problem], CompiledWorkflow | None]:
    if not isinstance(data, dict):
        return [Problem("body", "a workflow must be a JSON object")], None
    problems: list[Problem] = []
    spec = None
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as error:
        problems.extend(_pydantic_problems(error))
    raw_steps = data.get("steps")
    raw = [s if isinstance(s, dict) else {} for s in raw_steps] \
        if isinstance(raw_steps, list) else []
    problems.extend(_graph_problems(raw, data.get("output")))
    if spec is None or problems:
        return _unique(problems), None
    compile_problems, compiled = _compile(spec, raw)
    return compile_problems, compiled


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _compile(spec: WorkflowSpec, raw: list[dict[str, Any]]) -> tuple[
        list[Problem], CompiledWorkflow | None]:
    problems: list[Problem] = []
    by_name = {s.name: i for i, s in enumerate(spec.steps)}
    explicit = any(s.depends_on for s in spec.steps) or any(step_references(r) for r in raw)
    steps: list[CompiledStep] = []
    for i, step in enumerate(spec.steps):
        default_documents = _crag_default(raw, i) if step.type == "crag_scoring" else None
        try:
            if step.type == "crag_scoring":
                runner = crag.compile_step(step, default_documents)
            else:
                runner = _COMPILERS[step.type](step)
        except (InvalidRequest, ReferenceError_) as error:
            message = error.message if isinstance(error, InvalidRequest) else str(error)
            problems.append(Problem(f"steps[{i}]", message))
            continue
        refs = step_references(raw[i])
        if default_documents is not None and step.input_documents is None:  # type: ignore[union-attr]
            refs.add(default_documents.split(":")[1])
        deps = {by_name[n] for n in step.depends_on} | {by_name[n] for n in refs}
        if not explicit and i > 0:
            deps.add(i - 1)
        fallback = step.fallback_value if step.on_error == "fallback_value" else None
        steps.append(CompiledStep(
            index=i, name=step.name, type=step.type, runner=runner, deps=tuple(sorted(deps)),
            on_error=step.on_error, fallback_value=fallback,
            max_attempts=step.retry.max_attempts, backoff_ms=step.retry.backoff_ms,
            timeout_s=step.timeout_ms / 1000 if step.timeout_ms else None))
    try:
        output = compile_value(spec.output) if spec.output is not None else None
    except ReferenceError_ as error:
        problems.append(Problem("output", str(error)))
        output = None
    if problems:
        return problems, None
    validator = Draft202012Validator(spec.input_schema) if spec.input_schema else None
    return [], CompiledWorkflow(spec, steps, by_name, output, validator, not explicit)


_COMPILERS = {
    "chat_completion": chat.compile_step,
    "knowledge_base_search": search.compile_step,
    "conditional": conditional.compile_step,
    "http_request": http.compile_step,
    "template": template.compile_step,
}


def validate_workflow(data: Any) -> list[Problem]:
    """Every problem of a raw workflow definition (an empty list when valid)."""
    return _analyse(data)[0]


def load_workflow(data: Any) -> CompiledWorkflow:
    """Validate and compile a raw definition; raises WorkflowInvalid listing every problem."""
    if isinstance(data, WorkflowSpec):
        data = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
    problems, compiled = _analyse(data)
    if problems or compiled is None:
        raise WorkflowInvalid(problems)
    return compiled


def validate_input(workflow: CompiledWorkflow, inputs: Any) -> None:
    """Raise InvalidRequest naming the first offending input field (all listed in the message)."""
    if not isinstance(inputs, dict):
        raise InvalidRequest("the workflow input must be a JSON object", param="input")
    if workflow.input_validator is None:
        return
    errors = sorted(workflow.input_validator.iter_errors(inputs),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    described = []
    for error in errors:
        parts = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [n for n in error.validator_value if n not in error.instance]
            if missing:
                parts.append(str(missing[0]))
        described.append((".".join(parts) or "input", error.message))
    raise InvalidRequest("invalid workflow input: " + "; ".join(f"{p}: {m}" for p, m in described),
                         param=described[0][0])
