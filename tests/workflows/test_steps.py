import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from engine.workflows import WorkflowExecutor, load_workflow
from tests.workflows.fakes import FakeServices, doc


def wf(*steps, **extra):
    return load_workflow({"id": "wf-1", "steps": list(steps), **extra})


async def run(workflow, inputs=None, services=None, **options):
    return await WorkflowExecutor(services or FakeServices(), **options).run(workflow, inputs or {})


# template

async def test_template_references_shape_a_value():
    result = await run(wf({"type": "template", "name": "t",
                           "template": {"q": "${request:q}", "n": "${request:n:1}",
                                        "text": "Q: ${request:q}"}}), {"q": "why"})
    assert result.success and result.output == {"q": "why", "n": 1, "text": "Q: why"}


async def test_template_jinja2_sandboxed_and_json():
    step = {"type": "template", "name": "t", "format": "jinja2",
            "template": '{"items": [{% for t in request.tags %}"{{ t|upper }}"'
                        '{% if not loop.last %},{% endif %}{% endfor %}]}', "parse_json": True}
    result = await run(wf(step), {"tags": ["a", "b"]})
    assert result.output == {"items": ["A", "B"]}
    evil = {"type": "template", "name": "t", "format": "jinja2",
            "template": "{{ request.__class__.__mro__ }}"}
    result = await run(wf(evil), {})
    assert not result.success
    assert "sandbox" in result.error or "template" in result.error


async def test_template_jinja2_sees_step_outputs():
    steps = [{"type": "template", "name": "a", "template": {"x": 2}},
             {"type": "template", "name": "b", "format": "jinja2",
              "template": "{{ steps.a.x * 3 }}"}]
    assert (await run(wf(*steps))).output == "6"


# conditional: every operator

@pytest.mark.parametrize(("operator", "left", "value", "expected"), [
    ("eq", 3, 3, True), ("eq", "3", 3, True), ("eq", "a", "b", False),
    ("ne", "a", "b", True), ("ne", 1, 1, False),
    ("gt", 5, 3, True), ("gt", 3, 3, False), ("gt", "10", 9, True),
    ("gte", 3, 3, True), ("gte", 2, 3, False),
    ("lt", 1, 2, True), ("lt", 2, 2, False), ("lt", "abc", "abd", True),
    ("lte", 2, 2, True), ("lte", 3, 2, False), ("lt", "x", 2, False),
    ("is_empty", [], None, True), ("is_empty", "  ", None, True), ("is_empty", None, None, True),
    ("is_empty", [1], None, False), ("is_empty", 0, None, False),
    ("is_not_empty", {"a": 1}, None, True), ("is_not_empty", "", None, False),
    ("contains", "hello world", "lo w", True), ("contains", ["a", "b"], "b", True),
    ("contains", "hello", "z", False), ("contains", {"k": 1}, "k", True),
    ("starts_with", "hello", "he", True), ("starts_with", "hello", "lo", False),
    ("ends_with", "hello", "lo", True), ("ends_with", "hello", "he", False),
])
async def test_conditional_operators(operator, left, value, expected):
    step = {"type": "conditional", "name": "c", "conditions": [
        {"field": "${request:left}", "operator": operator, "value": value,
         "action": {"end_workflow": "matched"}}], "default_action": {"end_workflow": "default"}}
    result = await run(wf(step), {"left": left})
    assert result.output == ("matched" if expected else "default")


async def test_conditional_value_may_be_reference_and_first_match_wins():
    step = {"type": "conditional", "name": "c", "conditions": [
        {"field": "${request:a}", "operator": "eq", "value": "${request:b}",
         "action": {"end_workflow": "first"}},
        {"field": "${request:a}", "operator": "eq", "value": "${request:b}",
         "action": {"end_workflow": "second"}}]}
    assert (await run(wf(step), {"a": 1, "b": 1})).output == "first"
    result = await run(wf(step), {"a": 1, "b": 2})
    assert result.steps[0].output == {"matched": None, "action": "continue"}


# chat_completion

async def test_chat_step_messages_usage_and_cost():
    services = FakeServices(reply="the answer")
    step = {"type": "chat_completion", "name": "answer", "model_id": "gpt-x",
            "system_message": "Be brief.", "user_message": "Q: ${request:q}; ctx ${request:ctx}",
            "temperature": 0, "max_tokens": 50, "top_p": 1}
    result = await run(wf(step), {"q": "why?", "ctx": ["a"]}, services)
    assert result.success
    request = services.chat_requests[0]
    assert request.model == "gpt-x" and request.temperature == 0 and request.max_tokens == 50
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[1].content == 'Q: why?; ctx ["a"]'
    output = result.output
    assert output["content"] == "the answer" and output["json"] is None
    assert output["model"] == "gpt-x" and output["usage"]["total_tokens"] == 5
    assert result.steps[0].tokens == 5 and result.steps[0].cost == pytest.approx(0.001)


async def test_chat_step_prompt_id_and_structured_output():
    services = FakeServices(reply='{"label": "spam"}')
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    step = {"type": "chat_completion", "name": "c", "model_id": "m", "prompt_id": "classify",
            "prompt_variables": {"text": "${request:text}"}, "response_format": schema}
    result = await run(wf(step), {"text": "buy now"}, services)
    assert result.output["json"] == {"label": "spam"}
    request = services.chat_requests[0]
    assert request.messages[0].prompt_id == "classify"
    assert request.messages[0].variables == {"text": "buy now"}
    assert request.response_format.type == "json_schema"
    assert request.response_format.json_schema.schema_ == schema


async def test_chat_step_invalid_structured_output_fails():
    services = FakeServices(reply="not json")
    step = {"type": "chat_completion", "name": "c", "model_id": "m", "user_message": "x",
            "response_format": {"type": "json_object"}}
    result = await run(wf(step), {}, services)
    assert not result.success and "not valid JSON" in result.error


async def test_steps_needing_services_without_services_fail_clearly():
    step = {"type": "chat_completion", "name": "c", "model_id": "m", "user_message": "x"}
    result = await WorkflowExecutor(None).run(wf(step), {})
    assert not result.success and "StepServices" in result.error


# knowledge_base_search

async def test_search_step_builds_request_and_outputs_documents():
    services = FakeServices(documents=[doc("a", 0.9, 0), doc("b", 0.8, 1), doc("c", 0.7, 2)])
    step = {"type": "knowledge_base_search", "name": "s", "knowledge_base_id": "${request:kb}",
            "query": "${request:q}", "top_k": "${request:k:2}", "similarity_threshold": 0.5,
            "filter": {"field": "year", "operator": "gte", "value": "${request:year}"},
            "hybrid": True}
    result = await run(wf(step), {"kb": "docs", "q": "hello", "year": 2020}, services)
    assert result.success
    kb_id, request = services.search_requests[0]
    assert kb_id == "docs" and request.query == "hello" and request.top_k == 2
    assert request.hybrid and request.similarity_threshold == 0.5
    assert request.filter == {"field": "year", "operator": "gte", "value": 2020}
    assert result.output["count"] == 2
    assert result.output["documents"][0]["content"] == "a"


# crag_scoring

PAIRS = json.loads((Path(__file__).parent / "data" / "crag_pairs.json").read_text())


@pytest.mark.parametrize("strategy", ["threshold", "llm", "hybrid"])
async def test_crag_labelled_set(strategy):
    documents = [doc(p["content"], p["score"], i) for i, p in enumerate(PAIRS["pairs"])]
    services = FakeServices(documents=documents,
                            judge={p["content"]: p["judge"] for p in PAIRS["pairs"]})
    steps = [{"type": "knowledge_base_search", "name": "search", "knowledge_base_id": "kb",
              "query": "${request:q}"},
             {"type": "crag_scoring", "name": "crag", "query": "${request:q}",
              "strategy": strategy, "model_id": "judge", **PAIRS["thresholds"]}]
    result = await run(wf(*steps), {"q": PAIRS["query"]}, services)
    assert result.success, result.error
    got = {}
    for group in ("correct", "ambiguous", "incorrect"):
        for d in result.output[f"{group}_documents"]:
            assert d["classification"] == group and "reason" in d and "score" in d
            got[d["content"]] = group
    assert got == {p["content"]: p["expected"][strategy] for p in PAIRS["pairs"]}
    judged = len(services.chat_requests)
    in_band = sum(1 for p in PAIRS["pairs"] if 0.4 <= p["score"] < 0.7)
    assert judged == {"threshold": 0, "llm": len(documents), "hybrid": in_band}[strategy]
    summary = result.output["summary"]
    assert summary["total"] == 8
    assert summary["correct"] + summary["ambiguous"] + summary["incorrect"] == 8
    assert summary["correct_percentage"] == pytest.approx(100 * summary["correct"] / 8, abs=0.01)
    assert result.output["needs_correction"] is False
    assert result.steps[1].tokens == 5 * judged


async def test_crag_judges_concurrently():
    documents = [doc(f"d{i}", 0.5, i) for i in range(6)]
    services = FakeServices(documents=documents, chat_delay=0.1)
    steps = [{"type": "crag_scoring", "name": "crag", "query": "q", "strategy": "llm",
              "model_id": "j", "input_documents": "${request:docs}"}]
    result = await run(wf(*steps), {"docs": documents}, services)
    assert result.success and result.steps[0].execution_time_ms < 400


async def test_crag_no_documents_suggests_web_search_and_refines():
    steps = [{"type": "crag_scoring", "name": "crag", "query": "boiling water",
              "strategy": "threshold", "threshold": 0.5, "refine": True,
              "input_documents": "${request:docs}"}]
    empty = await run(wf(*steps), {"docs": []})
    assert empty.output["needs_correction"] and empty.output["should_try_web_search"]
    assert empty.output["summary"]["correct_percentage"] == 0.0
    docs = [doc("Water boils at 100 C. Paris is a city. Boiling needs heat.", 0.9),
            doc("Unrelated.", 0.2)]
    result = await run(wf(*steps), {"docs": docs})
    correct = result.output["correct_documents"]
    assert correct[0]["refined_content"] == "Water boils at 100 C. Boiling needs heat."
    assert result.output["incorrect_documents"][0]["content"] == "Unrelated."
    assert not result.output["needs_correction"]


# http_request

@pytest.fixture
async def server():
    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        return web.json_response({"method": request.method, "path": request.path,
                                  "query": dict(request.query), "body": body,
                                  "auth": request.headers.get("Authorization")})

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/fail", fail)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


async def test_http_step_templated_request(server):
    step = {"type": "http_request", "name": "h", "method": "POST",
            "url": str(server.make_url("/echo")) + "?q=${request:q}",
            "headers": {"Authorization": "Bearer ${request:token}"},
            "body": {"question": "${request:q}"}}
    result = await run(wf(step), {"q": "hi", "token": "t0k"}, allow_private_http=True)
    assert result.success, result.error
    out = result.output
    assert out["status"] == 200 and out["headers"]["Content-Type"].startswith("application/json")
    assert out["json"]["method"] == "POST" and out["json"]["query"] == {"q": "hi"}
    assert json.loads(out["json"]["body"]) == {"question": "hi"}
    assert out["json"]["auth"] == "Bearer t0k" and json.loads(out["body"]) == out["json"]


async def test_http_step_error_status(server):
    step = {"type": "http_request", "name": "h", "url": str(server.make_url("/fail"))}
    result = await run(wf(step), {}, allow_private_http=True)
    assert not result.success and "503" in result.error
    step["fail_on_error_status"] = False
    result = await run(wf(step), {}, allow_private_http=True)
    assert result.output["status"] == 503 and result.output["body"] == "down"
    assert result.output["json"] is None


async def test_http_step_refuses_internal_addresses(server):
    for url in (str(server.make_url("/echo")), f"http://localhost:{server.port}/echo",
                "ftp://example.com/x"):
        result = await run(wf({"type": "http_request", "name": "h", "url": url}), {})
        assert not result.success
        assert "internal address" in result.error or "http(s)" in result.error
