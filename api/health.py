"""Probes: `/live` (the process answers), `/ready` (dependencies answer), `/health`."""

from __future__ import annotations

import asyncio
from typing import Literal

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel
from quart import Blueprint, Response

import engine
from api.state import app_state
from api.validation import public, responds, responds_text
from connectors.state.redis import ping as redis_ping
from engine.store.migrate import schema_state

blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_S = 2.0


class HealthResponse(BaseModel):
    status: Literal["healthy"]
    version: str


class LiveResponse(BaseModel):
    status: Literal["alive"]


class Check(BaseModel):
    status: Literal["ok", "failed", "disabled", "degraded"]
    detail: str | None = None


class ReadyResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    reason: str | None = None
    checks: dict[str, Check]


@blueprint.get("/health")
@public
@responds(200, HealthResponse)
async def health() -> dict:
    """Service health and version."""
    return {"status": "healthy", "version": engine.__version__}


@blueprint.get("/live")
@public
@responds(200, LiveResponse)
async def live() -> dict:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "alive"}


async def _check_database() -> Check:
    state = await schema_state(app_state().db)
    if not state.up_to_date:
        return Check(
            status="failed",
            detail=f"schema at {state.current or 'nothing'}, needs {state.head}",
        )
    return Check(status="ok")


async def _check_redis() -> Check:
    """Redis down is degraded, not unready: limits, budgets and breakers carry on in
    process (per replica) until it is back, so the replica keeps taking traffic."""
    state = app_state()
    if state.redis is None:
        return Check(status="disabled")
    degraded = [
        f"{name} in process ({getattr(part, 'last_error', None) or 'Redis unreachable'})"
        for name, part in (("shared state", state.parts.state if state.parts else None),
                           ("rate limits", state.gov.limiter if state.gov else None),
                           ("budgets", state.gov.budgets.ledger if state.gov else None))
        if getattr(part, "degraded", False)
    ]
    try:
        await asyncio.wait_for(redis_ping(state.redis), CHECK_TIMEOUT_S)
    except Exception as exc:
        degraded.insert(0, f"Redis unreachable: {type(exc).__name__}"[:200])
    if degraded:
        return Check(status="degraded", detail="; ".join(degraded))
    return Check(status="ok")


async def _run(check) -> Check:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return Check(status="failed", detail=f"no answer within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:  # any failure means not ready; the reason is reported
        return Check(status="failed", detail=f"{type(exc).__name__}: {exc}"[:300])


@blueprint.get("/ready")
@public
@responds(200, ReadyResponse)
@responds(503, ReadyResponse)
async def ready() -> tuple[dict, int]:
    """Readiness: the store and any configured Redis answer; 503 with the reason if not."""
    names = ("database", "redis")
    results = await asyncio.gather(_run(_check_database), _run(_check_redis))
    checks = dict(zip(names, results, strict=True))
    failed = [f"{name}: {c.detail}" for name, c in checks.items() if c.status == "failed"]
    body = ReadyResponse(
        status="not_ready" if failed else "ready",
        reason="; ".join(failed) or None,
        checks=checks,
    )
    return body.model_dump(), 503 if failed else 200


@blueprint.get("/metrics")
@public
@responds_text(200, "text/plain", "Prometheus text exposition format")
async def prometheus_metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
