"""Alembic environment. Runs inside Headrace's own async engine when called from
`engine.store.migrate` (the connection is passed in `config.attributes`), or on
its own from the `alembic` command line with `sqlalchemy.url` or
`HEADRACE_DATABASE_URL`."""

import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import engine.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from engine.settings import Settings, normalise_database_url
from engine.store.migrate import headrace_owns

config = context.config
target_metadata = SQLModel.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=headrace_owns,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("HEADRACE_DATABASE_URL")
    url = normalise_database_url(url) if url else Settings().resolved_database_url
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_configure)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
elif context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_standalone())
