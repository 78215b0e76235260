"""`make bench`: the service against a bare Starlette baseline, on SQLite and PostgreSQL.

`python -m bench` runs every scenario with wrk and writes docs/benchmarks.md.
"""
