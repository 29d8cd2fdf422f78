"""Alembic migrations for SQLite and PostgreSQL (run with `headrace migrate`)."""
