"""Knowledge bases as a registry kind."""

from __future__ import annotations

from pydantic import BaseModel

from engine.errors import InvalidRequest
from engine.knowledge.service import KnowledgeService
from engine.registry import Kind, Registry
from engine.schemas.knowledge import LOCAL_EMBEDDING_MODEL, KnowledgeBaseSpec
from engine.schemas.models import ModelSpec
from engine.store.resources import ResourceRecord


async def _embedding_model_exists(registry: Registry, spec: BaseModel) -> None:
    assert isinstance(spec, KnowledgeBaseSpec)
    name = spec.embedding.model
    if name == LOCAL_EMBEDDING_MODEL:
        return
    found = await registry.store.resolve_name(name)
    if found is None or found[0] != "model":
        raise InvalidRequest(f"embedding.model: no model is named '{name}' (or use "
                             f"{LOCAL_EMBEDDING_MODEL})", param="embedding.model")
    model = ModelSpec.model_validate((await registry.store.get("model", found[1])).spec)
    if model.type != "embedding":
        raise InvalidRequest(f"embedding.model: '{name}' is a {model.type} model",
                             param="embedding.model")
    if model.dimensions is not None and model.dimensions != spec.embedding.dimensions:
        raise InvalidRequest(
            f"embedding.dimensions: model '{name}' has {model.dimensions} dimensions",
            param="embedding.dimensions")


def knowledge_kinds(knowledge: KnowledgeService) -> list[Kind]:
    async def drop_contents(_: Registry, record: ResourceRecord) -> None:
        await knowledge.delete_all(KnowledgeBaseSpec.model_validate(record.spec))

    return [Kind("knowledge_base", KnowledgeBaseSpec, checks=[_embedding_model_exists],
                 after_delete=[drop_contents])]
