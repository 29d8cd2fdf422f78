"""Migrations create exactly the schema the models declare, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from quart.testing.app import LifespanError
from sqlmodel import SQLModel

import engine.store.tables  # noqa: F401  (registers the tables)
from api.app import create_app
from engine.errors import ConfigurationError
from engine.settings import Settings
from engine.store import Database
from engine.store.migrate import (
    head_revision,
    headrace_owns,
    require_current_schema,
    schema_state,
    upgrade,
)


async def test_migrated_schema_matches_the_models(database_url: str):
    db = Database(database_url)
    try:
        state = await upgrade(db)
        assert state.current == head_revision() and state.up_to_date

        def diff(conn):
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "include_name": headrace_owns})
            return compare_metadata(context, SQLModel.metadata)

        async with db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert differences == [], f"migrations and models differ: {differences}"
    finally:
        await db.close()


async def test_upgrade_is_idempotent(database_url: str):
    db = Database(database_url)
    try:
        await upgrade(db)
        state = await upgrade(db)
        assert state.up_to_date
    finally:
        await db.close()


async def test_unmigrated_database_is_refused_with_a_clear_message(database_url: str):
    db = Database(database_url)
    try:
        assert (await schema_state(db)).current is None
        with pytest.raises(ConfigurationError, match="headrace migrate"):
            await require_current_schema(db)
    finally:
        await db.close()


async def test_app_refuses_to_start_on_unmigrated_postgres(postgres_url: str, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    assert settings.should_auto_migrate is False
    app = create_app(settings)
    # Quart reports a failed start-up as LifespanError carrying our message.
    with pytest.raises(LifespanError, match="Run `headrace migrate` first"):
        async with app.test_app():
            pass


async def test_app_starts_on_migrated_postgres(postgres_url: str, tmp_path):
    db = Database(postgres_url)
    await upgrade(db)
    await db.close()
    app = create_app(Settings(data_dir=tmp_path, database_url=postgres_url))
    async with app.test_app() as running:
        body = await (await running.test_client().get("/ready")).get_json()
    assert body["checks"]["database"]["status"] == "ok"


async def test_fresh_sqlite_is_migrated_at_start(tmp_path):
    settings = Settings(data_dir=tmp_path / "new")
    assert settings.should_auto_migrate is True
    async with create_app(settings).test_app():
        pass
    db = Database(settings.resolved_database_url)
    assert (await schema_state(db)).up_to_date
    await db.close()


async def test_the_task_queue_tables_come_and_go_with_their_migration(postgres_url: str):
    import sqlalchemy as sa

    from engine.store.migrate import alembic_config

    db = Database(postgres_url)

    async def queue_tables() -> set[str]:
        async with db.session() as session:
            rows = await session.exec(sa.text(  # type: ignore[call-overload]
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate%'"))
            return {name for (name,) in rows.all()}

    def downgrade_to(revision: str):
        from alembic import command

        def run(conn):
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
        return run

    try:
        await upgrade(db)
        assert {"procrastinate_jobs", "procrastinate_workers"} <= await queue_tables()
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to("0007"))
        assert await queue_tables() == set()
        await upgrade(db)  # and back: nothing was left behind to collide with
        assert "procrastinate_jobs" in await queue_tables()
    finally:
        await db.close()
