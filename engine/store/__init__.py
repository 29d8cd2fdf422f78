"""Relational storage: SQLModel tables, async repositories, migrations.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is selected
by URL. Both are migrated by the Alembic scripts in `migrations/`.
"""

from engine.store.db import Database
from engine.store.resources import ResourceRecord, ResourceStore

__all__ = ["Database", "ResourceRecord", "ResourceStore"]
