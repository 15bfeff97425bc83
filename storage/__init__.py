"""Persistence: SQLModel tables, the unit of work and Alembic migrations (SQLite by default, PostgreSQL too)."""
