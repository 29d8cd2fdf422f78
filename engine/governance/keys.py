"""API keys: generation, hashing, storage and authentication.

A key is `pk_live_<43 url-safe chars>` or `pk_test_...`: 32 random bytes from
the OS's CSPRNG. Only its SHA-256 is stored (a key has 256 bits of entropy, so
no salt or slow hash is needed to resist guessing); lookup is by that hash,
and the stored hash is compared in constant time. The first 12 characters are
kept in the clear to recognise a key in lists and logs.

Authentication results are cached per key hash for `cache_ttl_s`, so the hot
path rarely touches the database; a change made through this process clears
the cache at once, one made through another replica applies within the TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from engine.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from engine.logs import get_logger
from engine.schemas.governance import ApiKeyCreate, KeyStatus, Permissions, RateLimits
from engine.store.db import Database
from engine.store.tables import ApiKeyRow
from engine.store.types import utcnow

log = get_logger("headrace.keys")

PREFIX_CHARS = 12
BOOTSTRAP_KEY_ID = "key-bootstrap-admin"


def generate_secret(environment: str = "live") -> str:
    return f"pk_{environment}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def effective_status(row: ApiKeyRow, now: datetime | None = None) -> KeyStatus:
    if row.status == "active" and row.expires_at is not None and row.expires_at <= (
        now or utcnow()
    ):
        return "expired"
    return row.status  # type: ignore[return-value]


def key_body(row: ApiKeyRow) -> dict[str, Any]:
    """The API's view of a key: never the hash."""
    return {
        "id": row.id, "object": "api_key", "name": row.name, "team_id": row.team_id,
        "prefix": row.prefix, "status": effective_status(row), "admin": row.admin,
        "permissions": row.permissions, "rate_limits": row.rate_limits,
        "expires_at": row.expires_at, "last_used_at": row.last_used_at,
        "created_at": row.created_at, "updated_at": row.updated_at, "metadata": row.metadata_,
    }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the authenticated key and what it may do."""

    key_id: str
    name: str
    team_id: str | None
    admin: bool
    permissions: Permissions
    rate_limits: RateLimits

    def may(self, resource_type: str, resource_id: str | None = None) -> bool:
        return self.admin or self.permissions.allows(resource_type, resource_id)

    @classmethod
    def of(cls, row: ApiKeyRow) -> Principal:
        return cls(key_id=row.id, name=row.name, team_id=row.team_id, admin=row.admin,
                   permissions=Permissions.model_validate(row.permissions),
                   rate_limits=RateLimits.model_validate(row.rate_limits))


class KeyStore:
    def __init__(self, db: Database):
        self.db = db

    async def create(self, body: ApiKeyCreate, *, secret: str | None = None,
                     key_id: str | None = None) -> tuple[ApiKeyRow, str]:
        secret = secret or generate_secret(body.environment)
        now = utcnow()
        row = ApiKeyRow(
            id=key_id or f"key-{uuid.uuid4().hex[:20]}", name=body.name, team_id=body.team_id,
            prefix=secret[:PREFIX_CHARS], key_hash=hash_secret(secret), status="active",
            admin=body.admin, permissions=body.permissions.model_dump(mode="json"),
            rate_limits=body.rate_limits.model_dump(mode="json"), metadata_=body.metadata,
            expires_at=body.expires_at, created_at=now, updated_at=now,
        )
        async with self.db.transaction() as session:
            session.add(row)
        return row, secret

    async def get(self, key_id: str) -> ApiKeyRow:
        async with self.db.session() as session:
            row = await session.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFound(f"API key '{key_id}' not found")
        return row

    async def list(self, *, limit: int, offset: int, team_id: str | None = None,
                   status: str | None = None) -> tuple[list[ApiKeyRow], int]:
        query = select(ApiKeyRow)
        if team_id is not None:
            query = query.where(ApiKeyRow.team_id == team_id)
        if status is not None:  # `expired` is computed; filter on the stored status
            query = query.where(ApiKeyRow.status == ("active" if status == "expired" else status))
        async with self.db.session() as session:
            total = (await session.exec(
                select(sa.func.count()).select_from(query.subquery()))).one()
            rows = (await session.exec(
                query.order_by(col(ApiKeyRow.created_at), col(ApiKeyRow.id))
                .limit(limit).offset(offset))).all()
        if status in ("active", "expired"):
            rows = [r for r in rows if effective_status(r) == status]
        return list(rows), total

    async def update(self, key_id: str, changes: dict[str, Any]) -> tuple[ApiKeyRow, ApiKeyRow]:
        """Apply `changes` (column -> value); returns (before, after)."""
        async with self.db.transaction() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"API key '{key_id}' not found")
            before = row.model_copy()
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            session.add(row)
        return before, row

    async def set_status(self, key_id: str, status: KeyStatus) -> tuple[ApiKeyRow, ApiKeyRow]:
        row = await self.get(key_id)
        if row.status == "revoked" and status != "revoked":
            raise Conflict(f"API key '{key_id}' is revoked; a revoked key cannot be reactivated")
        return await self.update(key_id, {"status": status})

    async def delete(self, key_id: str) -> ApiKeyRow:
        async with self.db.transaction() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"API key '{key_id}' not found")
            await session.delete(row)
        return row

    async def by_hash(self, key_hash: str) -> ApiKeyRow | None:
        async with self.db.session() as session:
            return (await session.exec(
                select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))).first()

    async def count_in_team(self, team_id: str) -> int:
        async with self.db.session() as session:
            return (await session.exec(select(sa.func.count()).select_from(ApiKeyRow).where(
                ApiKeyRow.team_id == team_id))).one()

    async def touch(self, last_used: dict[str, datetime]) -> None:
        async with self.db.transaction() as session:
            for key_id, when in last_used.items():
                await session.exec(sa.update(ApiKeyRow).where(col(ApiKeyRow.id) == key_id)
                                   .values(last_used_at=when))

    async def ensure_bootstrap(self, secret: str) -> None:
        """Make `secret` an active admin key (HEADRACE_ADMIN_API_KEY), stored hashed."""
        if len(secret) < 20:
            raise InvalidRequest("HEADRACE_ADMIN_API_KEY must be at least 20 characters")
        try:
            row = await self.get(BOOTSTRAP_KEY_ID)
        except NotFound:
            await self.create(ApiKeyCreate(name="bootstrap admin (HEADRACE_ADMIN_API_KEY)",
                                           admin=True), secret=secret, key_id=BOOTSTRAP_KEY_ID)
            log.info("bootstrap admin key stored", key_id=BOOTSTRAP_KEY_ID,
                     prefix=secret[:PREFIX_CHARS])
            return
        if not hmac.compare_digest(row.key_hash, hash_secret(secret)) or row.status != "active":
            await self.update(BOOTSTRAP_KEY_ID, {
                "key_hash": hash_secret(secret), "prefix": secret[:PREFIX_CHARS],
                "status": "active", "admin": True, "expires_at": None})
            log.info("bootstrap admin key replaced", key_id=BOOTSTRAP_KEY_ID)


@dataclass(slots=True)
class _Cached:
    expires: float
    row: ApiKeyRow | None
    principal: Principal | None = None


@dataclass
class Authenticator:
    keys: KeyStore
    cache_ttl_s: float = 5.0
    touch_interval_s: float = 30.0
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _last_used: dict[str, datetime] = field(default_factory=dict)
    _touched: dict[str, float] = field(default_factory=dict)

    async def authenticate(self, secret: str) -> Principal:
        key_hash = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is None or cached.expires < now:
            row = await self.keys.by_hash(key_hash)
            cached = _Cached(now + self.cache_ttl_s, row)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key_hash] = cached
        row = cached.row
        if row is None or not hmac.compare_digest(row.key_hash, key_hash):
            raise AuthenticationFailed("Invalid API key", code="invalid_api_key")
        status = effective_status(row)
        if status != "active":
            raise AuthenticationFailed(f"API key {row.prefix}… is {status}",
                                       code=f"api_key_{status}")
        if cached.principal is None:
            cached.principal = Principal.of(row)
        self._mark_used(row.id, now)
        return cached.principal

    def _mark_used(self, key_id: str, now: float) -> None:
        # last_used_at is written in batches (flush_last_used), not per request.
        if now - self._touched.get(key_id, 0.0) >= self.touch_interval_s:
            self._touched[key_id] = now
            self._last_used[key_id] = utcnow()

    async def flush_last_used(self) -> None:
        if self._last_used:
            pending, self._last_used = self._last_used, {}
            await self.keys.touch(pending)

    def invalidate(self) -> None:
        self._cache.clear()
