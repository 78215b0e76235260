"""Commands operators copy from the docs: they parse in bash and name the right service."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_prosodyctl_commands_are_one_bash_command_each() -> None:
    commands = []
    for doc in (ROOT / "prosody" / "README.md", ROOT / "docs" / "operator-guide.md"):
        text = doc.read_text().replace("\n", " ")
        commands += re.findall(r"`(prosodyctl shell [^`]*)`", text)
    assert commands
    for command in commands:
        parsed = subprocess.run(["bash", "-n", "-c", command], capture_output=True, check=False)
        assert parsed.returncode == 0, (command, parsed.stderr)
        words = shlex.split(command)
        # `prosodyctl shell` takes the Lua command as one argument.
        assert len(words) == 3 and words[2].startswith("module:"), words


def test_prosody_readme_names_the_service_as_the_overlay_does() -> None:
    overlay = (ROOT / "docker-compose.jitsi.yml").read_text()
    default = re.search(r"VIDEOCALLS_EVENTS_URL:-(http://[^/]+)/", overlay)
    assert default
    readme = (ROOT / "prosody" / "README.md").read_text()
    hosts = set(re.findall(r'video_call_events_url ?= ?"(http://[^/]+)/', readme))
    hosts.discard("https://videocalls.example.org")
    assert hosts == {default.group(1)}
