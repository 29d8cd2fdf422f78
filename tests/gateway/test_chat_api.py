"""`/v1/chat/completions` through the app against the mock upstream, per provider."""

from __future__ import annotations

import orjson
import pytest

from tests.gateway.conftest import create, model_spec

PROVIDERS = ["openai", "openai_compatible", "azure_openai", "anthropic", "bedrock"]


def sse_chunks(body: bytes) -> tuple[list[dict], bool]:
    chunks, done = [], False
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[6:]
        if data == "[DONE]":
            done = True
        else:
            chunks.append(orjson.loads(data))
    return chunks, done


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_complete_each_provider(client, mock, provider):
    await create(client, "/admin/models", model_spec("m1", provider, mock.url))
    response = await client.post("/v1/chat/completions", json={
        "model": "m1",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hello there"}],
        "max_tokens": 50,
    })
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["object"] == "chat.completion"
    assert "hello there" in body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    assert response.headers["x-headrace-deployment"] == "m1"
    assert response.headers["x-headrace-attempts"] == "1"
    assert float(response.headers["x-headrace-overhead-ms"]) >= 0
    seen = mock.requests()
    assert len(seen) == 1
    # The credential reached the upstream in the vendor's header, never the client's.
    headers = seen[0]["headers"]
    if provider == "anthropic":
        assert headers["x-api-key"] == "sk-test-secret-value"
    elif provider == "azure_openai":
        assert headers["api-key"] == "sk-test-secret-value"
    elif provider == "bedrock":
        assert "AKIDTEST" in headers["authorization"]
    else:
        assert headers["authorization"] == "Bearer sk-test-secret-value"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_each_provider(client, mock, provider):
    await create(client, "/admin/models", model_spec("m1", provider, mock.url))
    response = await client.post("/v1/chat/completions", json={
        "model": "m1", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "stream me some words please"}],
    })
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks, done = sse_chunks(await response.get_data())
    assert done
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks if c["choices"])
    assert "stream me some words please" in text
    assert any(c["choices"] and c["choices"][0]["finish_reason"] == "stop" for c in chunks)
    usage = [c for c in chunks if c.get("usage")]
    assert usage and usage[-1]["usage"]["completion_tokens"] > 0


async def test_stream_without_include_usage_has_no_usage(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    response = await client.post("/v1/chat/completions", json={
        "model": "m1", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    chunks, done = sse_chunks(await response.get_data())
    assert done and chunks
    assert all("usage" not in c and c["choices"] for c in chunks)


async def test_unknown_model_is_404(client):
    response = await client.post("/v1/chat/completions", json={
        "model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    body = await response.get_json()
    assert response.status_code == 404
    assert body["error"]["type"] == "not_found_error"
    assert body["error"]["code"] == "model_not_found"


async def test_alias_and_defaults(client, mock):
    await create(client, "/admin/models", model_spec(
        "m1", "openai", mock.url, aliases=["gpt-4o", "openai/gpt-4o"],
        defaults={"temperature": 0.3, "max_tokens": 77}))
    response = await client.post("/v1/chat/completions", json={
        "model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.9})
    assert response.status_code == 200
    sent = mock.requests()[0]["json"]
    assert sent["model"] == "upstream-m1"
    assert sent["temperature"] == 0.9  # the request wins over the default
    assert sent["max_tokens"] == 77


async def test_unsupported_parameter_is_400_naming_it(client, mock):
    await create(client, "/admin/models", model_spec("m1", "anthropic", mock.url))
    response = await client.post("/v1/chat/completions", json={
        "model": "m1", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}})
    body = await response.get_json()
    assert response.status_code == 400
    assert body["error"]["param"] == "logit_bias"
    assert mock.requests() == []


async def test_tool_calls_round_trip(client, mock):
    await create(client, "/admin/models", model_spec("m1", "anthropic", mock.url))
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    response = await client.post("/v1/chat/completions", json={
        "model": "m1", "tools": tools,
        "messages": [{"role": "user", "content": "weather? [[mock:tool=get_weather]]"}]})
    body = await response.get_json()
    assert response.status_code == 200, body
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    follow = await client.post("/v1/chat/completions", json={
        "model": "m1", "tools": tools, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]})
    assert follow.status_code == 200, await follow.get_json()
    sent = mock.requests()[-1]["json"]["messages"]
    assert sent[-1]["role"] == "user"
    assert sent[-1]["content"][0]["type"] == "tool_result"


async def test_prompt_reference_in_messages(client, mock):
    await create(client, "/admin/models", model_spec("m1", "openai", mock.url))
    await create(client, "/admin/prompts", {
        "id": "reviewer", "content": "Review this ${var:lang:Python} code: ${var:code}"})
    response = await client.post("/v1/chat/completions", json={
        "model": "m1", "messages": [
            {"role": "system", "prompt_id": "reviewer", "variables": {"code": "x = 1"}},
            {"role": "user", "content": "go"}]})
    assert response.status_code == 200
    sent = mock.requests()[0]["json"]["messages"][0]
    assert sent == {"role": "system", "content": "Review this Python code: x = 1"}
    missing = await client.post("/v1/chat/completions", json={
        "model": "m1", "messages": [{"role": "system", "prompt_id": "reviewer"}]})
    error = (await missing.get_json())["error"]
    assert missing.status_code == 400
    assert "code" in error["message"] and error["param"].startswith("messages[0]")
