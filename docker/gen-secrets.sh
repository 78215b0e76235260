#!/usr/bin/env bash
# Generate the videocalls overlay's secrets into docker-jitsi-meet's .env, as its
# gen-passwords.sh does for its own: run from the docker-jitsi-meet folder.
#
#   gen-secrets.sh [--force] [--postgres] [ENV_FILE]      (ENV_FILE defaults to ./.env)
#
# Values already set are kept (so running it twice changes nothing). --force replaces
# JWT_APP_SECRET, VIDEOCALLS_EVENTS_SECRET and VIDEOCALLS_ADMIN_API_KEY (a rotation: restart the
# stack afterwards); it never replaces JWT_APP_ID or VIDEOCALLS_POSTGRES_PASSWORD, which an
# existing PostgreSQL database was created with, nor VIDEOCALLS_WEBHOOK_SECRET, which the clinic's
# receiver holds (rotate it by listing the new and the old one, see the README).
# --postgres also selects the PostgreSQL profile and points VIDEOCALLS_DATABASE_URL at it.
# Secrets are never printed: only the names of the variables written. A copy of the previous
# file is kept as ENV_FILE.bak, as gen-passwords.sh does.
set -euo pipefail

usage() {
  sed -n '5p' "$0" | sed 's/^#  *//' >&2
  exit 2
}

force=0
postgres=0
env_file=.env
while [ "$#" -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --postgres) postgres=1 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) env_file=$1 ;;
  esac
  shift
done

if [ ! -f "$env_file" ]; then
  echo "gen-secrets: $env_file not found; copy docker-jitsi-meet's env.example to .env first" >&2
  exit 1
fi

hex() { openssl rand -hex "$1"; }
# Standard Webhooks secret: whsec_ + base64 of 32 random bytes.
whsec() { printf 'whsec_%s' "$(openssl rand -base64 32)"; }

# The last uncommented assignment wins, as in docker compose; quotes are not part of the value.
current() {
  sed -n "s/^$1=//p" "$env_file" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

changed=()
appended=0
cp -p "$env_file" "$env_file.bak"
tmp=$(mktemp "$env_file.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cp -p "$env_file" "$tmp"

# set_value NAME VALUE [always]: replace every NAME= line, or append one.
set_value() {
  local name=$1 value=$2
  if grep -q "^$name=" "$tmp"; then
    # The value goes through awk's environment, not its program text: no quoting surprises.
    NEW_VALUE=$value awk -v name="$name" '
      index($0, name "=") == 1 { print name "=" ENVIRON["NEW_VALUE"]; next }
      { print }' "$tmp" > "$tmp.new"
    cat "$tmp.new" > "$tmp"
    rm -f "$tmp.new"
  else
    if [ "$appended" -eq 0 ] && ! grep -qx '# videocalls (docker/gen-secrets.sh)' "$tmp"; then
      printf '\n# videocalls (docker/gen-secrets.sh)\n' >> "$tmp"
      appended=1
    fi
    printf '%s=%s\n' "$name" "$value" >> "$tmp"
  fi
  changed+=("$name")
}

# ensure NAME GENERATOR...: set NAME from the generator when empty.
ensure() {
  local name=$1
  shift
  if [ -z "$(current "$name")" ]; then
    set_value "$name" "$("$@")"
  fi
}

# rotate NAME GENERATOR...: like ensure, and also replaced when --force is given.
rotate() {
  local name=$1
  shift
  if [ "$force" -eq 1 ] || [ -z "$(current "$name")" ]; then
    set_value "$name" "$("$@")"
  fi
}

fixed() { printf '%s' "$1"; }

ensure JWT_APP_ID fixed videocalls
rotate JWT_APP_SECRET hex 32
rotate VIDEOCALLS_EVENTS_SECRET whsec
rotate VIDEOCALLS_ADMIN_API_KEY hex 32
ensure VIDEOCALLS_WEBHOOK_SECRET whsec
ensure VIDEOCALLS_POSTGRES_PASSWORD hex 16

if [ "$postgres" -eq 1 ]; then
  # Read back from the file being written: the password may have been generated just now.
  password=$(sed -n 's/^VIDEOCALLS_POSTGRES_PASSWORD=//p' "$tmp" | tail -n 1)
  url="postgresql://videocalls:$password@postgres.meet.jitsi:5432/videocalls"
  if [ -z "$(current VIDEOCALLS_DATABASE_URL)" ]; then
    set_value VIDEOCALLS_DATABASE_URL "$url"
  fi
  profiles=$(current COMPOSE_PROFILES)
  case ",$profiles," in
    *,postgres,*) ;;
    ,,) set_value COMPOSE_PROFILES postgres ;;
    *) set_value COMPOSE_PROFILES "$profiles,postgres" ;;
  esac
fi

# The service refuses a JWT_APP_SECRET shorter than 32 bytes; say so rather than fail later.
secret=$(sed -n 's/^JWT_APP_SECRET=//p' "$tmp" | tail -n 1)
if [ "${#secret}" -lt 32 ]; then
  echo "gen-secrets: JWT_APP_SECRET is shorter than 32 characters; the service will refuse it (rerun with --force to replace it, then update your token issuers)" >&2
fi

cat "$tmp" > "$env_file"
if [ "${#changed[@]}" -eq 0 ]; then
  echo "gen-secrets: nothing to do, every value was already set in $env_file"
else
  echo "gen-secrets: wrote ${changed[*]} to $env_file"
fi
