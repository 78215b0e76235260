#!/bin/sh
# Container entry point: `serve` (the default) applies the database migrations once, then starts
# the service; any other arguments run that videocalls command (migrate, import, sweep, ...).
set -eu

workers=${VIDEOCALLS_WORKERS:-2}
attempts=20

# SQLite on a bind mount: a folder Docker created is owned by root, and the service runs as
# uid 10001. Say so in one line instead of failing later inside the migration.
check_sqlite_folder() {
  case "${DATABASE_URL:-}" in
    sqlite:///*)
      path=${DATABASE_URL#sqlite:///}
      folder=$(dirname -- "$path")
      if [ ! -w "$folder" ]; then
        echo "videocalls: cannot write $folder (uid $(id -u)); on the host run: chown 10001:10001 <the folder mounted at $folder>" >&2
        exit 1
      fi
      ;;
  esac
}

# Retried because PostgreSQL (the compose profile) may still be starting; a configuration error
# fails the same way each time and ends the container after the last attempt.
migrate() {
  n=1
  until videocalls migrate; do
    if [ "$n" -ge "$attempts" ]; then
      echo "videocalls: migrations failed $n times; not starting" >&2
      exit 1
    fi
    echo "videocalls: migrations failed (attempt $n of $attempts); retrying in 3 s" >&2
    n=$((n + 1))
    sleep 3
  done
}

if [ "$#" -eq 0 ]; then
  set -- serve
fi

if [ "$1" = "serve" ]; then
  shift
  check_sqlite_folder
  migrate
  exec videocalls serve --host 0.0.0.0 --port 8000 --workers "$workers" "$@"
fi

exec videocalls "$@"
