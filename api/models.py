"""`GET /v1/models` and `GET /v1/models/<id>`: every usable model, chain and alias."""

from __future__ import annotations

from datetime import datetime

from quart import Blueprint, g
from quart_schema import tag

from api.state import app_state
from api.validation import responds
from engine.errors import NotFound
from engine.schemas.openai_objects import ModelList, ModelObject

blueprint = Blueprint("models", __name__)


def _visible() -> list[tuple[str, str, datetime | None]]:
    """The names the caller's key may use (a name it may not use is not listed)."""
    principal = g.principal
    return [(name, owner, created)
            for name, kind, resource_id, owner, created in app_state().catalog.listing()
            if principal.may(f"{kind}s", resource_id)]


def model_object(name: str, owner: str, created: datetime | None) -> dict:
    return {"id": name, "object": "model", "created": int(created.timestamp()) if created else 0,
            "owned_by": owner}


@blueprint.get("/v1/models")
@tag(["Models"])
@responds(200, ModelList)
async def list_models() -> dict:
    """Models and chains a client may name as `model`, with their aliases."""
    return {"object": "list",
            "data": [model_object(name, owner, created) for name, owner, created in _visible()]}


@blueprint.get("/v1/models/<path:model_id>")
@tag(["Models"])
@responds(200, ModelObject)
async def get_model(model_id: str) -> dict:
    """One model, chain or alias."""
    for name, owner, created in _visible():
        if name == model_id:
            return model_object(name, owner, created)
    raise NotFound(f"The model '{model_id}' does not exist", param="model",
                   code="model_not_found")
