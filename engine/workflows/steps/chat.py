"""`chat_completion` step through the injected `StepServices.chat`.

Output: {"content", "json" (parsed structured output, else None), "usage",
"model", "finish_reason"}. Input (recorded): the request as sent, {"model",
"messages" (rendered), "temperature", "max_tokens", "top_p", "response_format"
(those set)}.
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import UpstreamError
from engine.schemas.chat import ChatCompletionRequest
from engine.workflows.references import compile_value
from engine.workflows.schema import ChatCompletionStep
from engine.workflows.steps.base import StepContext, StepRunner

_FORMAT_TYPES = ("json_schema", "json_object", "text")


def response_format_of(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """An OpenAI response_format from a JSON schema (or one given as-is)."""
    if spec is None:
        return None
    kind = spec.get("type")
    if kind in _FORMAT_TYPES and ("json_schema" in spec or kind != "json_schema"):
        return spec
    return {"type": "json_schema",
            "json_schema": {"name": "response", "schema": spec, "strict": True}}


def message_content(response: dict[str, Any]) -> tuple[str, str | None]:
    try:
        choice = response["choices"][0]
        return choice["message"].get("content") or "", choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamError("the model's response has no choices[0].message") from None


def compile_step(step: ChatCompletionStep) -> StepRunner:
    params: dict[str, Any] = {"model": step.model_id}
    for key in ("temperature", "max_tokens", "top_p"):
        if getattr(step, key) is not None:
            params[key] = getattr(step, key)
    response_format = response_format_of(step.response_format)
    if response_format is not None:
        params["response_format"] = response_format
    structured = response_format is not None and response_format["type"] != "text"
    if step.prompt_id is not None:
        messages = compile_value([{"role": "user", "prompt_id": step.prompt_id,
                                   "variables": step.prompt_variables or {}}])
    else:
        raw = []
        if step.system_message is not None:
            raw.append({"role": "system", "content": step.system_message})
        raw.append({"role": "user", "content": step.user_message})
        messages = compile_value(raw)

    async def run(ctx: StepContext) -> dict[str, Any]:
        services = ctx.require_services()
        rendered = messages.render(ctx.scope)
        for message in rendered:
            if "content" in message and not isinstance(message["content"], str):
                message["content"] = "" if message["content"] is None else json.dumps(
                    message["content"], ensure_ascii=False, default=str)
        ctx.input = {**params, "messages": rendered}
        request = ChatCompletionRequest.model_validate({**params, "messages": rendered})
        streaming = getattr(services, "chat_stream", None)
        if ctx.emit_delta is not None and streaming is not None and not structured:
            response = await _streamed(streaming, request, ctx)
        else:
            response = await services.chat(request)
        ctx.add_usage(response)
        content, finish_reason = message_content(response)
        if ctx.emit_delta is not None and content and response.get("object") != "streamed":
            await ctx.emit_delta(content)
        parsed = None
        if structured:
            try:
                parsed = json.loads(content)
            except ValueError:
                raise UpstreamError("the model's structured output is not valid JSON") from None
        return {"content": content, "json": parsed, "usage": response.get("usage"),
                "model": response.get("model"), "finish_reason": finish_reason}

    return run


async def _streamed(chat_stream: Any, request: ChatCompletionRequest,
                    ctx: StepContext) -> dict[str, Any]:
    """Stream the completion, passing each piece of text on as a step_output_delta,
    and return it assembled like a non-streamed completion."""
    streamed = request.model_copy(update={"stream": True})
    parts: list[str] = []
    usage, model, finish_reason, cost = None, None, None, None
    async for chunk in chat_stream(streamed):
        model = chunk.get("model") or model
        usage = chunk.get("usage") or usage
        if chunk.get("cost") is not None:  # on the chunk carrying usage
            cost = chunk["cost"]
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                parts.append(text)
                assert ctx.emit_delta is not None
                await ctx.emit_delta(text)
            finish_reason = choice.get("finish_reason") or finish_reason
    return {"object": "streamed", "model": model, "usage": usage, "cost": cost,
            "choices": [{"message": {"content": "".join(parts)},
                         "finish_reason": finish_reason}]}
