"""Azure OpenAI wire format: OpenAI bodies under /openai/deployments/<name>/...

Requires an ``api-key`` header (or an Entra ``Authorization`` bearer) and the
``api-version`` query parameter, as Azure does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.support.mock_upstream import flow, openai

VENDOR = "azure"


def error(status: int, message: str) -> tuple[Any, dict[str, str]]:
    body, _ = openai.error(status, message)
    body["error"]["code"] = str(status)
    return body, {"apim-request-id": flow.next_id("mock-")}


async def _admit(request: web.Request) -> tuple[Any, str, dict[str, Any]]:
    body = await flow.read_json(request)
    deployment = request.match_info["deployment"]
    model = (body.get("model") if isinstance(body, dict) else None) or deployment
    entry = flow.start_record(request, VENDOR, body, model)
    if "api-key" not in request.headers and "authorization" not in request.headers:
        raise flow.reject(entry, error, 401, "Access denied due to invalid subscription key "
                          "or wrong API endpoint. Make sure to provide a valid key.")
    if "api-version" not in request.query:
        raise flow.reject(entry, error, 400, "The api-version query parameter "
                          "(?api-version=) is required for all requests.")
    return body, model, entry


@flow.endpoint
async def chat(request: web.Request) -> web.StreamResponse:
    body, model, entry = await _admit(request)
    return await openai.serve_chat(request, error, model, body, entry)


@flow.endpoint
async def embeddings(request: web.Request) -> web.StreamResponse:
    body, model, entry = await _admit(request)
    return await openai.serve_embeddings(request, error, model, body, entry)
