"""`/v1/responses` (OpenAI Responses API) and `/v1/messages` (Anthropic Messages API)
through the app against the mock upstream, then through the official SDKs
against a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from anthropic.types import Message
from openai.types.responses import Response as OpenAIResponse

from tests.gateway.conftest import create, model_spec
from tests.support.live import AUTH, TEST_ADMIN_KEY, LiveServer, live_server
from tests.support.mock_upstream import MockUpstream

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """`event:` / `data:` blocks; the event name must match the data's type."""
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert data["type"] == lines["event"], block
        events.append((lines["event"], data))
    return events


@pytest.fixture
async def m1(client, mock) -> MockUpstream:
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    return mock


# --- /v1/responses ---------------------------------------------------------------------------


async def test_response_from_string_input(client, m1):
    response = await client.post("/v1/responses", json={
        "model": "m1", "input": "hello there", "instructions": "Be brief.",
        "max_output_tokens": 50, "temperature": 0.2, "store": True, "metadata": {"k": "v"}})
    body = await response.get_json()
    assert response.status_code == 200, body
    OpenAIResponse.model_validate(body)  # every field the official SDK requires
    assert body["id"].startswith("resp_") and body["object"] == "response"
    assert body["status"] == "completed" and body["model"] == "m1"
    [item] = body["output"]
    assert item["type"] == "message" and item["id"].startswith("msg_")
    assert item["content"][0]["type"] == "output_text"
    assert "hello there" in item["content"][0]["text"]
    usage = body["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert body["instructions"] == "Be brief." and body["metadata"] == {"k": "v"}
    assert body["temperature"] == 0.2 and body["error"] is None
    assert response.headers["x-headrace-deployment"] == "m1"
    assert response.headers["x-headrace-attempts"] == "1"
    sent = m1.requests()[0]["json"]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hello there"}]
    assert sent["max_tokens"] == 50 and "store" not in sent


async def test_response_input_items_become_chat_history(client, m1):
    response = await client.post("/v1/responses", json={"model": "m1", "input": [
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "calling", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"a\":1}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"}],
        "tools": [{"type": "function", "name": "f", "parameters": WEATHER}]})
    assert response.status_code == 200, await response.get_json()
    sent = m1.requests()[0]["json"]["messages"]
    assert sent[0] == {"role": "developer", "content": "rules"}
    assert sent[1]["content"][1] == {"type": "image_url",
                                     "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert sent[2]["content"] == "calling"
    assert [c["id"] for c in sent[2]["tool_calls"]] == ["c1", "c2"]
    assert sent[3:] == [{"role": "tool", "tool_call_id": "c1", "content": "one"},
                        {"role": "tool", "tool_call_id": "c2", "content": "two"}]


async def test_response_function_call(client, m1):
    response = await client.post("/v1/responses", json={
        "model": "m1", "input": "weather? [[mock:tool=get_weather]]",
        "tools": [{"type": "function", "name": "get_weather", "parameters": WEATHER,
                   "strict": False}], "tool_choice": "auto", "parallel_tool_calls": False})
    body = await response.get_json()
    assert response.status_code == 200, body
    OpenAIResponse.model_validate(body)
    [call] = body["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["call_id"] and call["status"] == "completed"
    assert body["tools"][0]["name"] == "get_weather" and body["parallel_tool_calls"] is False
    sent = m1.requests()[0]["json"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["parallel_tool_calls"] is False


async def test_response_json_schema_format(client, m1):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"]}
    response = await client.post("/v1/responses", json={
        "model": "m1", "input": "answer",
        "text": {"format": {"type": "json_schema", "name": "out", "schema": schema,
                            "strict": True}}})
    body = await response.get_json()
    assert response.status_code == 200, body
    assert "answer" in orjson.loads(body["output"][0]["content"][0]["text"])
    assert body["text"]["format"]["name"] == "out"
    assert m1.requests()[0]["json"]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}
    await client.post("/v1/responses", json={
        "model": "m1", "input": "x", "text": {"format": {"type": "json_object"}}})
    assert m1.requests()[1]["json"]["response_format"] == {"type": "json_object"}


async def test_response_stream(client, m1):
    response = await client.post("/v1/responses", json={
        "model": "m1", "input": "stream me some words", "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-headrace-deployment"] == "m1"
    events = sse_events(await response.get_data())
    kinds = [kind for kind, _ in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = "".join(d["delta"] for k, d in events if k == "response.output_text.delta")
    assert "stream me some words" in deltas
    final = events[-1][1]["response"]
    OpenAIResponse.model_validate(final)
    assert final["output"][0]["content"][0]["text"] == deltas
    assert final["usage"]["output_tokens"] > 0


async def test_response_stream_function_call(client, m1):
    response = await client.post("/v1/responses", json={
        "model": "m1", "input": "go [[mock:tool=lookup]] [[mock:tool_args={\"city\":\"Oslo\"}]]",
        "stream": True, "tools": [{"type": "function", "name": "lookup", "parameters": WEATHER}]})
    events = sse_events(await response.get_data())
    kinds = [kind for kind, _ in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(d for k, d in events if k == "response.function_call_arguments.done")
    assert orjson.loads(done["arguments"]) == {"city": "Oslo"} and done["name"] == "lookup"
    final = events[-1][1]
    assert final["type"] == "response.completed"
    assert final["response"]["output"][0]["type"] == "function_call"


async def test_response_stream_broken_ends_failed(client, m1):
    m1.script([{"break_after": 2, "reply": "one two three four five"}])
    response = await client.post("/v1/responses", json={
        "model": "m1", "input": "hi", "stream": True})
    events = sse_events(await response.get_data())
    assert [k for k, _ in events][-2:] == ["error", "response.failed"]
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"


@pytest.mark.parametrize(("extra", "param"), [
    ({"frequency_penalty": 1}, "frequency_penalty"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "input[0].message.content[0].input_text.text"),
    ({"tool_choice": "required"}, None),
])
async def test_response_validation(client, m1, extra, param):
    response = await client.post("/v1/responses", json={"model": "m1", "input": "x", **extra})
    error = (await response.get_json())["error"]
    assert response.status_code == 400, error
    assert error["type"] == "invalid_request_error" and error["param"] == param
    if param == "previous_response_id":
        assert "not supported" in error["message"]
    if param == "tools[0].type":
        assert "web_search" in error["message"]
    assert m1.requests() == []


async def test_response_unknown_model_is_404(client):
    response = await client.post("/v1/responses", json={"model": "nope", "input": "x"})
    assert response.status_code == 404
    assert (await response.get_json())["error"]["type"] == "not_found_error"


# --- /v1/messages ----------------------------------------------------------------------------


async def test_message(client, m1):
    response = await client.post("/v1/messages", headers={"anthropic-version": "2023-06-01",
                                                          "x-api-key": "anything"}, json={
        "model": "m1", "max_tokens": 100, "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": "hello there"}],
        "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "temperature": 0.5})
    body = await response.get_json()
    assert response.status_code == 200, body
    Message.model_validate(body)
    assert body["id"].startswith("msg_") and body["type"] == "message"
    assert body["role"] == "assistant" and body["model"] == "m1"
    assert body["content"][0]["type"] == "text" and "hello there" in body["content"][0]["text"]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert response.headers["x-headrace-deployment"] == "m1"
    sent = m1.requests()[0]["json"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["stop"] == ["END"] and sent["user"] == "u1" and sent["max_tokens"] == 100


async def test_message_max_tokens_stop_reason(client, m1):
    response = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 2, "messages": [{"role": "user", "content": "a b c d"}]})
    assert (await response.get_json())["stop_reason"] == "max_tokens"


async def test_message_tool_use_round_trip(client, m1):
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER}]
    response = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 100, "tools": tools, "tool_choice": {"type": "auto"},
        "messages": [{"role": "user", "content": "weather? [[mock:tool=get_weather]]"}]})
    body = await response.get_json()
    assert response.status_code == 200, body
    Message.model_validate(body)
    assert body["stop_reason"] == "tool_use"
    [use] = body["content"]
    assert use["type"] == "tool_use" and use["name"] == "get_weather"
    assert isinstance(use["input"], dict)
    follow = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 100, "tools": tools,
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "text", "text": "checking"}, use]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": use["id"], "content": "sunny"},
                {"type": "text", "text": "thanks"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "AAAA"}}]}]})
    assert follow.status_code == 200, await follow.get_json()
    sent = m1.requests()[-1]["json"]
    messages = sent["messages"]
    assert messages[1]["content"] == "checking"
    assert messages[1]["tool_calls"][0]["id"] == use["id"]
    assert messages[2] == {"role": "tool", "tool_call_id": use["id"], "content": "sunny"}
    assert messages[3]["content"][1]["image_url"]["url"] == "data:image/png;base64,AAAA"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False


async def test_message_stream(client, m1):
    response = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 100, "stream": True,
        "messages": [{"role": "user", "content": "stream me some words"}]})
    assert response.status_code == 200
    assert response.headers["x-headrace-deployment"] == "m1"
    events = sse_events(await response.get_data())
    kinds = [kind for kind, _ in events]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")
    assert "stream me some words" in text
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


async def test_message_stream_tool_use(client, m1):
    response = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 100, "stream": True,
        "tools": [{"name": "lookup", "input_schema": WEATHER}],
        "messages": [{"role": "user", "content": "go [[mock:tool=lookup]]"}]})
    events = sse_events(await response.get_data())
    start = next(d for k, d in events if k == "content_block_start")
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["name"] == "lookup"
    assert any(d["delta"]["type"] == "input_json_delta"
               for k, d in events if k == "content_block_delta")
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_message_stream_broken_ends_with_error_event(client, m1):
    m1.script([{"break_after": 2, "reply": "one two three four five"}])
    response = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 100, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]})
    kind, data = sse_events(await response.get_data())[-1]
    assert kind == "error" and data["error"]["type"] == "api_error"


@pytest.mark.parametrize(("body", "needle"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"max_tokens": 5, "top_k": 5, "messages": [{"role": "user", "content": "x"}]}, "top_k"),
    ({"max_tokens": 5, "thinking": {}, "messages": [{"role": "user", "content": "x"}]},
     "thinking"),
    ({"max_tokens": 5, "tools": [{"type": "web_search_20250305", "name": "web_search"}],
      "messages": [{"role": "user", "content": "x"}]}, "web_search_20250305"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document"}]}]},
     "messages[0].content[0]"),
])
async def test_message_validation_uses_anthropic_errors(client, m1, body, needle):
    response = await client.post("/v1/messages", json={"model": "m1", **body})
    data = await response.get_json()
    assert response.status_code == 400, data
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert needle in data["error"]["message"]
    assert m1.requests() == []


async def test_message_errors_other_statuses(client, m1):
    missing = await client.post("/v1/messages", json={
        "model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 404
    assert (await missing.get_json())["error"]["type"] == "not_found_error"
    media = await client.post("/v1/messages", data="x", headers={"content-type": "text/plain"})
    assert media.status_code == 415 and (await media.get_json())["type"] == "error"
    m1.script([{"status": 429}, {"status": 429}, {"status": 429}, {"status": 429}])
    limited = await client.post("/v1/messages", json={
        "model": "m1", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert limited.status_code == 429
    assert (await limited.get_json())["error"]["type"] == "rate_limit_error"


async def test_message_through_anthropic_upstream(client, mock):
    """An Anthropic client, through Headrace, to an Anthropic upstream."""
    await create(client, "/admin/models", model_spec("claude", "anthropic", mock.url))
    response = await client.post("/v1/messages", json={
        "model": "claude", "max_tokens": 50, "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello there"}]})
    body = await response.get_json()
    assert response.status_code == 200, body
    assert "hello there" in body["content"][0]["text"]
    sent = mock.requests()[0]["json"]
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 50


# --- the official SDKs against a real server ----------------------------------------------------


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    mock = MockUpstream.start_in_thread()
    try:
        with live_server(tmp_path_factory.mktemp("sdk"),
                         env={"HEADRACE_TEST_KEY": "sk-test"}) as server:
            created = httpx.post(f"{server.url}/admin/models", headers=AUTH,
                                 json=model_spec("m1", "openai", mock.url))
            assert created.status_code == 201, created.text
            yield server
    finally:
        mock.stop_in_thread()


@pytest.mark.live
def test_openai_sdk_responses(sdk_server):
    client = openai.OpenAI(base_url=sdk_server.url + "/v1", api_key=TEST_ADMIN_KEY)
    response = client.responses.create(model="m1", input="hi from the sdk")
    assert response.status == "completed"
    assert "hi from the sdk" in response.output_text
    assert response.usage is not None and response.usage.total_tokens > 0
    events = list(client.responses.create(model="m1", input="stream please", stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert "stream please" in events[-1].response.output_text


@pytest.mark.live
def test_openai_sdk_responses_stream_helper_and_tools(sdk_server):
    client = openai.OpenAI(base_url=sdk_server.url + "/v1", api_key=TEST_ADMIN_KEY)
    with client.responses.stream(model="m1", input="helper stream") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert "helper stream" in text and final.output_text == text
    tool = {"type": "function", "name": "lookup", "parameters": WEATHER, "strict": False}
    response = client.responses.create(model="m1", input="x [[mock:tool=lookup]]", tools=[tool])
    assert response.output[0].type == "function_call" and response.output[0].name == "lookup"


@pytest.mark.live
def test_anthropic_sdk_messages(sdk_server):
    client = anthropic.Anthropic(base_url=sdk_server.url, api_key=TEST_ADMIN_KEY)
    message = client.messages.create(model="m1", max_tokens=100,
                                     messages=[{"role": "user", "content": "hi from claude sdk"}])
    assert message.stop_reason == "end_turn"
    assert "hi from claude sdk" in message.content[0].text
    with client.messages.stream(model="m1", max_tokens=100, messages=[
            {"role": "user", "content": "stream from claude sdk"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "stream from claude sdk" in text and final.content[0].text == text
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="m1", max_tokens=5, extra_body={"top_k": 3},
                               messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="nope", max_tokens=5,
                               messages=[{"role": "user", "content": "x"}])


@pytest.mark.live
def test_anthropic_sdk_tool_use_stream(sdk_server):
    client = anthropic.Anthropic(base_url=sdk_server.url, api_key=TEST_ADMIN_KEY)
    tools = [{"name": "lookup", "input_schema": WEATHER}]
    with client.messages.stream(model="m1", max_tokens=100, tools=tools, messages=[
            {"role": "user", "content": 'x [[mock:tool=lookup]] [[mock:tool_args={"city":"Oslo"}]]'}
    ]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Oslo"}
