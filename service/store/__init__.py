"""Persistence: the database connection, the tables, migrations and every query."""
