"""Demo resources (`headrace seed`): models, a fallback chain, prompts, a knowledge
base and the answer-with-context RAG workflow."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from engine.errors import InvalidRequest, NotFound
from engine.registry import Registry, dump
from engine.validation import parse_spec

SEED_FILE = Path(__file__).with_name("seed.yaml")
# Models before chains: a chain's steps must name existing models.
ORDER = ("prompt", "model", "chain", "knowledge_base", "workflow")
SECTIONS = {"prompts": "prompt", "models": "model", "chains": "chain",
            "knowledge_bases": "knowledge_base", "workflows": "workflow"}


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_seed(path: Path) -> dict[str, list[dict]]:
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise InvalidRequest(f"{path}: unknown sections {sorted(unknown)}; "
                             f"expected {sorted(SECTIONS)}")
    return {SECTIONS[name]: items or [] for name, items in data.items()}


async def seed(registry: Registry, path: Path = SEED_FILE) -> SeedReport:
    """Create each resource, or update it to the file's version if it exists."""
    report = SeedReport()
    sections = read_seed(path)
    for kind_name in ORDER:
        kind = registry.kind(kind_name)
        for index, item in enumerate(sections.get(kind_name, [])):
            try:
                spec = parse_spec(kind.schema, item)
            except InvalidRequest as error:
                raise InvalidRequest(f"{path}: {kind_name} #{index + 1}: {error.message}") from None
            label = f"{kind_name} {spec.id}"  # type: ignore[attr-defined]
            try:
                current = await registry.get(kind, spec.id)  # type: ignore[attr-defined]
            except NotFound:
                await registry.create(kind, spec, actor="seed")
                report.created.append(label)
                continue
            if current.spec == dump(spec):
                report.unchanged.append(label)
            else:  # replace it with the file's version, keeping the history
                await registry.replace(kind, spec, actor="seed")
                report.updated.append(label)
    return report
