"""`/admin/usage` (usage and cost, aggregated) and `/admin/budgets` (CRUD and status)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from quart import Blueprint
from quart_schema import tag

from api.admin.resources import mount
from api.state import app_state
from api.validation import query_args, responds
from engine.governance.usage import UsageQuery
from engine.schemas.common import iso_only
from engine.schemas.governance import BudgetSpec
from engine.validation import parse_spec

blueprint = Blueprint("admin_usage", __name__)

mount(blueprint, "budget", BudgetSpec, "budgets", "Budget")


_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class UsageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str | None = Field(None, min_length=1, max_length=64, pattern=_PRINTABLE)
    team_id: str | None = Field(None, min_length=1, max_length=64, pattern=_PRINTABLE)
    model: str | None = Field(None, min_length=1, max_length=128, pattern=_PRINTABLE)
    start: datetime | None = Field(
        None, description="ISO 8601 date or datetime, inclusive (UTC if no offset)")
    end: datetime | None = Field(
        None, description="ISO 8601 date or datetime, exclusive (UTC if no offset)")
    group_by: Literal["none", "hour", "day", "model", "key", "team"] = "none"
    limit: int = Field(1000, ge=1, le=10_000, description="Most groups returned")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        # "2026-11-25" means that day's midnight UTC; pydantic wants a time part.
        value = iso_only(value)
        if isinstance(value, str) and len(value) == 10:
            return f"{value}T00:00:00Z"
        return value

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range") from None

    @model_validator(mode="after")
    def _order(self) -> UsageParams:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class UsageTotals(BaseModel):
    requests: int
    errors: int = Field(description="Requests that did not end with status ok")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    avg_latency_ms: float | None = Field(description="Mean time per request; None if none")


class UsageGroup(UsageTotals):
    key: str | None = Field(
        description="The hour (YYYY-MM-DDThh:00:00Z), day (YYYY-MM-DD), model, key id or team id")


class UsageFilters(BaseModel):
    key_id: str | None
    team_id: str | None
    model: str | None
    start: str | None
    end: str | None


class UsageReport(BaseModel):
    object: Literal["usage"] = "usage"
    filters: UsageFilters
    group_by: str
    totals: UsageTotals
    groups: list[UsageGroup]


class BudgetStatus(BaseModel):
    object: Literal["budget_status"] = "budget_status"
    id: str
    scope: Literal["key", "team"]
    scope_id: str
    period: str
    enabled: bool
    hard_limit: bool
    amount_usd: float
    spent_usd: float = Field(description="Cost settled in the current period")
    reserved_usd: float = Field(description="Estimates held by requests in flight")
    remaining_usd: float
    percent: float = Field(description="spent / amount, in percent")
    state: Literal["ok", "soft_limit", "exhausted"]
    period_start: datetime
    period_end: datetime | None = Field(description="None for lifetime budgets")


@blueprint.get("/admin/usage")
@tag(["Usage"])
@query_args(UsageParams)
@responds(200, UsageReport)
async def usage(query: UsageParams) -> dict:
    """Requests, tokens and cost, filtered by key, team, model and time, with totals and
    optional groups by hour or day (UTC), model, key or team."""
    state = app_state()
    return await UsageQuery(state.db).query(
        key_id=query.key_id, team_id=query.team_id, model=query.model,
        start=query.start, end=query.end, group_by=query.group_by, limit=query.limit,
    )


@blueprint.get("/admin/budgets/<id>/status")
@tag(["Budgets"])
@responds(200, BudgetStatus)
async def budget_status(id: str) -> dict:
    """Spend, reservations in flight and what remains of a budget in its current period."""
    state = app_state()
    record = await state.resources.get("budget", id)
    return await state.budgets.status(parse_spec(BudgetSpec, record.spec))
