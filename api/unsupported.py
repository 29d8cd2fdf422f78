"""OpenAI endpoints Headrace does not serve answer a clear 400 naming the
endpoint, so a client learns why instead of guessing from a bare 404."""

from __future__ import annotations

from quart import Blueprint, request
from quart_schema import hide

from engine.errors import InvalidRequest

blueprint = Blueprint("unsupported", __name__)

ENDPOINTS = ("audio", "images", "batches", "files", "moderations", "completions",
             "fine_tuning", "assistants", "threads", "vector_stores", "uploads", "realtime")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@hide
async def unsupported(path: str = "") -> None:
    endpoint = request.path.split("/")[2]
    raise InvalidRequest(
        f"The OpenAI endpoint /v1/{endpoint} is not supported by Headrace "
        f"({request.method} {request.path}); supported: /v1/chat/completions, /v1/embeddings, "
        "/v1/models, /v1/responses, /v1/messages",
        code="unsupported_endpoint",
    )


for name in ENDPOINTS:
    blueprint.add_url_rule(f"/v1/{name}", f"unsupported_{name}", unsupported, methods=METHODS)
    blueprint.add_url_rule(f"/v1/{name}/<path:path>", f"unsupported_{name}_sub", unsupported,
                           methods=METHODS)
