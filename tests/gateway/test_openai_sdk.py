"""The official `openai` SDK, pointed at a running Headrace, works unchanged."""

from __future__ import annotations

import base64
import struct

import httpx
import openai
import pytest

from tests.gateway.conftest import model_spec
from tests.support.live import AUTH, TEST_ADMIN_KEY, live_server
from tests.support.mock_upstream import MockUpstream


@pytest.fixture(scope="module")
def headrace(tmp_path_factory):
    mock = MockUpstream.start_in_thread()
    try:
        env = {"HEADRACE_TEST_KEY": "sk-upstream"}
        with live_server(tmp_path_factory.mktemp("sdk"), env=env) as server:
            for spec in (
                model_spec("m1", "openai", mock.url, aliases=["gpt-4o"]),
                model_spec("claude", "anthropic", mock.url),
                model_spec("e1", "openai", mock.url, type="embedding"),
            ):
                response = httpx.post(f"{server.url}/admin/models", json=spec, headers=AUTH)
                assert response.status_code == 201, response.text
            yield server, mock
    finally:
        mock.stop_in_thread()


@pytest.fixture
def sdk(headrace) -> openai.OpenAI:
    server, _ = headrace
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=TEST_ADMIN_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["m1", "gpt-4o", "claude"])
def test_chat_completion(sdk, model):
    completion = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello sdk"}], max_tokens=40)
    assert "hello sdk" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["m1", "claude"])
def test_chat_stream_with_usage(sdk, model):
    stream = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "stream to the sdk"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "stream to the sdk" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_raw_response_headers(sdk):
    raw = sdk.chat.completions.with_raw_response.create(
        model="m1", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-headrace-deployment"] == "m1"
    assert raw.headers["x-request-id"]
    assert raw.parse().object == "chat.completion"


def test_tool_call(sdk):
    completion = sdk.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "call it [[mock:tool=lookup]]"}],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {
            "type": "object", "properties": {}}}}])
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup"


def test_embeddings_float_and_base64(sdk):
    result = sdk.embeddings.create(model="e1", input=["alpha", "beta"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    # The SDK asks for base64 by default when numpy is present and decodes it itself;
    # ask explicitly to check the wire format too.
    raw = sdk.embeddings.with_raw_response.create(model="e1", input="alpha",
                                                  encoding_format="base64")
    encoded = raw.http_response.json()["data"][0]["embedding"]
    vector = struct.unpack(f"<{len(base64.b64decode(encoded)) // 4}f", base64.b64decode(encoded))
    assert vector == pytest.approx(result.data[0].embedding, rel=1e-6)


def test_models(sdk):
    ids = {m.id for m in sdk.models.list()}
    assert {"m1", "gpt-4o", "claude", "e1"} <= ids
    assert sdk.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("missing")


def test_errors_map_to_sdk_exceptions(sdk):
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="missing",
                                    messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model="m1", messages=[{"role": "nobody", "content": "x"}])
    assert "messages[0].role" in str(raised.value)
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(
            model="m1", messages=[{"role": "user", "content": "x [[mock:status=429]]"}])


def test_stream_broken_mid_way_raises_in_the_sdk(sdk):
    stream = sdk.chat.completions.create(
        model="m1", stream=True,
        messages=[{"role": "user", "content": "a b c d e f g [[mock:break_after=3]]"}])
    with pytest.raises(openai.APIError):
        list(stream)
