"""The audit trail's answers: its signed checkpoints and a verification."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from service.domain.audit_chain import Checkpoint, Failure
from service.wire.base import Count, Iso, Shape, const, iso

Hash = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="SHA-256, hex")]


class AuditCheckpoint(Shape):
    id: int
    entries: Annotated[Count, Meta(description="How many entries the chain had")]
    head_hash: Annotated[Hash, Meta(description="The hash of the last of them")]
    at: Iso
    at_ms: Annotated[
        int, Meta(description="The same time in milliseconds, as the signature covers it")
    ]
    public_key: Annotated[str, Meta(description="The Ed25519 public key, hex")]
    signature: Annotated[
        str,
        Meta(
            description="Ed25519 over `videocalls-audit-checkpoint:v1\\n{entries}\\n"
            "{headHash}\\n{atMs}`, hex"
        ),
    ]


class AuditCheckpointList(Shape):
    message: Annotated[str, const("Audit checkpoints retrieved successfully")]
    count: Count
    checkpoints: list[AuditCheckpoint]


class AuditFailure(Shape):
    entry_id: Annotated[int | None, Meta(description="The row that does not fit, if one")]
    position: Annotated[int | None, Meta(description="Its place in the chain")]
    reason: str


class AuditVerification(Shape):
    verified: bool
    entries: Annotated[Count, Meta(description="Entries that fit, from the first")]
    head_hash: Hash
    checkpoints: Count
    keys_pinned: Annotated[
        bool,
        Meta(description="Signatures checked against AUDIT_SIGNING_KEY / AUDIT_TRUSTED_KEYS"),
    ]
    failure: AuditFailure | None


def checkpoint(point: Checkpoint) -> AuditCheckpoint:
    return AuditCheckpoint(
        id=point.id,
        entries=point.entries,
        head_hash=point.head_hash,
        at=iso(point.at),
        at_ms=point.at,
        public_key=point.public_key,
        signature=point.signature,
    )


def checkpoint_list(points: list[Checkpoint]) -> AuditCheckpointList:
    return AuditCheckpointList(
        message="Audit checkpoints retrieved successfully",
        count=len(points),
        checkpoints=[checkpoint(p) for p in points],
    )


def verification(
    entries: int, head: str, checkpoints: int, pinned: bool, failure: Failure | None
) -> AuditVerification:
    return AuditVerification(
        verified=failure is None,
        entries=entries,
        head_hash=head,
        checkpoints=checkpoints,
        keys_pinned=pinned,
        failure=None
        if failure is None
        else AuditFailure(entry_id=failure.entry_id, position=failure.seq, reason=failure.reason),
    )
