"""Teams and budgets as registry kinds, with their rules across resources."""

from __future__ import annotations

from pydantic import BaseModel

from engine.errors import Conflict, InvalidRequest, NotFound
from engine.governance.keys import KeyStore
from engine.registry import Kind, Registry
from engine.schemas.governance import BudgetSpec, TeamSpec


def governance_kinds(keys: KeyStore) -> list[Kind]:
    async def team_unused(registry: Registry, team_id: str) -> None:
        count = await keys.count_in_team(team_id)
        if count:
            raise Conflict(f"team '{team_id}' still has {count} API key(s); move or delete "
                           "them first")
        users = [r.id for r in await registry.store.all("budget")
                 if r.spec.get("scope") == "team" and r.spec.get("scope_id") == team_id]
        if users:
            raise Conflict(f"team '{team_id}' has budgets: {', '.join(users)}")

    async def scope_exists(registry: Registry, spec: BaseModel) -> None:
        assert isinstance(spec, BudgetSpec)
        try:
            if spec.scope == "team":
                await registry.store.get("team", spec.scope_id)
            else:
                await keys.get(spec.scope_id)
        except NotFound:
            raise InvalidRequest(f"scope_id: no {spec.scope} '{spec.scope_id}'",
                                 param="scope_id") from None

    return [
        Kind("team", TeamSpec, delete_checks=[team_unused]),
        Kind("budget", BudgetSpec, checks=[scope_exists]),
    ]
