"""the distributed task queue's tables (procrastinate), on PostgreSQL only

The schema is the one procrastinate ships for the version pinned in
pyproject.toml; a procrastinate upgrade that changes it comes with a migration
here applying procrastinate's own migration files.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # the embedded runner needs no queue
    from procrastinate.schema import SchemaManager

    schema = SchemaManager.get_schema()
    # Functions and triggers: many statements with `$$` bodies, which only the
    # simple query protocol of the raw driver accepts in one go.
    bind.connection.dbapi_connection.run_async(lambda raw: raw.execute(schema))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.connection.dbapi_connection.run_async(lambda raw: raw.execute(_DROP))


_DROP = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%'
    LOOP EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename); END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
    LOOP EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature); END LOOP;
END $$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
                    procrastinate_job_status CASCADE;
"""
