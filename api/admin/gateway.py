"""`/admin/models`, `/admin/chains`, `/admin/prompts` and `/admin/credentials`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from quart import Blueprint
from quart_schema import tag

from api.admin.resources import mount
from api.state import app_state
from api.validation import json_body, responds
from engine.errors import InvalidRequest
from engine.prompts import render, variables_of
from engine.schemas.models import ChainSpec, ModelSpec
from engine.schemas.prompts import PromptSpec, RenderRequest, RenderResponse
from engine.validation import parse_spec

blueprint = Blueprint("admin_gateway", __name__)


mount(blueprint, "model", ModelSpec, "models", "Model")
mount(blueprint, "chain", ChainSpec, "chains", "Chain")
mount(blueprint, "prompt", PromptSpec, "prompts", "Prompt")


class DeploymentHealth(BaseModel):
    key: str
    provider: str
    model: str
    enabled: bool
    circuit: Literal["closed", "open", "half_open"]
    in_flight: int
    queued: int
    ewma_latency_ms: float | None


class ModelHealth(BaseModel):
    id: str
    enabled: bool
    routing: str
    deployments: list[DeploymentHealth]


class CredentialReference(BaseModel):
    reference: str
    used_by: list[str]
    resolves: bool
    error: str | None = None


class CredentialSource(BaseModel):
    scheme: str
    description: str


class CredentialsResponse(BaseModel):
    sources: list[CredentialSource]
    references: list[CredentialReference]


@blueprint.get("/admin/models/<id>/health")
@tag(["Models"])
@responds(200, ModelHealth)
async def model_health(id: str) -> dict:
    """Each deployment's circuit state, in-flight calls, queue and recent latency."""
    state = app_state()
    record = await state.resources.get("model", id)
    model = parse_spec(ModelSpec, record.spec)
    deployments = []
    for deployment in model.endpoints():
        runtime = state.router.runtime(deployment)
        deployments.append({
            "key": deployment.key,
            "provider": deployment.provider,
            "model": deployment.model,
            "enabled": deployment.enabled,
            "circuit": str(await state.breakers.state_of(deployment.key)),
            "in_flight": runtime.in_flight,
            "queued": runtime.bulkhead.waiting if runtime.bulkhead else 0,
            "ewma_latency_ms": round(runtime.ewma_s * 1000, 3) if runtime.ewma_s else None,
        })
    return {"id": model.id, "enabled": model.enabled, "routing": model.routing,
            "deployments": deployments}


@blueprint.post("/admin/prompts/<id>/render")
@tag(["Prompts"])
@json_body(RenderRequest)
@responds(200, RenderResponse)
async def render_prompt(id: str, body: RenderRequest) -> dict:
    """Render a prompt (or one of its versions) with variables."""
    state = app_state()
    if body.version is None:
        record = await state.resources.get("prompt", id)
        spec, version = parse_spec(PromptSpec, record.spec), record.version
    else:
        stored = await state.registry.version(state.registry.kind("prompt"), id, body.version)
        spec, version = parse_spec(PromptSpec, stored.spec), stored.version
    try:
        rendered = render(spec.content, body.variables, spec.format)
    except InvalidRequest as error:
        # The engine already names a missing variable `variables.<name>`.
        error.param = error.param or "variables"
        raise
    used = sorted({v.name for v in variables_of(spec.content, spec.format)} & set(body.variables))
    return {"rendered": rendered, "prompt_id": id, "version": version, "variables_used": used}


@blueprint.get("/admin/credentials")
@tag(["Credentials"])
@responds(200, CredentialsResponse)
async def credentials() -> dict:
    """Configured credential sources, and whether each reference models use resolves now.

    Values are never returned: only the reference, who uses it and, if it does
    not resolve, why.
    """
    state = app_state()
    users: dict[str, list[str]] = {}
    for record in await state.resources.all("model"):
        model = ModelSpec.model_validate(record.spec)
        for deployment in model.endpoints():
            if deployment.credentials:
                users.setdefault(deployment.credentials, []).append(deployment.key)
    references = []
    for reference, used_by in sorted(users.items()):
        ok, error = await state.secrets.resolves(reference)
        references.append({"reference": reference, "used_by": used_by, "resolves": ok,
                           "error": error})
    sources = [{"scheme": s.scheme, "description": s.description}
               for s in state.secrets.sources.values()]
    return {"sources": sources, "references": references}

