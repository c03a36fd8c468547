"""Database: engines, SQLModel tables on one metadata, Alembic migrations."""
