"""`knowledge_base_search` step through the injected `StepServices.search`.

Output: {"documents": [{id, document_id, content, score, metadata,
chunk_index}], "count": N}, as the search endpoint answers. Input (recorded):
{"knowledge_base_id", "query", "top_k", "similarity_threshold", "filter", "hybrid"}.
"""

from __future__ import annotations

from typing import Any

from engine.schemas.knowledge import SearchRequest
from engine.workflows.references import compile_value
from engine.workflows.schema import KnowledgeBaseSearchStep
from engine.workflows.steps.base import StepContext, StepRunner


def compile_step(step: KnowledgeBaseSearchStep) -> StepRunner:
    kb_id = compile_value(step.knowledge_base_id)
    fields = compile_value({"query": step.query, "top_k": step.top_k,
                            "similarity_threshold": step.similarity_threshold,
                            "filter": step.filter, "hybrid": step.hybrid})

    async def run(ctx: StepContext) -> dict[str, Any]:
        services = ctx.require_services()
        knowledge_base_id = str(kb_id.render(ctx.scope))
        rendered = fields.render(ctx.scope)
        ctx.input = {"knowledge_base_id": knowledge_base_id, **rendered}
        request = SearchRequest.model_validate(rendered)
        ctx.input = {"knowledge_base_id": knowledge_base_id,
                     **request.model_dump(mode="json")}
        documents = list(await services.search(knowledge_base_id, request))
        return {"documents": documents, "count": len(documents)}

    return run
