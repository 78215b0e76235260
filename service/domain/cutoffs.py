"""Cutoffs: when a started call completes, and when an unstarted one becomes a no-show.

A record stops changing at its cutoff (CallDerivation.cutoff): for a call that started, the
first room.destroyed with nobody of another meeting present, or the first gap of the grace
with nobody present; for one that did not, the no-show deadline, which late clinics move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from service.domain.intervals import INF, Interval, union
from service.domain.prosody import RoomEvent
from service.domain.sessions import BuiltSession


def completion(
    known: Sequence[BuiltSession],
    destroys: Sequence[RoomEvent],
    first: float,
    now_ms: int,
    grace_ms: int,
) -> float | None:
    """When a call that started at `first` completed (None: not yet): the earlier of its
    destroy and its grace cutoffs. `known` are its sessions that joined."""
    # For "is anyone still here", an open session has no end yet.
    open_spans = [
        (b.draft.meeting_id, float(b.joined_at or 0), INF if b.left_at is None else b.left_at)
        for b in known
    ]
    everyone = union((s, e) for _, s, e in open_spans)
    found = [
        c
        for c in (
            destroy_cutoff(destroys, open_spans, first),
            grace_cutoff(everyone, first, now_ms, grace_ms),
        )
        if c is not None
    ]
    return min(found) if found else None


def grace_cutoff(
    everyone: Sequence[Interval], started_at: float, now_ms: int, grace_ms: int
) -> float | None:
    """Last-left + grace of the first gap of `grace_ms` with nobody present after `started_at`.

    `everyone` is the union of all counted sessions with open ones running to infinity. A
    block starting within the grace of the previous one continues the same call.
    """
    blocks = [block for block in everyone if block[1] > started_at]
    if not blocks:
        return None
    end = blocks[0][1]
    for start, block_end in blocks[1:]:
        if start - end >= grace_ms:
            break
        end = block_end
    if end == INF or now_ms < end + grace_ms:
        return None
    return end + grace_ms


def destroy_cutoff(
    destroys: Sequence[RoomEvent],
    spans: Sequence[tuple[str | None, float, float]],
    started_at: float,
) -> float | None:
    """The first room.destroyed after the overlap began with nobody of another meeting present.

    Sessions of the destroyed meeting do not count as present even if their real
    `occupant.left` is a little later: Prosody can report the destroy before the last left.
    """
    for destroy in destroys:
        at = destroy.occurred_at
        if at <= started_at:
            continue
        if not any(
            meeting != destroy.meeting_id and start < at < end for meeting, start, end in spans
        ):
            return at
    return None


def late_clinic_deadline(
    deadline: int, parties: Iterable[Interval], grace_ms: int, max_call_ms: int
) -> float:
    """The no-show deadline, moved while a party is present or waiting (late clinics).

    `parties` are the doctor's and the patient's presence intervals (open ones end at INF).
    If one of them is present at `deadline`, it moves to the last departure of that stretch of
    presence plus `grace_ms` (a return within the grace continues the wait, as a rejoin
    continues a call), and never beyond `deadline + max_call_ms`.
    """
    stretch: Interval | None = None
    for start, end in union(parties):
        if stretch is not None and start - stretch[1] < grace_ms:
            stretch = (stretch[0], max(stretch[1], end))
        else:
            if stretch is not None and stretch[0] <= deadline < stretch[1]:
                break
            stretch = (start, end)
    if stretch is None or not stretch[0] <= deadline < stretch[1]:
        return deadline
    return min(stretch[1] + grace_ms, deadline + max_call_ms)
