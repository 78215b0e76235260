"""The dependency locks in requirements/ (written by scripts/lock, `make lock`) agree with
pyproject.toml, pin everything with hashes, and are what this virtualenv has installed."""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from types import ModuleType
from typing import Any

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import IN_CI
from tests.deploy.deploy_support import REPO

LOCK_DIR = REPO / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def lock_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("videocalls_lock", str(REPO / "scripts/lock"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


LOCK: Any = lock_script()


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def marker_environment(**extra: str) -> dict[str, str]:
    return {**{key: str(value) for key, value in default_environment().items()}, **extra}


def pins(lock: str) -> dict[str, tuple[str, str | None, int]]:
    """name -> (version, marker, number of hashes) for every pin of one lock."""
    result: dict[str, tuple[str, str | None, int]] = {}
    current = None
    for line in (LOCK_DIR / f"{lock}.txt").read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            assert current not in result, f"{lock}: {current} pinned twice"
            result[current] = (match[2], match[3], 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, marker, hashes = result[current]
            result[current] = (version, marker, hashes + 1)
    return result


@pytest.mark.parametrize("lock", LOCK.LOCKS)
def test_lock_records_the_inputs_pyproject_declares(lock: str) -> None:
    recorded = LOCK.recorded_inputs_sha256(LOCK_DIR / f"{lock}.txt")
    expected = LOCK.inputs_sha256(LOCK.inputs(pyproject(), lock))
    assert recorded == expected, f"requirements/{lock}.txt is stale: run `make lock`"


def test_a_changed_dependency_list_makes_locks_stale() -> None:
    assert LOCK.stale_locks(pyproject()) == []
    changed = copy.deepcopy(pyproject())
    changed["project"]["dependencies"].append("six>=1")
    assert LOCK.stale_locks(changed) == ["runtime", "dev"]
    changed = copy.deepcopy(pyproject())
    changed["project"]["optional-dependencies"]["dev"][0] += ",<99"
    assert LOCK.stale_locks(changed) == ["dev"]
    # Order and spacing are not a change.
    reordered = copy.deepcopy(pyproject())
    reordered["project"]["dependencies"].reverse()
    assert LOCK.stale_locks(reordered) == []


@pytest.mark.parametrize("lock", LOCK.LOCKS)
def test_every_declared_requirement_is_pinned_within_its_range(lock: str) -> None:
    locked = pins(lock)
    for line in LOCK.inputs(pyproject(), lock):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements/{lock}.txt: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock}.txt pins {name}=={version}, pyproject.toml wants {requirement}"
        )
        for extra in requirement.extras:  # uvicorn[standard]: the extra's packages are in too
            declared = importlib.metadata.metadata(name).get_all("Requires-Dist") or []
            for dependency in map(Requirement, declared):
                marker = dependency.marker
                if marker is not None and marker.evaluate(marker_environment(extra=extra)):
                    assert canonicalize_name(dependency.name) in locked, dependency


@pytest.mark.parametrize("lock", LOCK.LOCKS)
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    locked = pins(lock)
    assert locked
    for name, (_, _, hashes) in locked.items():
        assert hashes >= 1, f"{name} in requirements/{lock}.txt has no hash"


def test_dev_lock_uses_the_runtime_and_build_pins() -> None:
    dev = pins("dev")
    for lock in ("runtime", "build"):
        for name, (version, _, _) in pins(lock).items():
            assert dev[name][0] == version, f"{name}: dev {dev[name][0]}, {lock} {version}"


def test_this_virtualenv_holds_exactly_the_dev_lock() -> None:
    """`make install` installs the lock, so two installs a week apart are the same."""
    assert sys.prefix != sys.base_prefix, "not run from the project's virtualenv"
    installed = {
        str(canonicalize_name(d.metadata["Name"])): d.version
        for d in importlib.metadata.distributions()
    }
    installed.pop("videocalls")
    environment = marker_environment()
    expected = {
        name: version
        for name, (version, marker, _) in pins("dev").items()
        if marker is None or Marker(marker).evaluate(environment)
    }
    for name, version in expected.items():
        assert installed.get(name) == version, f"{name}: installed {installed.get(name)}"
    if IN_CI:  # a developer may add a tool by hand; CI's virtualenv is exactly the lock
        assert set(installed) == set(expected), set(installed) ^ set(expected)
