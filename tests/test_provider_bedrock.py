"""AWS Bedrock: the Converse/InvokeModel translations, and the connector end to end.

The translation tests are pure. The integration tests drive `BedrockProvider`
(real aiobotocore, SigV4 and binary event streams) against the mock upstream.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from connectors.llm.bedrock import BedrockProvider, client_error, parse_credentials
from engine.errors import InvalidRequest, UpstreamError
from engine.formats.bedrock import (
    ConverseStreamTranslator,
    cohere_body,
    embedding_family,
    embedding_list,
    from_converse,
    titan_body,
    to_converse,
)
from engine.gateway.providers import Call
from engine.schemas.chat import ChatCompletionRequest, EmbeddingRequest
from engine.schemas.models import ModelSpec
from tests.support.mock_upstream import MockUpstream

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def chat(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCompletionRequest.model_validate({"model": "claude", **fields})


def converse_answer(content: list[dict], stop: str = "end_turn", **usage: int) -> dict:
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18, **usage}}


# --- request translation ----------------------------------------------------------------


def test_system_and_developer_messages_become_system_blocks() -> None:
    payload = to_converse(chat(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "there"}]},
    ]), MODEL)
    assert payload["modelId"] == MODEL
    assert payload["system"] == [{"text": "Be brief."}, {"text": "Answer in French."}]
    assert payload["messages"] == [{"role": "user", "content": [{"text": "hi"}, {"text": "there"}]}]
    assert "inferenceConfig" not in payload and "toolConfig" not in payload


def test_inference_config() -> None:
    payload = to_converse(chat(max_tokens=50, temperature=0.2, top_p=0.9, stop="END"), MODEL)
    assert payload["inferenceConfig"] == {
        "maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}
    assert to_converse(chat(max_completion_tokens=9), MODEL)["inferenceConfig"] == {
        "maxTokens": 9}


def test_tools_and_tool_choice() -> None:
    payload = to_converse(chat(tools=[WEATHER]), MODEL)
    assert payload["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "get_weather", "description": "Weather for a city",
        "inputSchema": {"json": WEATHER["function"]["parameters"]}}}]}
    choices = {"auto": {"auto": {}}, "required": {"any": {}},
               "fn": {"tool": {"name": "get_weather"}}}
    for given, expected in choices.items():
        choice = ({"type": "function", "function": {"name": "get_weather"}}
                  if given == "fn" else given)
        config = to_converse(chat(tools=[WEATHER], tool_choice=choice), MODEL)["toolConfig"]
        assert config["toolChoice"] == expected
    assert "toolConfig" not in to_converse(chat(tools=[WEATHER], tool_choice="none"), MODEL)
    bare = {"type": "function", "function": {"name": "ping"}}
    spec = to_converse(chat(tools=[bare]), MODEL)["toolConfig"]["tools"][0]["toolSpec"]
    assert spec == {"name": "ping", "inputSchema": {"json": {"type": "object", "properties": {}}}}


def test_tool_calls_and_results_round_trip() -> None:
    payload = to_converse(chat(messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": "Thanks"},
    ], tools=[WEATHER]), MODEL)
    assert payload["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
            {"text": "Thanks"}]},
    ]


def test_bad_tool_arguments_are_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_converse(chat(messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [
                {"id": "c", "function": {"name": "f", "arguments": "{nope"}}]},
        ]), MODEL)
    assert caught.value.param == "messages[1].tool_calls"


def test_inline_images_become_bytes_and_links_are_refused() -> None:
    payload = to_converse(chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]}]), MODEL)
    assert payload["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": base64.b64decode(PNG)}}}

    with pytest.raises(InvalidRequest) as caught:
        to_converse(chat(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]), MODEL)
    assert caught.value.param == "messages[0].content[0].image_url.url"
    with pytest.raises(InvalidRequest, match="image/bmp"):
        to_converse(chat(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{PNG}"}}]}]), MODEL)


@pytest.mark.parametrize(("field", "value"), [
    ("n", 2), ("logprobs", True), ("logit_bias", {"1": 1}), ("presence_penalty", 0.5),
    ("frequency_penalty", 0.5), ("seed", 7), ("reasoning_effort", "low"),
])
def test_unsupported_parameters_are_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_converse(chat(**{field: value}), MODEL)
    assert caught.value.param == field
    assert field in caught.value.message and "bedrock" in caught.value.message
    assert caught.value.code == "unsupported_parameter"


def test_n_of_one_is_fine() -> None:
    converse = to_converse(chat(n=1), MODEL)
    assert converse["modelId"] == MODEL and converse["messages"]


def test_json_response_format_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = chat(response_format={"type": "json_schema",
                                    "json_schema": {"name": "reply", "schema": schema}})
    config = to_converse(request, MODEL)["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "reply"}}
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}

    answer = converse_answer([{"toolUse": {"toolUseId": "t1", "name": "reply",
                                           "input": {"answer": "yes"}}}], stop="tool_use")
    result = from_converse(answer, request, MODEL)
    message = result["choices"][0]["message"]
    assert orjson.loads(message["content"]) == {"answer": "yes"}
    assert "tool_calls" not in message
    assert result["choices"][0]["finish_reason"] == "stop"

    plain = to_converse(chat(response_format={"type": "json_object"}), MODEL)["toolConfig"]
    assert plain["toolChoice"] == {"tool": {"name": "json_response"}}
    with pytest.raises(InvalidRequest) as caught:
        to_converse(chat(response_format={"type": "json_object"}, tools=[WEATHER]), MODEL)
    assert caught.value.param == "response_format"


# --- response translation ---------------------------------------------------------------


def test_text_answer_and_usage() -> None:
    result = from_converse(converse_answer([{"text": "Hello"}, {"text": " there"}]), chat(), MODEL)
    assert result["object"] == "chat.completion"
    assert result["model"] == MODEL
    assert result["choices"][0]["message"]["content"] == "Hello there"
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    cached = from_converse(converse_answer([{"text": "x"}], cacheReadInputTokens=100), chat(),
                           MODEL)
    assert cached["usage"]["prompt_tokens"] == 111


def test_tool_use_answer() -> None:
    answer = converse_answer([
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Paris"}}},
    ], stop="tool_use")
    result = from_converse(answer, chat(tools=[WEATHER]), MODEL)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "tu_1" and call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    only_tool = from_converse(converse_answer([answer["output"]["message"]["content"][1]],
                                              stop="tool_use"), chat(tools=[WEATHER]), MODEL)
    assert only_tool["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(("reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("content_filtered", "content_filter"),
    ("guardrail_intervened", "content_filter"), ("something_new", "stop"),
])
def test_stop_reasons(reason: str, finish: str) -> None:
    result = from_converse(converse_answer([{"text": "x"}], stop=reason), chat(), MODEL)
    assert result["choices"][0]["finish_reason"] == finish


# --- stream translation -----------------------------------------------------------------


def feed_all(translator: ConverseStreamTranslator, events: list[dict]) -> list[dict]:
    return [chunk for event in events for chunk in translator.feed(event)]


def test_stream_text() -> None:
    translator = ConverseStreamTranslator(chat(), "Bedrock deployment 'x'", MODEL)
    chunks = feed_all(translator, [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "max_tokens"}},
        {"metadata": {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
                      "metrics": {"latencyMs": 10}}},
    ])
    assert translator.stopped
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "Hello"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)


def test_stream_tool_calls() -> None:
    translator = ConverseStreamTranslator(chat(tools=[WEATHER]), "x", MODEL)
    chunks = feed_all(translator, [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Checking"}, "contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}},
                               "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city":'}},
                               "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": ' "Paris"}'}},
                               "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
    ])
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0] == {"index": 0, "id": "tu_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    assert all(call["index"] == 0 for call in calls)
    assert orjson.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Paris"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_forced_json_tool_is_content() -> None:
    request = chat(response_format={"type": "json_object"})
    translator = ConverseStreamTranslator(request, "x", MODEL)
    chunks = feed_all(translator, [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t", "name": "json_response"}},
                               "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"a": 1}'}},
                               "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "tool_use"}},
    ])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == '{"a": 1}'
    assert not any("tool_calls" in c["choices"][0]["delta"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_without_message_stop_is_not_stopped() -> None:
    translator = ConverseStreamTranslator(chat(), "x", MODEL)
    feed_all(translator, [{"messageStart": {"role": "assistant"}},
                          {"contentBlockDelta": {"delta": {"text": "Hel"}}}])
    assert not translator.stopped


def test_stream_exception_event_raises() -> None:
    translator = ConverseStreamTranslator(chat(), "Bedrock deployment 'x'", MODEL)
    with pytest.raises(UpstreamError) as caught:
        feed_all(translator, [{"messageStart": {"role": "assistant"}},
                              {"throttlingException": {"message": "slow down"}}])
    assert caught.value.status == 429
    assert "slow down" in caught.value.message


# --- embeddings -------------------------------------------------------------------------


def test_embedding_bodies() -> None:
    assert embedding_family("amazon.titan-embed-text-v2:0") == "titan"
    assert embedding_family("cohere.embed-english-v3") == "cohere"
    assert embedding_family("us.cohere.embed-multilingual-v3") == "cohere"
    with pytest.raises(InvalidRequest) as caught:
        embedding_family("amazon.titan-embed-image-v1")
    assert caught.value.param == "model"
    assert titan_body("hi", "amazon.titan-embed-text-v2:0", 256) == {
        "inputText": "hi", "normalize": True, "dimensions": 256}
    assert titan_body("hi", "amazon.titan-embed-text-v1", None) == {"inputText": "hi"}
    with pytest.raises(InvalidRequest):
        titan_body("hi", "amazon.titan-embed-text-v1", 256)
    assert cohere_body(["a", "b"], "cohere.embed-english-v3", None) == {
        "texts": ["a", "b"], "input_type": "search_document"}
    with pytest.raises(InvalidRequest) as caught:
        cohere_body(["a"], "cohere.embed-english-v3", 256)
    assert caught.value.param == "dimensions"
    assert embedding_list([[0.1], [0.2]], "m", 4) == {
        "object": "list", "model": "m",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1]},
                 {"object": "embedding", "index": 1, "embedding": [0.2]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4}}


# --- credentials and errors -------------------------------------------------------------


def test_credentials_parsing_never_echoes_the_secret() -> None:
    assert parse_credentials(None, "d") is None
    json_keys = parse_credentials(
        '{"aws_access_key_id": "AK", "aws_secret_access_key": "SK", "aws_session_token": "T"}',
        "d")
    assert json_keys == ("AK", "SK", "T")
    assert parse_credentials("AK:SK", "d") == ("AK", "SK", None)
    for bad in ("justonestring-SECRETVALUE", '{"aws_access_key_id": "SECRETVALUE"}'):
        with pytest.raises(UpstreamError) as caught:
            parse_credentials(bad, "Bedrock deployment 'd'")
        assert "SECRETVALUE" not in caught.value.message


def aws_error(status: int, code: str, message: str = "nope",
              headers: dict[str, str] | None = None) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status,
                                             "HTTPHeaders": headers or {}}}, "Converse")


def test_aws_errors_map_to_gateway_errors() -> None:
    name = "Bedrock deployment 'claude'"
    rejected = client_error(name, aws_error(400, "ValidationException", "bad"), None)
    assert isinstance(rejected, InvalidRequest) and rejected.code == "upstream_rejected"

    throttled = client_error(name, aws_error(429, "ThrottlingException",
                                             headers={"retry-after": "3"}), None)
    assert isinstance(throttled, UpstreamError)
    assert throttled.status == 429 and throttled.retry_after == 3.0
    assert name in throttled.message and "ThrottlingException" in throttled.message

    for status, code in ((503, "ServiceUnavailableException"), (500, "InternalServerException"),
                         (429, "ModelNotReadyException"), (403, "AccessDeniedException")):
        error = client_error(name, aws_error(status, code), None)
        assert type(error) is UpstreamError and error.status == status, code
    quota = client_error(name, aws_error(400, "ServiceQuotaExceededException"), None)
    assert type(quota) is UpstreamError and quota.status == 429

    creds = parse_credentials("AKIDEXAMPLE:TOPSECRET", "d")
    leaky = client_error(name, aws_error(403, "InvalidSignatureException",
                                         "key AKIDEXAMPLE secret TOPSECRET"), creds)
    assert "TOPSECRET" not in leaky.message and "AKIDEXAMPLE" not in leaky.message


# --- end to end against the mock upstream -----------------------------------------------

SECRET = '{"aws_access_key_id":"x","aws_secret_access_key":"y"}'


@pytest.fixture(scope="module")
async def mock() -> AsyncIterator[MockUpstream]:
    upstream = await MockUpstream().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def provider(mock: MockUpstream) -> AsyncIterator[BedrockProvider]:
    mock.reset()
    bedrock = BedrockProvider()
    yield bedrock
    await bedrock.aclose()


def bedrock_call(mock: MockUpstream, model: str = MODEL, key: str = "claude",
                 kind: str = "chat") -> Call:
    spec = ModelSpec(id=key, type=kind, provider="bedrock", model=model, base_url=mock.url,
                     region="us-east-1")
    return Call(deployment=spec.endpoints()[0], secret=SECRET, timeout_s=10,
                traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")


async def collect(provider: BedrockProvider, call: Call,
                  request: ChatCompletionRequest) -> list[dict]:
    return [chunk async for chunk in provider.stream(call, request)]


async def test_complete(mock: MockUpstream, provider: BedrockProvider) -> None:
    request = chat(messages=[{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "hello [[mock:reply=Hi there!]]"}],
                   max_tokens=20)
    result = await provider.complete(bedrock_call(mock), request)
    assert result["choices"][0]["message"]["content"] == "Hi there!"
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["model"] == MODEL
    assert result["usage"]["prompt_tokens"] > 0 and result["usage"]["completion_tokens"] == 2

    [sent] = mock.requests()
    assert sent["path"] == f"/model/{MODEL}/converse"
    assert sent["auth"] and sent["headers"]["authorization"].startswith("AWS4-HMAC-SHA256")
    assert "Credential=x/" in sent["headers"]["authorization"]
    assert sent["headers"]["traceparent"].startswith("00-0af7")
    assert sent["json"]["system"] == [{"text": "Be brief."}]
    assert sent["json"]["inferenceConfig"] == {"maxTokens": 20}


async def test_client_is_reused(mock: MockUpstream, provider: BedrockProvider) -> None:
    call = bedrock_call(mock)
    await provider.complete(call, chat())
    await provider.complete(call, chat())
    assert len(provider._clients) == 1
    other = Call(deployment=call.deployment, secret="a:b", timeout_s=10)
    await provider.complete(other, chat())
    assert len(provider._clients) == 2


async def test_stream(mock: MockUpstream, provider: BedrockProvider) -> None:
    request = chat(messages=[{"role": "user",
                              "content": "[[mock:reply=The quick brown fox jumps.]]"}],
                   stream=True)
    chunks = await collect(provider, bedrock_call(mock), request)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content") or ""
                      for c in chunks if c["choices"])
    assert content == "The quick brown fox jumps."
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert chunks[-1]["usage"]["prompt_tokens"] > 0
    assert mock.requests()[0]["path"] == f"/model/{MODEL}/converse-stream"


async def test_tool_call_round_trip(mock: MockUpstream, provider: BedrockProvider) -> None:
    call = bedrock_call(mock)
    ask = {"role": "user", "content": 'Weather in Paris? [[mock:tool=get_weather]]'
                                      '[[mock:tool_args={"city": "Paris"}]]'}
    first = await provider.complete(call, chat(messages=[ask], tools=[WEATHER]))
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [tool] = choice["message"]["tool_calls"]
    assert tool["function"]["name"] == "get_weather"
    assert orjson.loads(tool["function"]["arguments"]) == {"city": "Paris"}

    second = await provider.complete(call, chat(messages=[
        ask, choice["message"],
        {"role": "tool", "tool_call_id": tool["id"], "content": "sunny, 21C"},
    ], tools=[WEATHER]))
    assert second["choices"][0]["finish_reason"] == "stop"
    assert second["choices"][0]["message"]["content"]
    sent = mock.requests()[1]["json"]
    assert sent["messages"][1]["content"][0]["toolUse"]["toolUseId"] == tool["id"]
    assert sent["messages"][2]["content"][0]["toolResult"] == {
        "toolUseId": tool["id"], "content": [{"text": "sunny, 21C"}]}

    chunks = await collect(provider, call, chat(messages=[ask], tools=[WEATHER], stream=True))
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"]
    assert orjson.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Paris"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


async def test_json_response_format(mock: MockUpstream, provider: BedrockProvider) -> None:
    request = chat(response_format={"type": "json_object"}, messages=[
        {"role": "user", "content": 'Answer [[mock:tool_args={"ok": true}]]'}])
    result = await provider.complete(bedrock_call(mock), request)
    assert orjson.loads(result["choices"][0]["message"]["content"]) == {"ok": True}
    assert result["choices"][0]["finish_reason"] == "stop"


async def test_titan_embeddings(mock: MockUpstream, provider: BedrockProvider) -> None:
    call = bedrock_call(mock, model="amazon.titan-embed-text-v2:0", key="titan",
                        kind="embedding")
    request = EmbeddingRequest(model="titan", input=["hello world", "good bye now"],
                               dimensions=256)
    result = await provider.embed(call, request)
    assert result["object"] == "list" and result["model"] == "amazon.titan-embed-text-v2:0"
    assert [d["index"] for d in result["data"]] == [0, 1]
    assert all(len(d["embedding"]) == 256 for d in result["data"])
    assert result["data"][0]["embedding"] != result["data"][1]["embedding"]
    assert result["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    bodies = sorted((r["json"] for r in mock.requests()), key=lambda b: b["inputText"])
    assert bodies[0] == {"inputText": "good bye now", "normalize": True, "dimensions": 256}
    assert all(r["path"] == "/model/amazon.titan-embed-text-v2:0/invoke"
               for r in mock.requests())

    with pytest.raises(InvalidRequest) as caught:
        await provider.embed(call, EmbeddingRequest(model="titan", input=[1, 2, 3]))
    assert caught.value.param == "input"


async def test_scripted_429_is_an_upstream_error(
    mock: MockUpstream, provider: BedrockProvider
) -> None:
    mock.script([{"status": 429, "retry_after": "2"}])
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(bedrock_call(mock), chat())
    error = caught.value
    assert type(error) is UpstreamError
    assert error.status == 429 and error.retry_after == 2.0
    assert "Bedrock deployment 'claude'" in error.message
    assert "ThrottlingException" in error.message
    assert len(mock.requests()) == 1  # botocore did not retry on its own

    mock.script([{"status": 503}])
    with pytest.raises(UpstreamError) as caught:
        await collect(provider, bedrock_call(mock), chat(stream=True))
    assert caught.value.status == 503

    mock.script([{"status": 400}])
    with pytest.raises(InvalidRequest) as rejected:
        await provider.complete(bedrock_call(mock), chat())
    assert rejected.value.code == "upstream_rejected"


async def test_broken_stream_is_an_upstream_error(
    mock: MockUpstream, provider: BedrockProvider
) -> None:
    text = "[[mock:reply=one two three four five]][[mock:break_after=2]]"
    request = chat(stream=True, messages=[{"role": "user", "content": text}])
    seen: list[dict] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.stream(bedrock_call(mock), request):
            seen.append(chunk)
    assert "Bedrock deployment 'claude' broke off the stream" in caught.value.message
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in seen) == "one two"
    assert not any(c["choices"] and c["choices"][0]["finish_reason"] for c in seen)


async def test_unreachable_endpoint(provider: BedrockProvider) -> None:
    spec = ModelSpec(id="gone", provider="bedrock", model=MODEL, base_url="http://127.0.0.1:9",
                     region="us-east-1")
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(Call(deployment=spec.endpoints()[0], secret=SECRET,
                                     timeout_s=5), chat())
    assert "Bedrock deployment 'gone'" in caught.value.message
    assert '"y"' not in caught.value.message


# --- what the mock cannot show: a fake aiobotocore client -------------------------------


class FakeEvents:
    def __init__(self, events: list[dict]):
        self.events = events
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[dict]:
        for event in self.events:
            yield event

    def close(self) -> None:
        self.closed = True


class FakeBody:
    def __init__(self, data: bytes):
        self.data = data

    async def __aenter__(self) -> FakeBody:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self.data


class FakeClient:
    def __init__(self, events: list[dict] | None = None):
        self.stream = FakeEvents(events or [])
        self.bodies: list[dict] = []

    async def converse_stream(self, **payload: Any) -> dict:
        return {"stream": self.stream}

    async def invoke_model(self, **kwargs: Any) -> dict:
        body = orjson.loads(kwargs["body"])
        self.bodies.append(body)
        vectors = [[float(len(t)), 0.5] for t in body["texts"]]
        return {"body": FakeBody(orjson.dumps({"embeddings": vectors, "id": "e"})),
                "ResponseMetadata": {"HTTPHeaders": {
                    "x-amzn-bedrock-input-token-count": str(len(body["texts"]))}}}


def fake_provider(monkeypatch: pytest.MonkeyPatch, client: FakeClient) -> BedrockProvider:
    provider = BedrockProvider()

    async def get_client(call: Call, credentials: Any) -> FakeClient:
        return client

    monkeypatch.setattr(provider, "_client", get_client)
    return provider


def fake_call(model: str = MODEL) -> Call:
    spec = ModelSpec(id="fake", provider="bedrock", model=model, region="eu-west-1")
    return Call(deployment=spec.endpoints()[0], secret=None, timeout_s=5)


async def test_stream_that_ends_before_message_stop_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = FakeClient([{"messageStart": {"role": "assistant"}},
                         {"contentBlockDelta": {"delta": {"text": "Hal"}}}])
    provider = fake_provider(monkeypatch, client)
    with pytest.raises(UpstreamError, match="before messageStop"):
        await collect(provider, fake_call(), chat(stream=True))
    assert client.stream.closed


async def test_cohere_embeddings_are_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient()
    provider = fake_provider(monkeypatch, client)
    texts = [f"text {i}" for i in range(100)]
    result = await provider.embed(fake_call("cohere.embed-english-v3"),
                                  EmbeddingRequest(model="fake", input=texts))
    assert [len(b["texts"]) for b in client.bodies] == [96, 4]
    assert client.bodies[0]["input_type"] == "search_document"
    assert [d["index"] for d in result["data"]] == list(range(100))
    assert result["data"][99]["embedding"] == [float(len("text 99")), 0.5]
    assert result["usage"] == {"prompt_tokens": 100, "total_tokens": 100}
