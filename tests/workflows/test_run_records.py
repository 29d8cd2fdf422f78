"""What a run records (issue #8): each step's resolved input (bounded, secrets redacted),
the run's input, and each step's and the run's cost, synchronous and streamed, in the
events and in the stored run record."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.workflows import WorkflowExecutor, load_workflow
from engine.workflows.trace import (
    MAX_STRING_CHARS,
    REDACTED,
    bounded,
    redact_headers,
    redact_keys,
    redact_url,
)
from tests.gateway.conftest import create, mock, model_spec, upstream_keys  # noqa: F401
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401
from tests.workflows.fakes import FakeServices, doc
from tests.workflows.test_steps import server  # noqa: F401
from tests.workflows.test_workflow_api import parse_events

PRICING = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}


def wf(*steps, **extra):
    return load_workflow({"id": "wf-1", "steps": list(steps), **extra})


class Recorder:
    def __init__(self):
        self.events = []

    async def __call__(self, event):
        self.events.append(event)

    def finished(self, step):
        return next(e["data"] for e in self.events
                    if e["event"] == "step_finished" and e["data"]["step"] == step)


async def run(steps, inputs=None, services=None, **options):
    recorder = Recorder()
    result = await WorkflowExecutor(services or FakeServices(), **options).run(
        wf(*steps), inputs or {}, on_event=recorder)
    return result, recorder


# --- the input each step type records ------------------------------------------------

async def test_chat_step_records_the_request_it_sent():
    step = {"type": "chat_completion", "name": "ask", "model_id": "gpt-x",
            "system_message": "Be brief.", "user_message": "Q: ${request:q}; ctx ${request:ctx}",
            "temperature": 0, "max_tokens": 50}
    result, events = await run([step], {"q": "why?", "ctx": ["a"]})
    expected = {"model": "gpt-x", "temperature": 0, "max_tokens": 50,
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": 'Q: why?; ctx ["a"]'}]}
    assert result.steps[0].input == expected
    assert result.to_dict()["steps"][0]["input"] == expected
    assert events.finished("ask")["input"] == expected  # in step_finished
    started = next(e for e in events.events if e["event"] == "step_started")
    assert "input" not in started["data"]


async def test_chat_step_with_a_prompt_records_its_resolved_variables():
    step = {"type": "chat_completion", "name": "c", "model_id": "m", "prompt_id": "classify",
            "prompt_variables": {"text": "${request:text}"},
            "response_format": {"type": "json_object"}}
    services = FakeServices(reply='{"label": "spam"}')
    result, _ = await run([step], {"text": "buy now"}, services)
    assert result.steps[0].input == {
        "model": "m", "response_format": {"type": "json_object"},
        "messages": [{"role": "user", "prompt_id": "classify",
                      "variables": {"text": "buy now"}}]}


async def test_search_step_records_kb_query_top_k_and_filters():
    services = FakeServices(documents=[doc("a", 0.9, 0), doc("b", 0.8, 1)])
    step = {"type": "knowledge_base_search", "name": "s", "knowledge_base_id": "${request:kb}",
            "query": "${request:q}", "top_k": "${request:k:2}", "similarity_threshold": 0.5,
            "filter": {"field": "year", "operator": "gte", "value": "${request:year}"}}
    result, events = await run([step], {"kb": "docs", "q": "hello", "year": 2020}, services)
    expected = {"knowledge_base_id": "docs", "query": "hello", "top_k": 2,
                "similarity_threshold": 0.5, "hybrid": False,
                "filter": {"field": "year", "operator": "gte", "value": 2020}}
    assert result.steps[0].input == expected and events.finished("s")["input"] == expected


async def test_http_step_records_the_request_with_secrets_redacted(server):  # noqa: F811
    step = {"type": "http_request", "name": "h", "method": "POST",
            "url": str(server.make_url("/echo")) + "?q=${request:q}&api_key=${request:token}",
            "headers": {"Authorization": "Bearer ${request:token}", "X-Api-Key": "k-123",
                        "X-Forward": "Bearer ${request:token}", "Accept": "application/json"},
            "body": {"question": "${request:q}", "password": "${request:token}"}}
    result, events = await run([step], {"q": "hi", "token": "t0k-secret"},
                               allow_private_http=True)
    assert result.success, result.error
    assert result.output["json"]["auth"] == "Bearer t0k-secret"  # sent as given
    recorded = result.steps[0].input
    assert recorded["method"] == "POST"
    assert recorded["url"] == (str(server.make_url("/echo")) + f"?q=hi&api_key={REDACTED}")
    assert recorded["headers"] == {"Authorization": REDACTED, "X-Api-Key": REDACTED,
                                   "X-Forward": REDACTED, "Accept": "application/json"}
    assert recorded["body"] == {"question": "hi", "password": REDACTED}
    for where in (recorded, events.finished("h")["input"]):
        assert "t0k-secret" not in json.dumps(where) and "k-123" not in json.dumps(where)


async def test_http_step_refused_still_records_what_it_was_asked():
    step = {"type": "http_request", "name": "h", "url": "http://127.0.0.1:9/x?token=abc",
            "body": {"ignored": True}}
    result, _ = await run([step])
    assert not result.success and "internal address" in result.error
    assert result.steps[0].input == {"method": "GET", "url": f"http://127.0.0.1:9/x?token={REDACTED}",
                                     "headers": {}, "body": None}  # a GET sends no body


def test_what_counts_as_a_secret():
    assert redact_headers({"Authorization": "x", "Proxy-Authorization": "x", "Cookie": "c",
                           "X-Goog-Api-Key": "k", "X-Auth-Token": "t", "X-Custom": "Basic abc",
                           "Accept": "text/plain", "X-Author": "me"}) == {
        "Authorization": REDACTED, "Proxy-Authorization": REDACTED, "Cookie": REDACTED,
        "X-Goog-Api-Key": REDACTED, "X-Auth-Token": REDACTED, "X-Custom": REDACTED,
        "Accept": "text/plain", "X-Author": "me"}
    assert redact_url("https://u:pw@h.example/x?key=1&q=a&access_token=t") == (
        f"https://u:{REDACTED}@h.example/x?key={REDACTED}&q=a&access_token={REDACTED}")
    assert redact_url("https://h.example/x?q=a%20b&author=me") == (
        "https://h.example/x?q=a%20b&author=me")  # untouched: nothing secret
    assert redact_keys({"user": "a", "auth": {"client_secret": "s"}, "items": [{"token": 1}]}) \
        == {"user": "a", "auth": REDACTED, "items": [{"token": REDACTED}]}


async def test_conditional_records_the_conditions_it_evaluated():
    step = {"type": "conditional", "name": "c", "conditions": [
        {"field": "${request:n}", "operator": "gt", "value": "${request:limit}",
         "action": {"end_workflow": "big"}},
        {"field": "${request:word}", "operator": "starts_with", "value": "he",
         "action": {"end_workflow": "he"}},
        {"field": "${request:never}", "operator": "is_empty", "action": "continue"}]}
    result, events = await run([step], {"n": 3, "limit": 5, "word": "hello"})
    assert result.output == "he"
    expected = {"conditions": [
        {"index": 0, "field": "${request:n}", "field_value": 3, "operator": "gt", "value": 5,
         "matched": False},
        {"index": 1, "field": "${request:word}", "field_value": "hello",
         "operator": "starts_with", "value": "he", "matched": True}]}
    assert result.steps[0].input == expected and events.finished("c")["input"] == expected


async def test_crag_records_what_it_scored():
    documents = [doc("Water boils at 100 C.", 0.9, 0), doc("Unrelated.", 0.5, 1)]
    steps = [{"type": "crag_scoring", "name": "crag", "query": "${request:q}",
              "strategy": "hybrid", "model_id": "judge", "input_documents": "${request:docs}"}]
    services = FakeServices(judge={"Unrelated.": 0.1})
    result, _ = await run(steps, {"q": "boiling", "docs": documents}, services)
    assert result.success, result.error
    assert result.steps[0].input == {"query": "boiling", "strategy": "hybrid",
                                     "correct_threshold": 0.7, "ambiguous_threshold": 0.4,
                                     "model_id": "judge", "documents": documents}
    assert "classification" not in result.steps[0].input["documents"][0]  # as received
    threshold = [{**steps[0], "strategy": "threshold"}]
    threshold[0].pop("model_id")
    result, _ = await run(threshold, {"q": "boiling", "docs": "not a list"})
    assert not result.success  # recorded before the check that failed
    assert result.steps[0].input["documents"] == "not a list"
    assert "model_id" not in result.steps[0].input


async def test_template_records_its_resolved_references_and_jinja_variables():
    steps = [{"type": "template", "name": "a", "template": {"x": 2}},
             {"type": "template", "name": "shape",
              "template": {"q": "${request:q}", "tone": "${request:tone:plain}",
               "text": "Q: ${request:q} (${step:a:x})", "gone": "${request:missing}"}},
             {"type": "template", "name": "j", "format": "jinja2", "parse_json": True,
              "depends_on": ["a"],
              "template": '{"n": {{ steps.a.x * 3 }}, "q": "{{ request.q }}"}'}]
    result, events = await run(steps, {"q": "why"})
    assert result.success, result.error
    inputs = {s.name: s.input for s in result.steps}
    shape = inputs["shape"]
    assert shape == {"format": "references", "references": {
        "${request:q}": "why", "${request:tone:plain}": "plain", "${step:a:x}": 2,
        "${request:missing}": None}}
    assert events.finished("shape")["input"] == shape
    assert inputs["j"] == {"format": "jinja2", "request": {"q": "why"}, "steps": {"a": {"x": 2}},
                           "rendered": '{"n": 6, "q": "why"}'}
    # A constant template resolves nothing.
    assert inputs["a"] == {"format": "references", "references": {}}


async def test_run_records_its_input_and_big_values_are_bounded():
    big = "x" * (MAX_STRING_CHARS + 500)
    steps = [{"type": "template", "name": "t", "template": "${request:text}"},
             {"type": "chat_completion", "name": "ask", "model_id": "m",
              "user_message": "${request:text}"}]
    result, _ = await run(steps, {"text": big, "n": 1})
    record = result.to_dict()
    assert record["input"]["n"] == 1
    assert record["input"]["text"] == "x" * MAX_STRING_CHARS + "…[500 more characters]"
    assert record["steps"][0]["input"]["references"]["${request:text}"] == record["input"]["text"]
    assert record["steps"][1]["input"]["messages"][0]["content"].endswith("[500 more characters]")
    assert result.output["content"] == "hello"  # the step itself got the whole text
    assert len(json.dumps(bounded({"docs": [{"text": big} for _ in range(200)]}))) < 70_000
    many = [f"item {i:04}" for i in range(1500)]  # more than 4,000 characters of JSON
    assert bounded(many)[-2:] == ["item 0099", "…[1400 more items]"]
    small = {"a": [1, 2, 3]}
    assert bounded(small) is small  # small values are kept as they are (no copy)
    assert bounded({"when": object, 1: "x"}) == {"when": str(object), "1": "x"}  # not JSON


async def test_a_step_jumped_over_has_no_input():
    steps = [{"type": "conditional", "name": "c", "conditions": [],
              "default_action": {"go_to_step": "z"}},
             {"type": "template", "name": "y", "template": "${request:a}"},
             {"type": "template", "name": "z", "template": "done"}]
    result, _ = await run(steps, {"a": 1})
    assert [(s.name, s.skipped, s.input) for s in result.steps][1] == ("y", True, None)
    assert result.steps[0].input == {"conditions": []}


# --- cost and inputs through the gateway -----------------------------------------------

def priced_flow(model: str) -> dict:
    return {
        "id": "priced",
        "steps": [
            # Structured output: the step calls GovernedServices.chat (no stream).
            {"name": "classify", "type": "chat_completion", "model_id": model,
             "user_message": "Classify ${request:question}",
             "response_format": {"type": "json_object"}},
            # Plain text: streamed through GovernedServices.chat_stream.
            {"name": "ask", "type": "chat_completion", "model_id": model,
             "system_message": "Be brief.", "user_message": "${request:question}"},
        ],
    }


def expected_cost(step: dict) -> float:
    usage = step["output"]["usage"]
    return (usage["prompt_tokens"] * PRICING["input_cost_per_token"]
            + usage["completion_tokens"] * PRICING["output_cost_per_token"])


def check_costs(steps: list[dict], run_cost: float) -> None:
    assert [s["name"] for s in steps] == ["classify", "ask"]
    for step in steps:
        assert step["output"]["usage"]["completion_tokens"] > 0
        assert step["cost"] == pytest.approx(expected_cost(step)) and step["cost"] > 0
    assert run_cost == pytest.approx(sum(s["cost"] for s in steps))


async def stored_run(client, run_id: str) -> dict:
    for _ in range(100):  # a streamed run is recorded just after its last event
        response = await client.get(f"/admin/workflow-runs/{run_id}")
        if response.status_code == 200:
            return await response.get_json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} was not recorded")


async def test_step_and_run_cost_sync_and_stored(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url, pricing=PRICING))
    await create(client, "/admin/workflows", priced_flow("m1"))
    ran = await client.post("/v1/workflows/priced/execute", json={"question": "why"})
    body = await ran.get_json()
    assert body["success"] is True, body
    check_costs(body["steps"], body["cost"])
    assert body["input"] == {"question": "why"}
    assert body["steps"][1]["input"] == {
        "model": "m1", "messages": [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "why"}]}

    stored = await stored_run(client, body["run_id"])
    check_costs(stored["steps"], stored["cost"])
    assert stored["input"] == {"question": "why"}
    assert [s["input"] for s in stored["steps"]] == [s["input"] for s in body["steps"]]
    assert stored["steps"][0]["input"]["response_format"] == {"type": "json_object"}


async def test_step_and_run_cost_streamed_and_stored(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url, pricing=PRICING))
    await create(client, "/admin/workflows", priced_flow("m1"))
    response = await client.post("/v1/workflows/priced/execute?stream=true",
                                 json={"question": "stream it"})
    events = parse_events(await response.get_data())
    assert any(e["event"] == "step_output_delta" for e in events)  # `ask` really streamed
    finished = [e["data"] for e in events if e["event"] == "step_finished"]
    steps = [{"name": f["step"], "output": f["output"], "cost": f["cost"]} for f in finished]
    run_finished = events[-1]["data"]
    check_costs(steps, run_finished["cost"])
    assert finished[1]["input"]["messages"][1] == {"role": "user", "content": "stream it"}
    assert events[0]["data"]["input"] == {"question": "stream it"}

    stored = await stored_run(client, events[0]["run_id"])
    check_costs(stored["steps"], stored["cost"])
    assert stored["steps"][1]["input"] == finished[1]["input"]
    assert stored["input"] == {"question": "stream it"}


async def test_a_model_without_pricing_leaves_cost_unknown(client, mock):  # noqa: F811
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/workflows", priced_flow("m1"))
    body = await (await client.post("/v1/workflows/priced/execute",
                                    json={"question": "why"})).get_json()
    assert body["success"] is True, body
    assert [s["cost"] for s in body["steps"]] == [None, None] and body["cost"] is None
    assert all(s["tokens"] > 0 for s in body["steps"])


async def test_runs_recorded_before_inputs_still_load(app, client):
    from engine.store.tables import WorkflowRunRow
    from engine.store.types import utcnow

    old = {"run_id": "run_old", "workflow_id": "greet", "success": True, "output": "hi",
           "error": None, "started_at": "2024-01-01T00:00:00+00:00",
           "finished_at": "2024-01-01T00:00:01+00:00", "execution_time_ms": 1000.0,
           "tokens": 0, "cost": None, "warnings": [],
           "steps": [{"name": "hello", "type": "template", "success": True, "skipped": False,
                      "output": "hi", "error": None, "started_at": "2024-01-01T00:00:00+00:00",
                      "finished_at": "2024-01-01T00:00:01+00:00", "execution_time_ms": 1.0,
                      "tokens": 0, "cost": None, "attempts": 1, "warnings": []}]}
    workflows = app.app.extensions["headrace"].workflows
    async with workflows.db.transaction() as session:
        session.add(WorkflowRunRow(id="run_old", workflow_id="greet", workflow_version=1,
                                   key_id=None, success=True, execution_time_ms=1000.0,
                                   record=old, created_at=utcnow()))
    response = await client.get("/admin/workflow-runs/run_old")
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["input"] is None and body["steps"][0]["input"] is None
    assert body["steps"][0]["output"] == "hi" and body["workflow_version"] == 1
    listed = await (await client.get("/admin/workflow-runs")).get_json()
    assert [r["id"] for r in listed["data"]] == ["run_old"]
