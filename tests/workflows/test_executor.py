import asyncio
import time

import pytest

from engine.errors import InvalidRequest
from engine.workflows import WorkflowExecutor, load_workflow
from tests.workflows.fakes import FakeServices, doc


def wf(*steps, **extra):
    return load_workflow({"id": "wf-1", "steps": list(steps), **extra})


def tpl(name, template="x", **extra):
    return {"type": "template", "name": name, "template": template, **extra}


def chat(name, message="hi", **extra):
    return {"type": "chat_completion", "name": name, "model_id": "m", "user_message": message,
            **extra}


class Recorder:
    def __init__(self):
        self.events = []

    async def __call__(self, event):
        self.events.append(event)

    def names(self):
        return [(e["event"], e["data"].get("step")) for e in self.events]


async def test_plain_list_runs_in_order_and_last_output_is_result():
    compiled = wf(tpl("a", "1"), tpl("b", "2"), tpl("c", "3"))
    assert compiled.sequential
    result = await WorkflowExecutor().run(compiled, {})
    assert [s.name for s in result.steps] == ["a", "b", "c"]
    assert result.success and result.output == "3" and result.run_id.startswith("run_")
    assert all(s.finished_at >= s.started_at for s in result.steps)


async def test_output_mapping_and_step_references():
    compiled = wf(tpl("a", {"v": "${request:x}"}), tpl("b", "got ${step:a:v}"),
                  output={"answer": "${step:b}", "raw": "${step:a}"})
    result = await WorkflowExecutor().run(compiled, {"x": 7}, run_id="run-fixed")
    assert result.output == {"answer": "got 7", "raw": {"v": 7}}
    assert result.run_id == "run-fixed"
    payload = result.to_dict()
    assert payload["steps"][0]["name"] == "a" and isinstance(payload["steps"][0]["started_at"], str)


async def test_parallel_branches_overlap_and_join():
    services = FakeServices(chat_delay=0.2)
    compiled = wf(chat("left"), chat("right"),
                  tpl("join", ["${step:left:content}", "${step:right:content}"]))
    assert not compiled.sequential
    started = time.perf_counter()
    result = await WorkflowExecutor(services).run(compiled, {})
    elapsed = time.perf_counter() - started
    assert result.success and result.output == ["hello", "hello"]
    assert elapsed < 0.35
    left, right = result.steps[0], result.steps[1]
    assert left.started_at < right.finished_at and right.started_at < left.finished_at
    assert result.steps[2].name == "join"
    assert result.steps[2].started_at >= max(left.finished_at, right.finished_at)


async def test_concurrency_is_bounded():
    services = FakeServices(chat_delay=0.1)
    compiled = wf(chat("a"), chat("b"), chat("c"), tpl("j", "${step:a}${step:b}${step:c}"))
    started = time.perf_counter()
    result = await WorkflowExecutor(services, max_concurrency=1).run(compiled, {})
    assert result.success and time.perf_counter() - started >= 0.3


async def test_depends_on_orders_steps_without_references():
    services = FakeServices(chat_delay=0.05)
    compiled = wf(chat("slow"), tpl("after", "done", depends_on=["slow"]), tpl("free", "f"))
    result = await WorkflowExecutor(services).run(compiled, {})
    order = [s.name for s in result.steps]
    assert order.index("after") > order.index("slow")
    assert order.index("free") < order.index("slow")


async def test_retry_until_success_with_backoff():
    services = FakeServices()
    services.failures_left = 2
    compiled = wf(chat("c", retry={"max_attempts": 3, "backoff_ms": 20}))
    started = time.perf_counter()
    result = await WorkflowExecutor(services).run(compiled, {})
    assert result.success and result.steps[0].attempts == 3
    assert time.perf_counter() - started >= 0.06  # 20 + 40 ms


async def test_retries_exhausted_fail_the_workflow():
    services = FakeServices()
    services.failures_left = 5
    compiled = wf(chat("c", retry={"max_attempts": 2}), tpl("never"))
    result = await WorkflowExecutor(services).run(compiled, {})
    assert not result.success and result.output is None
    assert result.error == "step 'c' failed: RuntimeError: upstream flaked"
    assert [s.name for s in result.steps] == ["c"] and result.steps[0].attempts == 2


async def test_timeout_per_attempt():
    services = FakeServices(chat_delay=0.5)
    compiled = wf(chat("c", timeout_ms=50, retry={"max_attempts": 2}))
    started = time.perf_counter()
    result = await WorkflowExecutor(services).run(compiled, {})
    assert time.perf_counter() - started < 0.3
    assert not result.success and result.steps[0].error == "timed out after 50 ms"
    assert result.steps[0].attempts == 2


async def test_on_error_skip_step():
    services = FakeServices()
    services.failures_left = 1
    compiled = wf(chat("c", on_error="skip_step"), tpl("t", "${step:c:content}"))
    result = await WorkflowExecutor(services).run(compiled, {})
    assert result.success
    skipped = result.steps[0]
    assert skipped.skipped and not skipped.success and "flaked" in skipped.error
    assert result.output is None and result.steps[1].warnings


async def test_on_error_fallback_value():
    services = FakeServices()
    services.failures_left = 1
    compiled = wf(chat("c", on_error="fallback_value", fallback_value={"content": "sorry"}),
                  tpl("t", "${step:c:content}"))
    result = await WorkflowExecutor(services).run(compiled, {})
    assert result.success and result.output == "sorry"
    assert not result.steps[0].success and result.steps[0].output == {"content": "sorry"}


async def test_failure_cancels_running_branches():
    services = FakeServices(chat_delay=1.0)
    compiled = wf(chat("slow"), tpl("bad", "{{ 1/0 }}", format="jinja2"),
                  tpl("j", "${step:slow}${step:bad}"))
    started = time.perf_counter()
    result = await WorkflowExecutor(services).run(compiled, {})
    assert time.perf_counter() - started < 0.5
    assert not result.success and "bad" in result.error


def counter_services():
    calls = {"n": 0}

    def reply(request):
        calls["n"] += 1
        return str(calls["n"])

    return FakeServices(reply=reply), calls


async def test_go_to_step_loop_until_condition():
    services, calls = counter_services()
    compiled = wf(chat("count"),
                  {"type": "conditional", "name": "check", "conditions": [
                      {"field": "${step:count:content}", "operator": "lt", "value": 3,
                       "action": {"go_to_step": "count", "max_iterations": 10}}]},
                  tpl("done", "final ${step:count:content}"))
    result = await WorkflowExecutor(services).run(compiled, {})
    assert result.success and result.output == "final 3" and calls["n"] == 3
    assert [s.name for s in result.steps] == ["count", "check"] * 3 + ["done"]


async def test_go_to_step_loop_stops_at_bound():
    services, calls = counter_services()
    compiled = wf(chat("count"),
                  {"type": "conditional", "name": "check", "conditions": [],
                   "default_action": {"go_to_step": "count", "max_iterations": 2}},
                  tpl("done", "${step:count:content}"))
    result = await WorkflowExecutor(services).run(compiled, {})
    assert result.success and calls["n"] == 3 and result.output == "3"
    assert "max_iterations 2" in result.steps[-2].warnings[0]


async def test_go_to_step_forward_skips_steps():
    compiled = wf({"type": "conditional", "name": "c", "conditions": [],
                   "default_action": {"go_to_step": "last"}},
                  tpl("middle", "m"), tpl("last", "l"))
    result = await WorkflowExecutor().run(compiled, {})
    assert [(s.name, s.skipped) for s in result.steps] == [
        ("c", False), ("middle", True), ("last", False)]
    assert result.output == "l"


async def test_end_workflow_stops_with_output():
    services = FakeServices(documents=[])
    compiled = wf({"type": "knowledge_base_search", "name": "search", "knowledge_base_id": "kb",
                   "query": "${request:q}"},
                  {"type": "conditional", "name": "empty", "conditions": [
                      {"field": "${step:search:documents}", "operator": "is_empty",
                       "action": {"end_workflow": {"answer": "No documents for ${request:q}",
                                                   "count": "${step:search:count}"}}}]},
                  chat("answer", "${step:search:documents.0.content}"))
    result = await WorkflowExecutor(services).run(compiled, {"q": "x"})
    assert result.success and result.output == {"answer": "No documents for x", "count": 0}
    assert [s.name for s in result.steps] == ["search", "empty"] and not services.chat_requests


async def test_rag_workflow_end_to_end():
    services = FakeServices(documents=[doc("Water boils at 100 C.", 0.9)], reply="100 C")
    compiled = wf({"type": "knowledge_base_search", "name": "search", "knowledge_base_id": "kb",
                   "query": "${request:q}"},
                  {"type": "conditional", "name": "empty", "conditions": [
                      {"field": "${step:search:count}", "operator": "eq", "value": 0,
                       "action": {"end_workflow": "nothing"}}]},
                  {"type": "crag_scoring", "name": "crag", "query": "${request:q}",
                   "strategy": "threshold"},
                  chat("answer", "Context: ${step:crag:correct_documents}\nQ: ${request:q}"),
                  output={"answer": "${step:answer:content}",
                          "sources": "${step:crag:summary.correct}"})
    result = await WorkflowExecutor(services).run(compiled, {"q": "boiling?"})
    assert result.success and result.output == {"answer": "100 C", "sources": 1}
    assert "Water boils" in services.chat_requests[0].messages[0].content


async def test_events_in_order_with_deltas():
    recorder = Recorder()
    compiled = wf(tpl("a", "1"), chat("b"))
    result = await WorkflowExecutor(FakeServices(reply="tok")).run(compiled, {"x": 1},
                                                                   on_event=recorder)
    assert recorder.names() == [
        ("run_started", None), ("step_started", "a"), ("step_finished", "a"),
        ("step_started", "b"), ("step_output_delta", "b"), ("step_finished", "b"),
        ("run_finished", None)]
    assert [e["seq"] for e in recorder.events] == list(range(1, 8))
    assert all(e["run_id"] == result.run_id for e in recorder.events)
    assert recorder.events[0]["data"] == {"workflow_id": "wf-1", "input": {"x": 1}}
    assert recorder.events[4]["data"]["delta"] == "tok"
    finished = recorder.events[-1]["data"]
    assert finished["success"] and finished["output"]["content"] == "tok"
    assert finished["tokens"] == 5


async def test_failing_event_callback_does_not_break_the_run():
    async def broken(event):
        raise RuntimeError("client gone")

    result = await WorkflowExecutor().run(wf(tpl("a")), {}, on_event=broken)
    assert result.success


async def test_invalid_input_raises_before_running():
    recorder = Recorder()
    compiled = wf(tpl("a"), input_schema={"type": "object", "required": ["q"]})
    with pytest.raises(InvalidRequest) as caught:
        await WorkflowExecutor().run(compiled, {}, on_event=recorder)
    assert caught.value.param == "q" and recorder.events == []


async def test_runs_are_independent_when_concurrent():
    compiled = wf(tpl("a", "${request:x}"))
    executor = WorkflowExecutor()
    results = await asyncio.gather(*(executor.run(compiled, {"x": i}) for i in range(20)))
    assert [r.output for r in results] == list(range(20))
