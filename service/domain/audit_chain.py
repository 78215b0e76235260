"""The audit trail as a hash chain, and its signed checkpoints: values in, values out.

Each entry stores `content_hash`, the SHA-256 of its canonical encoding (with a random
per-entry nonce, so a field cannot be guessed back from the digest once erased), and `hash`,
the SHA-256 of the previous entry's hash, its position (`seq`) and its content hash. Changing,
removing, inserting or reordering an entry breaks the chain at that entry; removing the tail
is caught by a checkpoint (the head's hash and the number of entries, signed with Ed25519
and kept outside the database), which the shortened chain no longer reaches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# The `prev_hash` of the first entry.
GENESIS = "0" * 64
CHECKPOINT_DOMAIN = "videocalls-audit-checkpoint:v1"


@dataclass(frozen=True)
class Entry:
    id: int
    seq: int | None
    at: int
    actor: str
    action: str
    call_id: str | None
    appointment_id: str | None
    detail: str
    address: str | None
    nonce: str | None
    content_hash: str | None
    prev_hash: str | None
    hash: str | None


@dataclass(frozen=True)
class Checkpoint:
    id: int
    at: int
    entries: int
    head_hash: str
    public_key: str
    signature: str


@dataclass(frozen=True)
class Failure:
    """The first entry (by row id) or checkpoint that does not fit, and why."""

    entry_id: int | None
    seq: int | None
    reason: str


def content_hash(
    nonce: str,
    at: int,
    actor: str,
    action: str,
    call_id: str | None,
    appointment_id: str | None,
    detail: str,
    address: str | None = None,
) -> str:
    # A JSON array: every field delimited and typed, so no two entries encode alike.
    encoded = json.dumps(
        [nonce, at, actor, action, call_id, appointment_id, detail, address],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def link_hash(prev_hash: str, seq: int, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{seq}:{content}".encode("ascii")).hexdigest()


def checkpoint_message(entries: int, head_hash: str, at: int) -> bytes:
    """What a checkpoint's Ed25519 signature covers."""
    return f"{CHECKPOINT_DOMAIN}\n{entries}\n{head_hash}\n{at}".encode("ascii")


def _content_of(entry: Entry) -> str:
    return content_hash(
        entry.nonce or "",
        entry.at,
        entry.actor,
        entry.action,
        entry.call_id,
        entry.appointment_id,
        entry.detail,
        entry.address,
    )


@dataclass
class Walk:
    """The chain walked so far: feed it entries in `seq` order (rows with no seq last)."""

    erased: frozenset[int] = frozenset()
    count: int = 0
    head: str = GENESIS
    failure: Failure | None = None
    # seq -> hash of the entries checkpoints name, filled as the walk passes them.
    wanted: dict[int, str | None] | None = None

    def feed(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if self.failure is not None:
                return
            self.failure = self._step(entry)

    def _step(self, entry: Entry) -> Failure | None:
        expected = self.count + 1
        if entry.seq != expected:
            return Failure(
                entry.id,
                entry.seq,
                f"position {entry.seq} where {expected} was expected: an entry before it "
                "was removed, or this one was inserted or moved",
            )
        if entry.prev_hash != self.head:
            return Failure(entry.id, entry.seq, "does not follow the entry before it")
        # Entries whose personal data was erased (named by a later erasure entry) keep their
        # content hash; only the link is checked for them.
        if entry.seq not in self.erased and _content_of(entry) != entry.content_hash:
            return Failure(entry.id, entry.seq, "its content was changed")
        if (
            entry.content_hash is None
            or link_hash(self.head, expected, entry.content_hash) != entry.hash
        ):
            return Failure(entry.id, entry.seq, "its hash does not match")
        self.count = expected
        self.head = entry.hash
        if self.wanted is not None and expected in self.wanted:
            self.wanted[expected] = entry.hash
        return None


def check_checkpoints(
    walk: Walk,
    checkpoints: Iterable[Checkpoint],
    verify_signature: Callable[[str, str, bytes], bool],
) -> Failure | None:
    """The first checkpoint that is unsigned, or that the walked chain does not reach."""
    for point in checkpoints:
        message = checkpoint_message(point.entries, point.head_hash, point.at)
        if not verify_signature(point.public_key, point.signature, message):
            return Failure(None, point.entries, f"checkpoint {point.id}: bad signature")
        if point.entries > walk.count:
            return Failure(
                None,
                walk.count + 1,
                f"checkpoint {point.id} saw {point.entries} entries, the chain has "
                f"{walk.count} that fit: entries were removed after it was taken",
            )
        if walk.wanted is None or walk.wanted.get(point.entries) != point.head_hash:
            return Failure(
                None,
                point.entries,
                f"checkpoint {point.id}: entry {point.entries} is not the one it signed",
            )
    return None


def entries_wanted(checkpoints: Iterable[Checkpoint]) -> dict[int, str | None]:
    return {point.entries: None for point in checkpoints}


# Ed25519 keys travel as hex of their 32 raw bytes (`openssl rand -hex 32` makes a private
# one): AUDIT_SIGNING_KEY the private key, AUDIT_TRUSTED_KEYS and each checkpoint's
# `public_key` public keys; signatures are hex too.
def _hex32(encoded: str) -> bytes:
    try:
        raw = bytes.fromhex(encoded.strip())
    except ValueError:
        raise ValueError("is not hex") from None
    if len(raw) != 32:
        raise ValueError(f"must be 32 bytes (64 hex digits), got {len(raw)}")
    return raw


def private_key(encoded: str) -> Ed25519PrivateKey:
    """The signing key, or ValueError naming what is wrong (never the key itself)."""
    raw = _hex32(encoded)
    if len(set(raw)) < 8:
        raise ValueError("is too weak: generate it randomly (openssl rand -hex 32)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key(encoded: str) -> str:
    """The hex public key of an AUDIT_SIGNING_KEY (what verifiers trust)."""
    return private_key(encoded).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def check_public_key(encoded: str) -> str:
    try:
        return (
            Ed25519PublicKey.from_public_bytes(_hex32(encoded))
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
            .hex()
        )
    except ValueError:
        raise ValueError("must be 64 hex digits each (Ed25519 public keys)") from None


def sign(encoded_key: str, entries: int, head_hash: str, at: int) -> tuple[str, str]:
    """(public key, signature), both hex."""
    signature = private_key(encoded_key).sign(checkpoint_message(entries, head_hash, at))
    return public_key(encoded_key), signature.hex()


def signature_valid(encoded_public: str, signature: str, message: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(encoded_public))
        key.verify(bytes.fromhex(signature), message)
    except (ValueError, InvalidSignature):
        return False
    return True
