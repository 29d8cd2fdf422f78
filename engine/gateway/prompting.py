"""Messages that reference a stored prompt (`prompt_id` + `variables`) get its
rendered text as content before the request goes upstream."""

from __future__ import annotations

from engine.catalog import Catalog
from engine.errors import InvalidRequest
from engine.prompts import render
from engine.schemas.chat import ChatCompletionRequest


async def expand_prompts(request: ChatCompletionRequest, catalog: Catalog) -> ChatCompletionRequest:
    if not any(m.prompt_id for m in request.messages):
        return request
    messages = []
    for index, message in enumerate(request.messages):
        if message.prompt_id is None:
            messages.append(message)
            continue
        if message.prompt_version is None:
            spec = catalog.prompt(message.prompt_id).spec
        else:
            spec = await catalog.prompt_version(message.prompt_id, message.prompt_version)
        try:
            text = render(spec.content, message.variables or {}, spec.format)
        except InvalidRequest as error:
            error.param = f"messages[{index}].{error.param or 'variables'}"
            error.message = f"prompt '{message.prompt_id}': {error.message}"
            raise
        messages.append(
            message.model_copy(
                update={"content": text, "prompt_id": None, "variables": None,
                        "prompt_version": None}
            )
        )
    return request.model_copy(update={"messages": messages})
