"""API keys, teams, rate limits, permissions and budgets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from engine.schemas.common import ResourceId, Strict, Timestamp

KeyStatus = Literal["active", "suspended", "revoked", "expired"]
ResourceType = Literal["models", "chains", "prompts", "knowledge_bases", "workflows"]
RESOURCE_TYPES: tuple[str, ...] = ("models", "chains", "prompts", "knowledge_bases", "workflows")
# "all", "none", or the ids allowed.
Permission = Literal["all", "none"] | list[ResourceId]


class Permissions(Strict):
    models: Permission = "all"
    chains: Permission = "all"
    prompts: Permission = "all"
    knowledge_bases: Permission = "all"
    workflows: Permission = "all"

    def allows(self, resource_type: str, resource_id: str | None = None) -> bool:
        granted = getattr(self, resource_type)
        if granted == "all":
            return True
        if granted == "none":
            return False
        return resource_id is None or resource_id in granted


class RateLimits(Strict):
    """Unset means unlimited."""

    requests_per_minute: int | None = Field(None, ge=1)
    requests_per_hour: int | None = Field(None, ge=1)
    requests_per_day: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)

    def is_empty(self) -> bool:
        # On every request: plain attribute reads, not a model_dump.
        return (self.requests_per_minute is None and self.requests_per_hour is None
                and self.requests_per_day is None and self.tokens_per_minute is None
                and self.max_concurrent is None)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    team_id: ResourceId | None = None
    admin: bool = False
    environment: Literal["live", "test"] = Field("live", description="pk_live_ or pk_test_")
    permissions: Permissions = Field(default_factory=Permissions)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    expires_at: Timestamp | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ApiKeyUpdate(Strict):
    """A merge patch: fields not given keep their value."""

    name: str | None = Field(None, min_length=1, max_length=200)
    team_id: ResourceId | None = None
    admin: bool | None = None
    permissions: Permissions | None = None
    rate_limits: RateLimits | None = None
    expires_at: Timestamp | None = None
    metadata: dict[str, Any] | None = None


class ApiKey(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    team_id: str | None
    prefix: str = Field(description="The first characters of the secret, for recognising it")
    status: KeyStatus
    admin: bool
    permissions: Permissions
    rate_limits: RateLimits
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]


class ApiKeyCreated(ApiKey):
    secret: str = Field(description="The key itself. Shown only in this response; store it now.")


class TeamSpec(Strict):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    metadata: dict[str, Any] = Field(default_factory=dict)


class BudgetSpec(Strict):
    id: ResourceId
    name: str | None = Field(None, max_length=200)
    scope: Literal["key", "team"]
    scope_id: str = Field(min_length=1, max_length=64, description="The key id or team id")
    amount_usd: float = Field(gt=0, description="Spend allowed per period")
    period: Literal["daily", "weekly", "monthly", "lifetime"] = "monthly"
    soft_limit: float = Field(0.8, gt=0, le=1, description="Fraction that logs an alert")
    hard_limit: bool = Field(True, description="Refuse requests once spent (else alert only)")
    enabled: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)
