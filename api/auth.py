"""Authentication, admin checks and rate limits for every `/v1` and `/admin` request.

Runs before routing reaches a view, so handlers only see authenticated
callers: the principal is in `g.principal`. Evaluate (who is it, may it use
this surface) and decide (rate limits) happen here; resource permissions,
budgets and usage accounting happen where the resource is known (the gateway
routes), through the same governance object.
"""

from __future__ import annotations

import structlog
from quart import Quart, Response, g, request

from api.state import app_state
from engine.errors import AuthenticationFailed, PermissionDenied
from engine.governance.audit import actor_var
from engine.governance.pipeline import (
    AdmissionHolder,
    admission_var,
    calls_var,
    principal_var,
)

PROTECTED_PREFIXES = ("/v1/", "/admin/")


def key_from_headers() -> str | None:
    authorization = request.headers.get("Authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = request.headers.get("X-API-Key") or request.headers.get("x-api-key")
    return value.strip() if value and value.strip() else None


def install_auth(app: Quart) -> None:
    @app.before_request
    async def _authenticate() -> None:
        # Unknown routes fall through to their 404; probes, docs and the console
        # are public.
        if request.url_rule is None or not request.path.startswith(PROTECTED_PREFIXES):
            return
        secret = key_from_headers()
        if secret is None:
            raise AuthenticationFailed(
                "Missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                code="missing_api_key",
            )
        governance = app_state().governance
        principal = await governance.authenticate(secret)
        if request.path.startswith("/admin/") and not principal.admin:
            raise PermissionDenied(f"API key {principal.key_id} is not an admin key; "
                                   "/admin routes need one", code="admin_required")
        g.principal = principal
        principal_var.set(principal)
        calls_var.set([0])
        actor_var.set(principal.key_id)
        structlog.contextvars.bind_contextvars(key_id=principal.key_id)
        admission = await governance.admit(principal)
        g.admission = AdmissionHolder(admission)
        g.rate_headers = admission.headers
        admission_var.set(g.admission)

    @app.after_request
    async def _rate_limit_headers(response: Response) -> Response:
        headers = g.get("rate_headers")
        if headers:
            response.headers.update(headers)
        return response

    @app.teardown_request
    async def _release(_exc: BaseException | None) -> None:
        # A stream takes the admission over and releases it when it ends
        # (GovernedStream); otherwise the request's end gives its slot back.
        holder = g.pop("admission", None)
        admission = holder.take() if holder is not None else None
        if admission is not None:
            await admission.release()
