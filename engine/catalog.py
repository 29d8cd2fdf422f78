"""The resources the hot path reads, held in memory.

Requests never query the database for a model, chain, prompt, team or budget:
they read a snapshot that is reloaded every `refresh_s` seconds in the
background (so changes made through another replica arrive within that time)
and at once after a change made through this process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import ValidationError

from engine.errors import InvalidRequest, NotFound
from engine.logs import get_logger
from engine.schemas.governance import BudgetSpec, TeamSpec
from engine.schemas.models import ChainSpec, ModelSpec, ResolvedDeployment, RetryPolicy
from engine.schemas.prompts import PromptSpec
from engine.store import ResourceStore

log = get_logger("headrace.catalog")


@dataclass(frozen=True, slots=True)
class PlanStep:
    model: ModelSpec
    deployments: list[ResolvedDeployment]
    max_retries: int
    max_latency_ms: int | None
    on_failure: Literal["fallback", "fail"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to serve a requested name: one step for a model, one per chain step."""

    target: str
    kind: Literal["model", "chain"]
    steps: list[PlanStep]
    retry: RetryPolicy


@dataclass(frozen=True, slots=True)
class PromptEntry:
    spec: PromptSpec
    version: int


@dataclass(slots=True)
class Snapshot:
    models: dict[str, ModelSpec] = field(default_factory=dict)
    chains: dict[str, ChainSpec] = field(default_factory=dict)
    prompts: dict[str, PromptEntry] = field(default_factory=dict)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    created: dict[tuple[str, str], datetime] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)
    teams: dict[str, TeamSpec] = field(default_factory=dict)
    budgets: list[BudgetSpec] = field(default_factory=list)


class Catalog:
    def __init__(self, store: ResourceStore, *, refresh_s: float = 2.0):
        self.store = store
        self.refresh_s = refresh_s
        self.snapshot = Snapshot()
        self._task: asyncio.Task | None = None
        self._prompt_versions: OrderedDict[tuple[str, int], PromptSpec] = OrderedDict()

    async def load(self) -> None:
        snapshot = Snapshot()
        for kind, schema, target in (
            ("model", ModelSpec, snapshot.models),
            ("chain", ChainSpec, snapshot.chains),
        ):
            for record in await self.store.all(kind):
                try:
                    target[record.id] = schema.model_validate(record.spec)
                except ValidationError as error:
                    log.error("stored resource no longer valid", kind=kind, id=record.id,
                              error=str(error)[:500])
                    continue
                snapshot.created[(kind, record.id)] = record.created_at
        for record in await self.store.all("prompt"):
            snapshot.prompts[record.id] = PromptEntry(
                PromptSpec.model_validate(record.spec), record.version
            )
        for record in await self.store.all("team"):
            snapshot.teams[record.id] = TeamSpec.model_validate(record.spec)
        snapshot.budgets = [BudgetSpec.model_validate(r.spec)
                            for r in await self.store.all("budget")]
        for model in snapshot.models.values():
            for name in (model.id, *model.aliases):
                snapshot.names[name] = ("model", model.id)
        for chain in snapshot.chains.values():
            for name in (chain.id, *chain.aliases):
                snapshot.names[name] = ("chain", chain.id)
        self.snapshot = snapshot

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._refresh_loop(), name="catalog-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _refresh_loop(self) -> None:
        seen = await self.store.fingerprint()
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                current = await self.store.fingerprint()
                if current == seen:
                    continue
                seen = current
                await self.load()
            except Exception as error:  # keep serving the last snapshot
                log.warning("catalog refresh failed", error=f"{type(error).__name__}: {error}")

    # --- lookups on the hot path ---------------------------------------------------------

    def plan(self, name: str, *, kind: Literal["chat", "embedding"] = "chat") -> Plan:
        snapshot = self.snapshot
        plan = snapshot.plans.get(f"{kind}:{name}")
        if plan is None:
            plan = snapshot.plans[f"{kind}:{name}"] = self._build_plan(snapshot, name, kind)
        return plan

    def _build_plan(self, snapshot: Snapshot, name: str, kind: str) -> Plan:
        found = snapshot.names.get(name)
        if found is None:
            raise NotFound(
                f"The model '{name}' does not exist", param="model", code="model_not_found"
            )
        resource_kind, resource_id = found
        if resource_kind == "model":
            model = snapshot.models[resource_id]
            self._check_usable(model, kind)
            step = PlanStep(model, model.endpoints(), model.max_retries, None, "fallback")
            return Plan(model.id, "model", [step], RetryPolicy())
        chain = snapshot.chains[resource_id]
        if not chain.enabled:
            raise InvalidRequest(f"chain '{chain.id}' is disabled", param="model",
                                 code="model_disabled")
        steps = []
        for chain_step in chain.steps:
            target = snapshot.names.get(chain_step.model)
            model = snapshot.models.get(target[1]) if target and target[0] == "model" else None
            if model is None or not model.enabled or model.type != kind:
                continue  # a missing or disabled step is skipped, like a failed one
            steps.append(
                PlanStep(model, model.endpoints(), chain_step.max_retries,
                         chain_step.max_latency_ms, chain_step.on_failure)
            )
        if not steps:
            raise InvalidRequest(
                f"chain '{chain.id}' has no enabled {kind} model", param="model",
                code="model_disabled",
            )
        return Plan(chain.id, "chain", steps, chain.retry)

    @staticmethod
    def _check_usable(model: ModelSpec, kind: str) -> None:
        if not model.enabled:
            raise InvalidRequest(f"model '{model.id}' is disabled", param="model",
                                 code="model_disabled")
        if model.type != kind:
            raise InvalidRequest(
                f"model '{model.id}' is a{'n' if model.type == 'embedding' else ''} "
                f"{model.type} model, not a{'n' if kind == 'embedding' else ''} {kind} model",
                param="model",
                code="wrong_model_type",
            )

    def prompt(self, prompt_id: str) -> PromptEntry:
        entry = self.snapshot.prompts.get(prompt_id)
        if entry is None:
            raise NotFound(f"prompt '{prompt_id}' not found", param="prompt_id")
        return entry

    async def prompt_version(self, prompt_id: str, version: int) -> PromptSpec:
        """An older version of a prompt (versions never change, so they are cached)."""
        key = (prompt_id, version)
        spec = self._prompt_versions.get(key)
        if spec is None:
            record = await self.store.get_version("prompt", prompt_id, version)
            spec = PromptSpec.model_validate(record.spec)
            self._prompt_versions[key] = spec
            if len(self._prompt_versions) > 512:
                self._prompt_versions.popitem(last=False)
        return spec

    def listing(self) -> list[tuple[str, str, str, str, datetime | None]]:
        """(name, kind, id, owner, created) for every usable id and alias, for /v1/models."""
        snapshot = self.snapshot
        rows = []
        for name, (kind, resource_id) in sorted(snapshot.names.items()):
            if kind == "model":
                model = snapshot.models[resource_id]
                if not model.enabled:
                    continue
                owner = model.provider
            else:
                if not snapshot.chains[resource_id].enabled:
                    continue
                owner = "headrace-chain"
            rows.append((name, kind, resource_id, owner,
                         snapshot.created.get((kind, resource_id))))
        return rows
