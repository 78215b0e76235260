"""Persistence: the database connection, the tables, migrations and the queries (no module
outside service/store runs one: tests/unit/test_sql_in_store.py)."""
