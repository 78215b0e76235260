"""The `videocalls` command: serve, migrate, sweep, dev-token, import, seed-demo, webhooks."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service import clock, logs, strict_json
from service.config import AuthMode, ConfigError, Settings, load_settings
from service.errors import AppError

log = logging.getLogger("service.cli")

# How `serve` runs uvicorn (bench/baseline_app.py uses the same, so they are compared fairly):
# our middleware writes the request log, the server does not announce itself, and a request's
# headers must arrive within BODY_READ_TIMEOUT (service/api/deadlines.py).
UVICORN_OPTIONS: dict[str, Any] = {
    "http": "service.api.deadlines:HeaderDeadlineProtocol",
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
    from service.webhooks import outbox

    db.bind(db.make_database(settings.database_url, settings.db_pool_size))
    outbox.configure(settings.webhooks.enabled)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    logs.configure(settings.log_level)
    if settings.auth_mode is AuthMode.DEV:
        # Anyone holding DEV_AUTH_SECRET can sign in as anyone: never on a reachable address,
        # whatever APP_ENV says (unset, it is development).
        if not _loopback(args.host):
            print(
                f"videocalls: AUTH_MODE=dev is served only on a loopback address, not "
                f"{args.host}: use --host 127.0.0.1, or AUTH_MODE=firebase",
                file=sys.stderr,
            )
            return 2
        log.warning("development authentication (AUTH_MODE=dev): loopback only, never for patients")
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
            # Only these peers' X-Forwarded-For becomes request.client (the throttle, the logs);
            # said here so uvicorn never falls back to reading the environment itself.
            forwarded_allow_ips=",".join(settings.forwarded_allow_ips),
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


def dev_env_file(environ: Mapping[str, str]) -> Path:
    """Where `make run` keeps the development secrets (scripts/dev-run, DATA_DIR moves it)."""
    return Path(environ.get("DATA_DIR") or "data") / "dev.env"


def read_dev_env(path: Path) -> dict[str, str]:
    """`KEY=value` lines as scripts/dev-run writes them; blank lines and comments skipped."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def load_dev_env() -> None:
    """In a checkout where `make run` has run, `dev-token` needs no `. data/dev.env` first.

    Variables already set win; a file that is not a development one is ignored, so this can
    never turn a production shell into a dev-auth one.
    """
    path = dev_env_file(os.environ)
    if os.environ.get("APP_ENV", "development") != "development" or not path.is_file():
        return
    values = read_dev_env(path)
    if values.get("APP_ENV", "development") != "development":
        return
    for key, value in values.items():
        os.environ.setdefault(key, value)


def cmd_dev_token(args: argparse.Namespace) -> int:
    load_dev_env()
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
        with open(args.file, "rb") as fh:
            document = strict_json.loads(fh.read())
    except (OSError, ValueError) as exc:
        print(f"videocalls: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    return _import_document(settings, document)


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from service import directory

    settings = _settings()
    logs.configure(settings.log_level)
    if not args.reset:
        return _import_document(settings, directory.demo_records(clock.today_utc()))
    if settings.is_production:
        print("videocalls: seed-demo --reset is refused when APP_ENV=production", file=sys.stderr)
        return 2
    _bind(settings)
    forgotten = directory.reset_demo(clock.today_utc())
    print(f"demo data reset: {forgotten} demo call(s) removed, appointments loaded as new")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from service import sweeper

    settings = _settings()
    logs.configure(settings.log_level)
    _bind(settings)
    result = sweeper.sweep(settings)
    if not result.ran:
        print("another replica is sweeping; nothing done")
        return 0
    print(f"swept: {result.derived} call(s) derived again, {result.no_shows} marked NO_SHOW")
    return 0


def cmd_webhooks_test(args: argparse.Namespace) -> int:
    from service.webhooks import messages, outbox, sender

    settings = _settings()
    logs.configure(settings.log_level)
    if not settings.webhooks.enabled:
        print("videocalls: WEBHOOK_URL is not set; nothing to test", file=sys.stderr)
        return 2
    message_id = outbox.new_message_id()
    body = outbox.body(messages.TEST, clock.now_ms(), {})
    outcome = sender.deliver_now(settings.webhooks, message_id, messages.TEST, body)
    if outcome.delivered:
        print(f"webhook.test {message_id} delivered: HTTP {outcome.status}")
        return 0
    reason = f"HTTP {outcome.status}" if outcome.status is not None else outcome.error
    print(f"webhook.test {message_id} not delivered: {reason}", file=sys.stderr)
    return 1


def cmd_webhooks_retry_failed(args: argparse.Namespace) -> int:
    from service.webhooks import outbox

    settings = _settings()
    logs.configure(settings.log_level)
    _bind(settings)
    print(f"queued {outbox.retry_failed()} failed webhook message(s) again")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from service import audit

    settings = _settings()
    logs.configure(settings.log_level)
    _bind(settings)
    outside = []
    for path in args.checkpoints:
        try:
            with open(path, encoding="utf-8") as fh:
                outside.extend(audit.read_checkpoints(fh))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"videocalls: cannot read checkpoints from {path}: {exc}", file=sys.stderr)
            return 2
    result = audit.verify(settings, outside)
    if not result.keys_pinned:
        print("warning: no AUDIT_SIGNING_KEY or AUDIT_TRUSTED_KEYS: signatures unpinned")
    if result.failure is not None:
        where = f"entry id {result.failure.entry_id}" if result.failure.entry_id else "trail"
        print(
            f"audit trail does NOT verify at position {result.failure.seq} ({where}): "
            f"{result.failure.reason}"
        )
        return 1
    print(
        f"audit trail verified: {result.entries} entries, head {result.head_hash}, "
        f"{result.checkpoints} checkpoint(s)"
    )
    return 0


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from service import audit

    settings = _settings()
    logs.configure(settings.log_level)
    if not settings.audit_signing_key:
        print("videocalls: AUDIT_SIGNING_KEY is not set; nothing to sign", file=sys.stderr)
        return 2
    _bind(settings)
    point = audit.take_checkpoint(settings)
    if point is None:
        print("no new entries since the last checkpoint")
        return 0
    print(json.dumps(audit.checkpoint_json(point), separators=(",", ":")))
    return 0


def cmd_admin_key(args: argparse.Namespace) -> int:
    import secrets

    from service import operators

    if not operators.NAME.fullmatch(args.name):
        print("videocalls: the name must be lower-case letters, digits, '.', '_' or '-', "
              "starting with a letter", file=sys.stderr)  # fmt: skip
        return 2
    key = secrets.token_urlsafe(32)
    access = "ro" if args.read_only else "rw"
    # The key goes to the operator only; the service's settings hold its hash.
    print(f"key (give it to {args.name}, then forget it): {key}")
    print(f"ADMIN_API_KEYS entry: {args.name}:{access}:{operators.digest(key).hex()}")
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

    seed = sub.add_parser("seed-demo", help="load demo users and appointments")
    seed.add_argument(
        "--reset",
        action="store_true",
        help="also delete the demo appointments' calls, so the demo starts as new",
    )
    seed.set_defaults(func=cmd_seed_demo)
    sub.add_parser(
        "sweep", help="complete calls after the grace period, mark NO_SHOW, close stale sessions"
    ).set_defaults(func=cmd_sweep)

    hooks = sub.add_parser("webhooks", help="webhooks to the clinic's backend (WEBHOOK_URL)")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    hooks_sub.add_parser(
        "test", help="send a signed webhook.test message now and report the answer"
    ).set_defaults(func=cmd_webhooks_test)
    hooks_sub.add_parser(
        "retry-failed", help="queue every failed message again (after fixing the endpoint)"
    ).set_defaults(func=cmd_webhooks_retry_failed)

    key = sub.add_parser(
        "admin-key", help="make a named admin key: prints the key and its ADMIN_API_KEYS entry"
    )
    key.add_argument("name")
    key.add_argument("--read-only", action="store_true", help="reads only (the console)")
    key.set_defaults(func=cmd_admin_key)

    aud = sub.add_parser("audit", help="the audit trail's hash chain and checkpoints")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    verify = aud_sub.add_parser(
        "verify", help="walk the chain, check every checkpoint, name the first entry that fails"
    )
    verify.add_argument(
        "--checkpoints",
        action="append",
        default=[],
        metavar="FILE",
        help="checkpoints kept outside (JSON lines: log lines, webhook bodies or checkpoints)",
    )
    verify.set_defaults(func=cmd_audit_verify)
    aud_sub.add_parser(
        "checkpoint", help="sign and publish a checkpoint of the chain's head now"
    ).set_defaults(func=cmd_audit_checkpoint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
