"""Named operators: the keys of the admin API, each with a name and what it may do.

`ADMIN_API_KEYS` holds `name:access:sha256` entries (access `rw` or `ro`; the SHA-256 of the
key, hex): the settings, the environment and any dump of them hold no usable key. The keys
themselves are random (`videocalls admin-key NAME` makes one), so a plain SHA-256 is enough:
there is nothing to guess a key from. `ADMIN_API_KEY` stays one read-write key named `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
ACCESS = {"rw": True, "ro": False}
LEGACY_NAME = "admin"


@dataclass(frozen=True)
class Who:
    """Who acted, as the audit trail names them, and from which address (None: not over HTTP,
    e.g. the command line)."""

    actor: str
    address: str | None = None


# The clinic's backend pushing its directory, before keys had names; the command line.
ADMIN = Who(LEGACY_NAME)


@dataclass(frozen=True)
class Operator:
    name: str
    can_write: bool


@dataclass(frozen=True)
class AdminKey:
    operator: Operator
    digest: bytes = field(repr=False)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.strip().encode()).digest()


def parse(raw: str, legacy_key: str) -> tuple[AdminKey, ...]:
    """The keys of ADMIN_API_KEYS and ADMIN_API_KEY, or ValueError naming the entry's
    position and what is wrong with it (never a hash)."""
    keys: list[AdminKey] = []
    if legacy_key:
        keys.append(AdminKey(Operator(LEGACY_NAME, True), digest(legacy_key)))
    for position, entry in enumerate(raw.replace(",", " ").split(), start=1):
        name, _, rest = entry.partition(":")
        access, _, hashed = rest.partition(":")
        if not NAME.fullmatch(name):
            raise ValueError(
                f"entry {position}: the name must be lower-case letters, digits, '.', '_' or "
                "'-' (at most 64), starting with a letter"
            )
        if access not in ACCESS:
            raise ValueError(f"entry {position} ({name}): access must be rw or ro")
        if not re.fullmatch(r"[0-9a-f]{64}", hashed):
            raise ValueError(
                f"entry {position} ({name}): the key's SHA-256 must be 64 lower-case hex "
                "digits (videocalls admin-key prints the entry)"
            )
        keys.append(AdminKey(Operator(name, ACCESS[access]), bytes.fromhex(hashed)))
    names = [k.operator.name for k in keys]
    if len(set(names)) != len(names):
        raise ValueError("names must be unique (ADMIN_API_KEY is the key named admin)")
    if len({k.digest for k in keys}) != len(keys):
        raise ValueError("two entries have the same key")
    return tuple(keys)


def identify(keys: tuple[AdminKey, ...], presented: str) -> Operator | None:
    """The operator whose key this is. Every digest is compared, in constant time, so the
    answer's timing says nothing about which entry (or how much of one) matched."""
    found = None
    presented_digest = digest(presented)
    for key in keys:
        if hmac.compare_digest(presented_digest, key.digest):
            found = key.operator
    return found
