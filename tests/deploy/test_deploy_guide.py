"""docs/operator-guide.md and docker/env.example against what exists: every variable is one the
overlay reads, every command one the image, the CLI or this repository has."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from service.cli import build_parser
from tests.deploy.deploy_support import (
    HOST_DATA_PATH,
    MODULE_FILES,
    OVERLAY,
    PLUGIN_DIR,
    REPO,
    datamanager_encode,
)

GUIDE = REPO / "docs" / "operator-guide.md"
ENV_EXAMPLE = REPO / "docker" / "env.example"
COMPOSE = "docker compose -f docker-compose.yml -f docker-compose.jitsi.yml"


def overlay_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", OVERLAY.read_text()))


def code_blocks() -> str:
    return "\n".join(re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.DOTALL))


def commands() -> list[str]:
    """Shell commands of the guide's code blocks, continuation lines joined."""
    text = code_blocks().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_env_example_lists_every_variable_the_overlay_reads() -> None:
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert overlay_variables() - listed == set()


def test_guide_names_only_variables_the_overlay_reads() -> None:
    ours = set(re.findall(r"\bVIDEOCALLS_[A-Z0-9_]+\b", GUIDE.read_text()))
    ours.discard("VIDEOCALLS_DIR_")  # never used; guards the regex against prefixes
    assert ours, "the guide names no variable"
    assert ours - overlay_variables() == set()
    for name in ("JWT_APP_ID", "JWT_APP_SECRET", "PUBLIC_URL", "CONFIG", "XMPP_MUC_MODULES"):
        assert name in overlay_variables() | {"CONFIG"}, name
        assert name in GUIDE.read_text()


def test_the_guide_checks_every_file_of_the_module_is_mounted() -> None:
    listing = re.compile(rf"{re.escape(COMPOSE)} exec prosody\s+ls ")
    listings = [c for c in commands() if listing.match(c)]
    assert len(listings) == 1, listings
    listed = set(re.findall(rf"{PLUGIN_DIR}/(\S+)", listings[0]))
    assert listed == set(MODULE_FILES), "the module and every *.lib.lua it loads"


def test_the_prosody_readme_copies_every_file_of_the_module() -> None:
    readme = (REPO / "prosody" / "README.md").read_text()
    copies = re.findall(r"^ *cp (.+) \S*prosody-plugins-custom/\S*$", readme, re.MULTILINE)
    assert copies, "prosody/README.md shows how to copy the module"
    for sources in copies:
        copied = {path.name for source in sources.split() for path in REPO.glob(source.strip('"'))}
        assert copied == set(MODULE_FILES), sources


def test_compose_commands_name_both_files() -> None:
    compose_commands = [c for c in commands() if c.startswith("docker compose")]
    assert len(compose_commands) > 10
    for command in compose_commands:
        assert command.startswith(COMPOSE), command


def test_service_commands_exist() -> None:
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr,arg-type]
    found = []
    text = GUIDE.read_text().replace("\\\n", " ")
    for match in re.finditer(r"(?:run --rm|exec(?: -T)?) videocalls\s+([^\s`]+)", text):
        word = match.group(1)
        found.append(word)
        if word not in ("videocalls-test-event", "python"):
            assert word in subcommands, match.group(0)
    assert "migrate" in found and "videocalls-test-event" in found and "import" in found
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "/usr/local/bin/videocalls-test-event" in dockerfile


def test_repository_paths_exist() -> None:
    for path in re.findall(r"\.\./videocalls/(\S+?)(?=[\s`)]|$)", GUIDE.read_text()):
        assert (REPO / path.rstrip(".,")).exists(), path
    for flag in re.findall(r"gen-secrets\.sh (--[a-z]+)", GUIDE.read_text()):
        assert flag in (REPO / "docker" / "gen-secrets.sh").read_text(), flag


def test_sqlite_backup_command_makes_a_consistent_copy(tmp_path: Path) -> None:
    (command,) = [c for c in commands() if "sqlite3" in c and "backup" in c]
    code = re.search(r'python -c "([^"]+)"', command)
    assert code is not None
    source = sqlite3.connect(tmp_path / "videocalls.db")
    source.execute("CREATE TABLE video_calls (id TEXT)")
    source.execute("INSERT INTO video_calls VALUES ('vc1')")
    source.commit()
    script = code.group(1).replace("/data/", f"{tmp_path}/")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    copy = sqlite3.connect(tmp_path / "backup.db")
    assert copy.execute("SELECT id FROM video_calls").fetchall() == [("vc1",)]
    copy.close()
    source.close()


def test_guide_and_module_readme_name_the_spool_folder_on_the_host() -> None:
    # Checked against docker-jitsi-meet's volume and data_path in test_deploy_compose.py.
    folder = f"{HOST_DATA_PATH}/{datamanager_encode('muc.meet.jitsi')}/video_call_events/"
    for doc in (GUIDE, REPO / "prosody" / "README.md"):
        assert folder in doc.read_text(), doc
