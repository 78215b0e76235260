"""The `videocalls` command: serve, migrate, sweep, dev-token, import, seed-demo."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

from service import clock, logs
from service.config import AuthMode, ConfigError, Settings, load_settings
from service.errors import AppError

log = logging.getLogger("service.cli")

# How `serve` runs uvicorn (bench/baseline_app.py uses the same, so they are compared fairly):
# our middleware writes the request log, and the server does not announce itself.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "proxy_headers": True,
    "server_header": False,
}


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"videocalls: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _bind(settings: Settings) -> None:
    from service.store import db

    db.bind(db.make_database(settings.database_url, settings.db_pool_size))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    logs.configure(settings.log_level)
    _bind(settings)
    from service.store.migrate import pending

    waiting = pending()
    if waiting:
        print(
            f"videocalls: database has pending migrations {waiting}; run `videocalls migrate`",
            file=sys.stderr,
        )
        return 2
    metrics_dir = _metrics_dir(settings)
    try:
        uvicorn.run(
            "service.app:factory",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            **UVICORN_OPTIONS,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir(settings: Settings) -> str | None:
    """With METRICS_TOKEN, the workers share their samples through a fresh directory."""
    if not settings.metrics_token:
        return None
    # prometheus_client picks multiprocess mode when it is first imported, so the directory
    # is exported before anything imports it: this process (one worker) and every worker.
    path = tempfile.mkdtemp(prefix="videocalls-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    # uvicorn re-raises the SIGTERM it shut down for; leaving through Python instead of the
    # signal's default action runs `serve`'s cleanup, which removes the folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return path


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    logs.configure(settings.log_level)
    _bind(settings)
    from service.store.migrate import migrate

    applied = migrate()
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def cmd_dev_token(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.auth_mode is not AuthMode.DEV:
        print("videocalls: dev-token works only with AUTH_MODE=dev", file=sys.stderr)
        return 2
    from service.auth.dev import mint_dev_token

    print(mint_dev_token(settings, args.uid))
    return 0


def _import_document(settings: Settings, document: Any) -> int:
    from service import directory

    _bind(settings)
    try:
        users, appointments = directory.import_records(document)
    except AppError as exc:
        print(f"videocalls: import refused, nothing written: {exc.message}", file=sys.stderr)
        return 1
    print(f"imported {users} user(s) and {appointments} appointment(s)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = _settings()
    logs.configure(settings.log_level)
    try:
        with open(args.file, encoding="utf-8") as fh:
            document = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"videocalls: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    return _import_document(settings, document)


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from service import directory

    settings = _settings()
    logs.configure(settings.log_level)
    return _import_document(settings, directory.demo_records(clock.today_utc()))


def cmd_sweep(args: argparse.Namespace) -> int:
    from service import tracking

    settings = _settings()
    logs.configure(settings.log_level)
    _bind(settings)
    result = tracking.sweep(settings)
    if not result.ran:
        print("another replica is sweeping; nothing done")
        return 0
    print(f"swept: {result.derived} call(s) derived again, {result.no_shows} marked NO_SHOW")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videocalls", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(
        func=cmd_migrate
    )

    token = sub.add_parser("dev-token", help="print a dev ID token (AUTH_MODE=dev only)")
    token.add_argument("--uid", required=True)
    token.set_defaults(func=cmd_dev_token)

    imp = sub.add_parser("import", help="upsert users and appointments from a JSON file")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)

    sub.add_parser("seed-demo", help="load demo users and appointments").set_defaults(
        func=cmd_seed_demo
    )
    sub.add_parser(
        "sweep", help="complete calls after the grace period, mark NO_SHOW, close stale sessions"
    ).set_defaults(func=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
