"""Database engine, table models and migrations."""
