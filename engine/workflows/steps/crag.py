"""`crag_scoring` step (Corrective RAG): grade retrieved documents.

Strategies:
- `threshold`: the similarity `score` of each document against the bands:
  >= correct_threshold is correct, < ambiguous_threshold incorrect, between
  ambiguous (`threshold` sets both bounds: no ambiguous band).
- `llm`: an LLM judge (structured output: relevance 0..1 and a reason) scores
  every document concurrently; its relevance is classified with the same bands.
- `hybrid` (default): the similarity bands first; only the ambiguous band goes
  to the LLM judge.

Output: correct_documents / ambiguous_documents / incorrect_documents (each
document with `score`, `relevance`, `classification`, `reason`), `summary`
(counts and percentages), `needs_correction` (no correct document) and
`should_try_web_search` (no correct and no ambiguous document). With
`refine`, correct documents get `refined_content`: their sentences sharing a
word with the query.

Input (recorded): what it scored: {"query", "strategy", "correct_threshold",
"ambiguous_threshold", "model_id" (the judge, unless threshold), "documents"
(as received, before grading)}.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from engine.errors import InvalidRequest, UpstreamError
from engine.schemas.chat import ChatCompletionRequest
from engine.workflows.references import compile_value
from engine.workflows.schema import CragScoringStep
from engine.workflows.steps.base import StepContext, StepRunner
from engine.workflows.steps.chat import message_content

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"relevance": {"type": "number", "minimum": 0, "maximum": 1},
                   "reason": {"type": "string"}},
    "required": ["relevance", "reason"],
    "additionalProperties": False,
}
JUDGE_SYSTEM = (
    "You grade whether a retrieved document helps answer a question. Answer with "
    "relevance between 0 (irrelevant) and 1 (fully answers it) and a one-sentence reason.")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w{3,}")


def classify(score: float, correct: float, ambiguous: float) -> str:
    if score >= correct:
        return "correct"
    if score < ambiguous:
        return "incorrect"
    return "ambiguous"


def refine(content: str, query: str) -> str:
    terms = {w.lower() for w in _WORD.findall(query)}
    kept = [s for s in _SENTENCE.split(content)
            if terms & {w.lower() for w in _WORD.findall(s)}]
    return " ".join(kept)


def compile_step(step: CragScoringStep, default_documents: str | None) -> StepRunner:
    source = step.input_documents or default_documents
    if source is None:
        raise InvalidRequest("crag_scoring needs input_documents (no earlier "
                             "knowledge_base_search step)", param="input_documents")
    documents_value = compile_value(source)
    query_value = compile_value(step.query)
    correct, ambiguous = step.correct_threshold, step.ambiguous_threshold
    strategy = step.strategy
    response_format = {"type": "json_schema", "json_schema": {
        "name": "relevance", "schema": JUDGE_SCHEMA, "strict": True}}

    async def judge(ctx: StepContext, query: str, document: dict[str, Any],
                    limit: asyncio.Semaphore) -> tuple[float, str]:
        if step.prompt_id is not None:
            messages = [{"role": "user", "prompt_id": step.prompt_id,
                         "variables": {"query": query, "document": document.get("content", "")}}]
        else:
            messages = [{"role": "system", "content": JUDGE_SYSTEM},
                        {"role": "user", "content": f"Question: {query}\n\nDocument:\n"
                                                    f"{document.get('content', '')}"}]
        request = ChatCompletionRequest.model_validate(
            {"model": step.model_id, "messages": messages, "temperature": 0.0,
             "response_format": response_format})
        async with limit:
            response = await ctx.require_services().chat(request)
        ctx.add_usage(response)
        content, _ = message_content(response)
        try:
            verdict = json.loads(content)
            return float(verdict["relevance"]), str(verdict.get("reason", ""))
        except (ValueError, KeyError, TypeError):
            raise UpstreamError("the CRAG judge's answer is not {relevance, reason} "
                                "JSON") from None

    async def run(ctx: StepContext) -> dict[str, Any]:
        documents = documents_value.render(ctx.scope)
        if documents is None:
            documents = []
        query = str(query_value.render(ctx.scope) or "")
        ctx.input = {"query": query, "strategy": strategy, "correct_threshold": correct,
                     "ambiguous_threshold": ambiguous,
                     **({"model_id": step.model_id} if strategy != "threshold" else {}),
                     "documents": documents}
        if not isinstance(documents, list):
            raise InvalidRequest("input_documents must resolve to a list of documents")
        graded = []
        for document in documents:
            document = dict(document) if isinstance(document, dict) else {"content": document}
            score = _score(document)
            graded.append({**document, "score": score, "relevance": None,
                           "classification": classify(score, correct, ambiguous),
                           "reason": f"similarity {score:.3f}"})
        to_judge = graded if strategy == "llm" else (
            [d for d in graded if d["classification"] == "ambiguous"]
            if strategy == "hybrid" else [])
        if to_judge:
            limit = asyncio.Semaphore(step.max_concurrency)
            verdicts = await asyncio.gather(*(judge(ctx, query, d, limit) for d in to_judge))
            for document, (relevance, reason) in zip(to_judge, verdicts, strict=True):
                document.update(relevance=relevance, reason=reason,
                                classification=classify(relevance, correct, ambiguous))
        groups: dict[str, list[dict[str, Any]]] = {"correct": [], "ambiguous": [],
                                                   "incorrect": []}
        for document in graded:
            groups[document["classification"]].append(document)
        if step.refine:
            for document in groups["correct"]:
                document["refined_content"] = refine(str(document.get("content", "")), query)
        total = len(graded)
        summary: dict[str, Any] = {"total": total}
        for name, items in groups.items():
            summary[name] = len(items)
            summary[f"{name}_percentage"] = round(100 * len(items) / total, 2) if total else 0.0
        return {"correct_documents": groups["correct"],
                "ambiguous_documents": groups["ambiguous"],
                "incorrect_documents": groups["incorrect"],
                "summary": summary,
                "needs_correction": not groups["correct"],
                "should_try_web_search": not groups["correct"] and not groups["ambiguous"]}

    return run


def _score(document: dict[str, Any]) -> float:
    try:
        return float(document.get("score") or 0.0)
    except (TypeError, ValueError):
        return 0.0
