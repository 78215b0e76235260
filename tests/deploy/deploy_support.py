"""Helpers for the deployment tests: a docker-jitsi-meet checkout in a temp folder, with this
repository beside it, and `docker-compose config` run on it the way an operator would."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(__file__).parents[2].parent / "shared"
FIXTURE = SHARED / "fixtures" / "docker-jitsi-meet"
OWN_BASE = Path(__file__).resolve().parent / "base"
OVERLAY = REPO / "docker-compose.jitsi.yml"
GEN_SECRETS = REPO / "docker" / "gen-secrets.sh"
# The module and the *.lib.lua files it loads with module:require: every one of them must reach
# docker-jitsi-meet's custom plugin folder, where Prosody looks for all of them.
PLUGIN_DIR = "/prosody-plugins-custom"
MODULE_FILES = sorted(path.name for path in (REPO / "prosody").glob("*.lua"))
PLUGIN_PATH = f"{PLUGIN_DIR}/mod_video_call_events.lua"
SERVICE_ALIAS = "videocalls.meet.jitsi"
PUBLIC_URL = "https://meet.example.com"
FIREBASE_PROJECT = "demo-clinic"
# Prosody's data directory in docker-jitsi-meet's image (`data_path` in prosody.cfg.lua.tmpl),
# where the module keeps its spool of undelivered events, and where it lies on the host (the
# prosody service mounts ${CONFIG}/storage/prosody at /var/lib/prosody).
DATA_PATH = "/var/lib/prosody/data"
HOST_DATA_PATH = "${CONFIG}/storage/prosody/data"


def module_mounts(source: str | Path) -> list[str]:
    """The overlay's read-only mounts of every file of the module, from a checkout at `source`."""
    return [f"{source}/prosody/{name}:{PLUGIN_DIR}/{name}:ro" for name in MODULE_FILES]


def mounted_plugins(volumes: list[str], target: Path) -> Path:
    """What a container finds in its custom plugin folder: the files that `volumes` (short
    syntax, as `docker-compose config` prints them) mount one by one into PLUGIN_DIR, copied
    into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for volume in volumes:
        source, _, rest = volume.partition(":")
        inside = PurePosixPath(rest.split(":", 1)[0])
        if str(inside.parent) == PLUGIN_DIR:
            shutil.copy(source, target / inside.name)
    return target


def require_tool(name: str, hint: str) -> str:
    """The tool's path; a missing tool skips the test on a developer machine, fails it in CI."""
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed ({hint})")
    assert path is not None
    return path


def require_fixture() -> Path:
    require((FIXTURE / "docker-compose.yml").is_file(), f"no fixture at {FIXTURE}")
    return FIXTURE


def datamanager_encode(name: str) -> str:
    """How Prosody's util.datamanager writes a host name in a path: every byte that is not a
    letter or digit as %xx (muc.meet.jitsi -> muc%2emeet%2ejitsi)."""
    return "".join(c if c.isascii() and c.isalnum() else f"%{ord(c):02x}" for c in name)


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment: compose lets the shell override .env, so nothing may leak in."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    env.update(extra)
    return env


def env_assignments(text: str) -> dict[str, str]:
    """NAME=value lines of an env file; the last one wins, quotes are not part of the value."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.lstrip().startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def split_list(value: str | None) -> list[str]:
    """gomplate's `splitList "," VALUE | compact`, as docker-jitsi-meet's templates use it."""
    return [item for item in (value or "").split(",") if item != ""]


def render_muc_configuration(value: str | None) -> str:
    """XMPP_MUC_CONFIGURATION as jitsi-meet.cfg.lua.tmpl renders it into the MUC component:
    `{{ join "\\n    " (splitList "," .Env.XMPP_MUC_CONFIGURATION | compact) }}`."""
    return "\n    ".join(split_list(value))


@dataclass
class Checkout:
    """A docker-jitsi-meet folder with .env, this repository beside it as ../videocalls and the
    overlay linked in, as the operator guide sets it up."""

    root: Path

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    def env(self) -> dict[str, str]:
        return env_assignments(self.env_file.read_text())

    def set(self, name: str, value: str) -> None:
        lines = [
            line
            for line in self.env_file.read_text().splitlines()
            if not line.startswith(f"{name}=")
        ]
        lines.append(f"{name}={value}")
        self.env_file.write_text("\n".join(lines) + "\n")

    def gen_secrets(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GEN_SECRETS), *args],
            cwd=self.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def compose_config(self) -> dict[str, Any]:
        compose = require_tool("docker-compose", "scripts/install-deploy-tools")
        result = subprocess.run(
            [compose, "-f", "docker-compose.yml", "-f", "docker-compose.jitsi.yml", "config"],
            cwd=self.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "WARNING" not in result.stderr, result.stderr
        assert "is not set" not in result.stderr, result.stderr
        merged = yaml.safe_load(result.stdout)
        assert isinstance(merged, dict)
        return merged


def make_checkout(tmp_path: Path, base: Path) -> Checkout:
    """Copy `base`'s docker-compose.yml and env.example (as .env) into a temp checkout, put this
    repository beside it as ../videocalls (the overlay's default VIDEOCALLS_DIR) and link the
    overlay in. CONFIG points into tmp_path and PUBLIC_URL and the Firebase project are set:
    the two values an operator types; gen-secrets.sh writes the rest."""
    root = tmp_path / "docker-jitsi-meet"
    root.mkdir()
    shutil.copy(base / "docker-compose.yml", root / "docker-compose.yml")
    shutil.copy(base / "env.example", root / ".env")
    (tmp_path / "videocalls").symlink_to(REPO, target_is_directory=True)
    (root / "docker-compose.jitsi.yml").symlink_to(Path("../videocalls/docker-compose.jitsi.yml"))
    checkout = Checkout(root)
    checkout.set("CONFIG", str(tmp_path / "jitsi-meet-cfg"))
    checkout.set("PUBLIC_URL", PUBLIC_URL)
    checkout.set("VIDEOCALLS_FIREBASE_PROJECT_ID", FIREBASE_PROJECT)
    return checkout
