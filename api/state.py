"""The objects a running app shares between requests, built once in `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from quart import current_app
from redis.asyncio import Redis

from engine.settings import Settings
from engine.store import Database, ResourceStore


@dataclass
class AppState:
    settings: Settings
    db: Database
    resources: ResourceStore
    redis: Redis | None = None


def app_state() -> AppState:
    return current_app.extensions["headrace"]
