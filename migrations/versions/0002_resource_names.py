"""names (ids and aliases) unique across models and chains

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "resource_names",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_resource_names")),
    )
    op.create_index(op.f("ix_resource_names_id"), "resource_names", ["id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_resource_names_id"), table_name="resource_names")
    op.drop_table("resource_names")
