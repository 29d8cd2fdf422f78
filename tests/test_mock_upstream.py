"""The mock LLM upstream, driven by the vendors' own SDKs so the wire formats are real."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from tests.support.mock_upstream import MockUpstream
from tests.support.mock_upstream.embedding import embed
from tests.support.mock_upstream.eventstream import encode_event, encode_exception
from tests.support.mock_upstream.fixtures import (  # noqa: F401 - fixtures
    mock_upstream,
    threaded_mock_upstream,
)
from tests.support.services import free_port

WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@pytest.fixture
def mock(mock_upstream: MockUpstream) -> MockUpstream:  # noqa: F811
    return mock_upstream


def oai(mock: MockUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="sk-test", max_retries=0)


def claude(mock: MockUpstream) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=mock.url, api_key="sk-ant-test", max_retries=0)


@asynccontextmanager
async def bedrock(mock: MockUpstream) -> AsyncIterator[Any]:
    async with get_session().create_client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=mock.url,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}),
    ) as client:
        yield client


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def dropped_midway(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the body ended before it was complete."""
    while exc is not None:
        if "incomplete" in str(exc).lower() or "payload is not completed" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


# --- OpenAI -------------------------------------------------------------------------------


async def test_openai_chat_non_stream(mock: MockUpstream) -> None:
    result = await oai(mock).chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "system", "content": "be brief"}, *user("hello there world")],
    )
    assert result.choices[0].message.content == "Mock reply to: hello there world"
    assert result.choices[0].finish_reason == "stop"
    assert result.model == "mock-gpt"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 6)
    assert result.usage.total_tokens == 11
    [entry] = mock.requests()
    assert entry["path"] == "/v1/chat/completions"
    assert entry["headers"]["authorization"] == "Bearer sk-test"
    assert entry["json"]["messages"][1]["content"] == "hello there world"
    assert entry["model"] == "mock-gpt" and entry["status"] == 200 and entry["auth"]


async def test_openai_chat_stream_with_usage(mock: MockUpstream) -> None:
    stream = await oai(mock).chat.completions.create(
        model="mock-gpt", messages=user("tell me a story"), stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Mock reply to: tell me a story"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 7  # one per word
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 4 and chunks[-1].usage.completion_tokens == 7
    assert all(c.usage is None for c in chunks[:-1])
    assert mock.requests()[0]["stream"] is True


async def test_openai_tool_call_by_directive_then_text_after_result(mock: MockUpstream) -> None:
    client = oai(mock)
    messages: list[dict[str, Any]] = user("weather in Paris? [[mock:tool=get_weather]]")
    first = await client.chat.completions.create(
        model="mock-gpt", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = await client.chat.completions.create(
        model="mock-gpt", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Mock reply to: weather in Paris?"


async def test_openai_forced_tool_streams_scripted_arguments(mock: MockUpstream) -> None:
    mock.script([{"tool_args": {"city": "Paris", "unit": "celsius"}}])
    stream = await oai(mock).chat.completions.create(
        model="mock-gpt", messages=user("weather?"), tools=[WEATHER_TOOL], stream=True,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    chunks = [c async for c in stream]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather" and calls[0].id
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert len(calls) > 2
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_openai_json_modes(mock: MockUpstream) -> None:
    client = oai(mock)
    plain = await client.chat.completions.create(
        model="mock-gpt", messages=user("give json"), response_format={"type": "json_object"})
    assert json.loads(plain.choices[0].message.content or "") == {
        "reply": "Mock reply to: give json"}
    schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["a", "b"]}}, "required": ["name", "age", "tags", "kind"]}
    shaped = await client.chat.completions.create(
        model="mock-gpt", messages=user("person"),
        response_format={"type": "json_schema",
                         "json_schema": {"name": "person", "schema": schema, "strict": True}})
    value = json.loads(shaped.choices[0].message.content or "")
    assert set(value) == {"name", "age", "tags", "kind"}
    assert isinstance(value["age"], int) and value["kind"] == "a"
    assert isinstance(value["tags"], list) and isinstance(value["name"], str)


async def test_openai_max_tokens_truncates_with_length(mock: MockUpstream) -> None:
    result = await oai(mock).chat.completions.create(
        model="mock-gpt", messages=user("one two three four"), max_tokens=3)
    assert result.choices[0].message.content == "Mock reply to:"
    assert result.choices[0].finish_reason == "length"


async def test_openai_embeddings_float_and_base64(mock: MockUpstream) -> None:
    client = oai(mock)
    floats = await client.embeddings.create(
        model="mock-embedding", input=["alpha beta", "gamma"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    first = floats.data[0].embedding
    assert len(first) == 8
    assert math.isclose(sum(v * v for v in first), 1.0, rel_tol=1e-9)
    assert first != floats.data[1].embedding
    assert floats.usage.prompt_tokens == 3
    assert first == embed("alpha beta", 8)

    again = await client.embeddings.create(
        model="mock-embedding", input="alpha beta", dimensions=16, encoding_format="float")
    assert len(again.data[0].embedding) == 16

    # The SDK asks for base64 by default and decodes it itself.
    decoded = await client.embeddings.create(model="mock-embedding", input="alpha beta")
    assert mock.requests()[-1]["json"]["encoding_format"] == "base64"
    assert decoded.data[0].embedding == pytest.approx(first, abs=1e-6)

    async with httpx.AsyncClient() as http:
        raw = (await http.post(f"{mock.url}/v1/embeddings", json={
            "model": "m", "input": "alpha beta", "encoding_format": "base64"})).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == pytest.approx(first, abs=1e-6)


async def test_openai_models_list(mock: MockUpstream) -> None:
    models = [m.id async for m in oai(mock).models.list()]
    assert "mock-gpt" in models


# --- Azure OpenAI ---------------------------------------------------------------------------


async def test_azure_chat_and_embeddings(mock: MockUpstream) -> None:
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=mock.url, api_version="2024-06-01", api_key="az-key", max_retries=0)
    chat = await client.chat.completions.create(model="my-deploy", messages=user("hi azure"))
    assert chat.choices[0].message.content == "Mock reply to: hi azure"
    stream = await client.chat.completions.create(
        model="my-deploy", messages=user("stream it"), stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert streamed == "Mock reply to: stream it"
    emb = await client.embeddings.create(model="emb-deploy", input="x y z")
    assert len(emb.data[0].embedding) == 8
    entries = mock.requests()
    assert [e["path"] for e in entries] == [
        "/openai/deployments/my-deploy/chat/completions",
        "/openai/deployments/my-deploy/chat/completions",
        "/openai/deployments/emb-deploy/embeddings"]
    assert all(e["query"]["api-version"] == "2024-06-01" for e in entries)
    assert all(e["headers"]["api-key"] == "az-key" for e in entries)
    assert entries[0]["vendor"] == "azure"


async def test_azure_requires_key_and_api_version(mock: MockUpstream) -> None:
    url = f"{mock.url}/openai/deployments/d/chat/completions"
    body = {"messages": user("hi")}
    async with httpx.AsyncClient() as http:
        no_key = await http.post(url, params={"api-version": "2024-06-01"}, json=body)
        no_version = await http.post(url, headers={"api-key": "k"}, json=body)
        ok = await http.post(url, params={"api-version": "2024-06-01"},
                             headers={"api-key": "k"}, json=body)
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "401"
    assert no_version.status_code == 400 and "api-version" in no_version.json()["error"]["message"]
    assert ok.status_code == 200 and ok.json()["model"] == "d"


async def test_azure_scripted_error_reaches_sdk(mock: MockUpstream) -> None:
    mock.script([{"status": 429, "retry_after": "7"}], match={"vendor": "azure"})
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=mock.url, api_version="2024-06-01", api_key="k", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="d", messages=user("hi"))
    assert caught.value.response.headers["retry-after"] == "7"


# --- Anthropic ------------------------------------------------------------------------------


async def test_anthropic_messages_create(mock: MockUpstream) -> None:
    message = await claude(mock).messages.create(
        model="claude-mock", max_tokens=100, system="be nice",
        messages=[{"role": "user", "content": "hello claude"}])
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Mock reply to: hello claude"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 5)
    [entry] = mock.requests()
    credentials = entry["headers"].get("x-api-key") or entry["headers"]["authorization"]
    assert credentials.endswith("sk-ant-test")  # newer SDKs send a bearer token
    assert "anthropic-version" in entry["headers"]


async def test_anthropic_stream_text_and_usage(mock: MockUpstream) -> None:
    async with claude(mock).messages.stream(
        model="claude-mock", max_tokens=100,
        messages=[{"role": "user", "content": "stream to me please"}],
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "Mock reply to: stream to me please"
    assert len(pieces) == 7
    assert final.usage.input_tokens == 4 and final.usage.output_tokens == 7
    assert final.stop_reason == "end_turn"


async def test_anthropic_stream_event_names(mock: MockUpstream) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{mock.url}/v1/messages",
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
            json={"model": "c", "max_tokens": 10, "stream": True,
                  "messages": [{"role": "user", "content": "a b"}]})
    events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "ping",
                      *["content_block_delta"] * 5, "content_block_stop",
                      "message_delta", "message_stop"]
    assert response.headers["content-type"].startswith("text/event-stream")


async def test_anthropic_tool_use(mock: MockUpstream) -> None:
    tools = [{"name": "lookup", "description": "look up",
              "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    client = claude(mock)
    message = await client.messages.create(
        model="claude-mock", max_tokens=100, tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "find it [[mock:tool=lookup]]"}])
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "lookup" and block.input == {}
    mock.script([{"tool_args": {"q": "cats"}}])
    async with client.messages.stream(
        model="claude-mock", max_tokens=100, tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "tool", "name": "lookup"},
        messages=[{"role": "user", "content": "find"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"q": "cats"}
    assert final.stop_reason == "tool_use"


async def test_anthropic_rate_limit_error(mock: MockUpstream) -> None:
    mock.script([{"status": 429, "retry_after": "3"}])
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude(mock).messages.create(
            model="claude-mock", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 429
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert caught.value.response.headers["retry-after"] == "3"


async def test_anthropic_requires_headers(mock: MockUpstream) -> None:
    body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient() as http:
        no_key = await http.post(f"{mock.url}/v1/messages", json=body,
                                 headers={"anthropic-version": "2023-06-01"})
        no_version = await http.post(f"{mock.url}/v1/messages", json=body,
                                     headers={"x-api-key": "k"})
    assert no_key.status_code == 401
    assert no_key.json() == {"type": "error", "error": {
        "type": "authentication_error", "message": "x-api-key header is required"}}
    assert no_version.status_code == 400
    assert no_version.json()["error"]["type"] == "invalid_request_error"


# --- Bedrock --------------------------------------------------------------------------------


def test_eventstream_round_trips_through_botocore() -> None:
    payload = json.dumps({"delta": {"text": "héllo"}, "contentBlockIndex": 0}).encode()
    frames = encode_event("contentBlockDelta", payload) + encode_exception(
        "throttlingException", b'{"message":"slow down"}')
    buffer = EventStreamBuffer()
    buffer.add_data(frames[:7])  # split frames must reassemble
    buffer.add_data(frames[7:])
    first, second = list(buffer)
    assert first.headers == {":event-type": "contentBlockDelta",
                             ":content-type": "application/json", ":message-type": "event"}
    assert json.loads(first.payload) == {"delta": {"text": "héllo"}, "contentBlockIndex": 0}
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "throttlingException"


async def test_bedrock_converse(mock: MockUpstream) -> None:
    async with bedrock(mock) as client:
        result = await client.converse(
            modelId="anthropic.claude-3:0", system=[{"text": "sys"}],
            messages=[{"role": "user", "content": [{"text": "hello bedrock"}]}])
    assert result["output"]["message"] == {
        "role": "assistant", "content": [{"text": "Mock reply to: hello bedrock"}]}
    assert result["stopReason"] == "end_turn"
    assert result["usage"] == {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}
    assert result["metrics"]["latencyMs"] >= 0
    [entry] = mock.requests()
    assert entry["model"] == "anthropic.claude-3:0"
    assert entry["path"].endswith("/converse")
    assert entry["headers"]["authorization"].startswith("AWS4-HMAC-SHA256")
    assert entry["auth"] is True


async def test_bedrock_converse_stream(mock: MockUpstream) -> None:
    async with bedrock(mock) as client:
        response = await client.converse_stream(
            modelId="anthropic.claude-3:0",
            messages=[{"role": "user", "content": [{"text": "stream bedrock"}]}])
        events = [event async for event in response["stream"]]
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-3:] == [
        "contentBlockStop", "messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events
                   if "contentBlockDelta" in e)
    assert text == "Mock reply to: stream bedrock"
    assert kinds.count("contentBlockDelta") == 5
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 5


async def test_bedrock_tool_use(mock: MockUpstream) -> None:
    tool_config = {"tools": [{"toolSpec": {
        "name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}
    async with bedrock(mock) as client:
        result = await client.converse(
            modelId="m", toolConfig=tool_config,
            messages=[{"role": "user", "content": [{"text": "go [[mock:tool=lookup]]"}]}])
        mock.script([{"tool_args": {"q": 1}}])
        response = await client.converse_stream(
            modelId="m", toolConfig={**tool_config, "toolChoice": {"any": {}}},
            messages=[{"role": "user", "content": [{"text": "go"}]}])
        events = [event async for event in response["stream"]]
    assert result["stopReason"] == "tool_use"
    tool_use = result["output"]["message"]["content"][0]["toolUse"]
    assert tool_use["name"] == "lookup" and tool_use["input"] == {}
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "lookup"
    args = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"]
                   for e in events if "contentBlockDelta" in e)
    assert json.loads(args) == {"q": 1}


async def test_bedrock_titan_embedding(mock: MockUpstream) -> None:
    async with bedrock(mock) as client:
        response = await client.invoke_model(
            modelId="amazon.titan-embed-text-v2:0", contentType="application/json",
            body=json.dumps({"inputText": "embed me now", "dimensions": 4}))
        body = json.loads(await response["body"].read())
    assert body["inputTextTokenCount"] == 3
    assert body["embedding"] == pytest.approx(embed("embed me now", 4))
    assert mock.requests()[0]["model"] == "amazon.titan-embed-text-v2:0"


async def test_bedrock_throttling_error(mock: MockUpstream) -> None:
    async with bedrock(mock) as client:
        with pytest.raises(ClientError) as caught:
            await client.converse(
                modelId="m",
                messages=[{"role": "user", "content": [{"text": "x [[mock:status=429]]"}]}])
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["Error"]["Message"] == "Mock error 429"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429


# --- directives -----------------------------------------------------------------------------


async def test_status_and_retry_after_directives(mock: MockUpstream) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await oai(mock).chat.completions.create(
            model="m", messages=user("x [[mock:status=503]] [[mock:retry_after=2]]"))
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]
    assert mock.requests()[0]["status"] == 503


async def test_reply_and_delay_directives(mock: MockUpstream) -> None:
    started = time.perf_counter()
    result = await oai(mock).chat.completions.create(
        model="m", messages=user("[[mock:reply=fixed answer]] [[mock:delay_ms=300]] q"))
    assert time.perf_counter() - started >= 0.3
    assert result.choices[0].message.content == "fixed answer"


async def test_ttft_and_chunk_delay(mock: MockUpstream) -> None:
    started = time.perf_counter()
    stream = await oai(mock).chat.completions.create(
        model="m", stream=True,
        messages=user("a b c [[mock:ttft_ms=200]] [[mock:chunk_delay_ms=50]]"))
    stamps = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter() - started)
    assert stamps[0] >= 0.2
    assert stamps[-1] - stamps[0] >= 0.05 * (len(stamps) - 1) * 0.9


async def test_break_after_drops_openai_stream(mock: MockUpstream) -> None:
    stream = await oai(mock).chat.completions.create(
        model="m", stream=True, messages=user("one two three four [[mock:break_after=2]]"))
    received: list[str] = []
    with pytest.raises(Exception) as caught:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert dropped_midway(caught.value), repr(caught.value)
    assert received == ["Mock", " reply"]
    assert mock.requests()[0]["broken"] is True


async def test_break_after_drops_anthropic_and_bedrock_streams(mock: MockUpstream) -> None:
    texts: list[str] = []
    with pytest.raises(Exception) as caught:
        async with claude(mock).messages.stream(
            model="c", max_tokens=50,
            messages=[{"role": "user", "content": "a b c [[mock:break_after=1]]"}],
        ) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert dropped_midway(caught.value), repr(caught.value)
    assert texts == ["Mock"]
    async with bedrock(mock) as client:
        response = await client.converse_stream(
            modelId="m", messages=[{"role": "user", "content": [
                {"text": "a b c [[mock:break_after=1]]"}]}])
        kinds: list[str] = []
        with pytest.raises(Exception) as caught:
            async for event in response["stream"]:
                kinds.extend(event)
    assert dropped_midway(caught.value), repr(caught.value)
    assert kinds == ["messageStart", "contentBlockDelta"]
    assert [e["broken"] for e in mock.requests()] == [True, True]


async def test_break_after_zero_drops_non_stream(mock: MockUpstream) -> None:
    with pytest.raises(openai.APIConnectionError):
        await oai(mock).chat.completions.create(
            model="m", messages=user("x [[mock:break_after=0]]"))


# --- scripts, config, log -------------------------------------------------------------------


async def test_script_queue_consumed_in_order(mock: MockUpstream) -> None:
    mock.script([{"status": 500}, {"reply": "second"}, {"status": 429, "body": {"custom": 1}}])
    client = oai(mock)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=user("1"))
    second = await client.chat.completions.create(model="m", messages=user("2"))
    assert second.choices[0].message.content == "second"
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=user("3"))
    assert caught.value.body == {"custom": 1}
    fourth = await client.chat.completions.create(model="m", messages=user("4"))
    assert fourth.choices[0].message.content == "Mock reply to: 4"
    assert [e["status"] for e in mock.requests()] == [500, 200, 429, 200]


async def test_script_match_by_model_and_path(mock: MockUpstream) -> None:
    mock.script([{"reply": "for b"}], match={"model": "model-b"})
    mock.script([{"reply": "embeddings only", "status": 503}], match={"path": "/embeddings"})
    client = oai(mock)
    a = await client.chat.completions.create(model="model-a", messages=user("x"))
    b = await client.chat.completions.create(model="model-b", messages=user("x"))
    assert a.choices[0].message.content == "Mock reply to: x"
    assert b.choices[0].message.content == "for b"
    with pytest.raises(openai.InternalServerError):
        await client.embeddings.create(model="e", input="x")


async def test_script_rejects_unknown_keys(mock: MockUpstream) -> None:
    with pytest.raises(ValueError, match="unknown behaviour key"):
        mock.script([{"stauts": 500}])


async def test_http_control_api(mock: MockUpstream) -> None:
    async with httpx.AsyncClient(base_url=mock.url) as http:
        queued = await http.post("/_mock/script", json={
            "match": {"model": "m"}, "responses": [{"status": 502}, {"reply": "ok then"}]})
        assert queued.json() == {"queued": 2}
        config = await http.post("/_mock/config", json={"latency_ms": 50})
        assert config.json()["latency_ms"] == 50
        body = {"model": "m", "messages": user("x")}
        started = time.perf_counter()
        first = await http.post("/v1/chat/completions", json=body)
        assert time.perf_counter() - started >= 0.05
        second = await http.post("/v1/chat/completions", json=body)
        assert first.status_code == 502 and first.json()["error"]["type"] == "server_error"
        assert second.json()["choices"][0]["message"]["content"] == "ok then"
        log = (await http.get("/_mock/requests")).json()
        assert [(e["method"], e["path"], e["status"]) for e in log] == [
            ("POST", "/v1/chat/completions", 502), ("POST", "/v1/chat/completions", 200)]
        assert log[0]["json"] == body and log[0]["model"] == "m"
        assert log[0]["headers"]["content-type"] == "application/json"
        assert log[0]["time"] <= log[1]["time"]
        bad = await http.post("/_mock/script", json={"responses": [{"nope": 1}]})
        assert bad.status_code == 400
        assert (await http.post("/_mock/reset")).json() == {"ok": True}
        assert (await http.get("/_mock/requests")).json() == []
        assert (await http.get("/_mock/config")).json()["latency_ms"] == 0


async def test_reset_clears_everything(mock: MockUpstream) -> None:
    mock.script([{"status": 500}])
    mock.configure(latency_ms=500)
    await oai(mock).models.list()  # not a chat request: leaves the script alone
    mock.reset()
    started = time.perf_counter()
    result = await oai(mock).chat.completions.create(model="m", messages=user("x"))
    assert time.perf_counter() - started < 0.4
    assert result.choices[0].message.content == "Mock reply to: x"
    assert len(mock.requests()) == 1


async def test_client_abort_is_recorded(mock: MockUpstream) -> None:
    async with httpx.AsyncClient(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{mock.url}/v1/chat/completions",
                            json={"model": "m", "messages": user("x [[mock:delay_ms=3000]]")})
    await wait_for(lambda: mock.requests()[0]["aborted"])
    assert mock.requests()[0]["status"] is None

    stream = await oai(mock).chat.completions.create(
        model="m", stream=True, messages=user("a b c d e f [[mock:chunk_delay_ms=200]]"))
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()
    await wait_for(lambda: mock.requests()[1]["aborted"])
    assert mock.requests()[1]["status"] == 200 and not mock.requests()[1]["broken"]


def test_threaded_mock_for_sync_code(threaded_mock_upstream: MockUpstream) -> None:  # noqa: F811
    mock = threaded_mock_upstream
    mock.script([{"status": 418}])
    with httpx.Client(base_url=mock.url) as http:
        teapot = http.post("/v1/chat/completions", json={"model": "m", "messages": user("x")})
        fine = http.post("/v1/chat/completions", json={"model": "m", "messages": user("y")})
    assert teapot.status_code == 418
    assert fine.json()["choices"][0]["message"]["content"] == "Mock reply to: y"
    assert [e["json"]["messages"][0]["content"] for e in mock.requests()] == ["x", "y"]
    mock.reset()
    assert mock.requests() == []


def test_standalone_command(tmp_path: Any) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mock_upstream", "--port", str(port)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"mock upstream listening on http://127.0.0.1:{port}"
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                           json={"model": "m", "messages": user("standalone")})
        assert reply.json()["choices"][0]["message"]["content"] == "Mock reply to: standalone"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
