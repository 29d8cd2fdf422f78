"""`POST /v1/embeddings`."""

from __future__ import annotations

import base64
import struct
from typing import Any

from quart import Blueprint
from quart_schema import tag

from api.gateway_headers import gateway_headers
from api.jsonio import json_response
from api.state import app_state
from api.validation import json_body, responds
from engine.schemas.chat import EmbeddingRequest
from engine.schemas.openai_objects import EmbeddingList

blueprint = Blueprint("embeddings", __name__)


def to_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@blueprint.post("/v1/embeddings")
@tag(["Embeddings"])
@json_body(EmbeddingRequest)
@responds(200, EmbeddingList)
async def embeddings(body: EmbeddingRequest) -> Any:
    """Embed text with an embedding model or chain (OpenAI-compatible)."""
    result, report = await app_state().gateway.embed(body)
    if body.encoding_format == "base64":
        for item in result.get("data", []):
            if isinstance(item.get("embedding"), list):
                item["embedding"] = to_base64(item["embedding"])
    return json_response(result, headers=gateway_headers(report))
