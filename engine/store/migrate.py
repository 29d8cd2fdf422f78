"""Run and check Alembic migrations from inside Headrace's async engine."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from engine.errors import ConfigurationError
from engine.store.db import Database


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    return config


def headrace_owns(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: the task queue's tables belong to procrastinate
    (created by its own SQL in migration 0008), not to Headrace's models."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


async def schema_state(db: Database) -> SchemaState:
    def current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.engine.connect() as conn:
        revision = await conn.run_sync(current)
    return SchemaState(current=revision, head=head_revision())


async def upgrade(db: Database, revision: str = "head") -> SchemaState:
    config = alembic_config()

    def run(conn: Connection) -> None:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
    return await schema_state(db)


async def require_current_schema(db: Database) -> None:
    """Refuse to serve on a database the migrations have not brought to head."""
    state = await schema_state(db)
    if state.up_to_date:
        return
    found = state.current or "an empty database (no migrations applied)"
    raise ConfigurationError(
        f"database {db.display_url} is at {found}, but this Headrace needs "
        f"revision {state.head}. Run `headrace migrate` first "
        "(or set HEADRACE_AUTO_MIGRATE=true)."
    )
