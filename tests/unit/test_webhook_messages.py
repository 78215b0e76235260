"""Which messages a call's change owes the clinic (service.webhooks.messages.plan)."""

from __future__ import annotations

from dataclasses import replace

from service.domain.model import CallStatus
from service.webhooks.messages import CallFacts, RecordingFacts, SessionFacts, Told, plan

T = 1_000_000  # milliseconds: only differences between these times matter here


def types(told: Told, facts: CallFacts) -> tuple[list[str], Told]:
    planned, after = plan(told, facts)
    # Stored as JSON between transactions: the round trip must keep everything.
    assert Told.from_json(after.to_json()) == after
    return [p.type for p in planned], after


def doc(joined: int, left: int | None = None, reason: str | None = None) -> SessionFacts:
    return SessionFacts("s-doc", "doctor", joined, left, reason)


def pat(joined: int, left: int | None = None, reason: str | None = None) -> SessionFacts:
    return SessionFacts("s-pat", "patient", joined, left, reason)


def test_a_consultation_step_by_step_tells_each_thing_once() -> None:
    told = Told()
    steps = [
        (CallFacts(CallStatus.SCHEDULED), ["call.scheduled"]),
        (
            CallFacts(CallStatus.SCHEDULED, doctor_joined_at=T, sessions=(doc(T),)),
            ["participant.joined", "call.waiting"],
        ),
        (
            CallFacts(
                CallStatus.IN_PROGRESS,
                started_at=T + 60,
                doctor_joined_at=T,
                patient_joined_at=T + 60,
                sessions=(doc(T), pat(T + 60)),
            ),
            ["participant.joined", "call.started"],
        ),
        (
            CallFacts(
                CallStatus.COMPLETED,
                started_at=T + 60,
                ended_at=T + 600,
                duration=540,
                doctor_joined_at=T,
                patient_joined_at=T + 60,
                sessions=(doc(T, T + 610, "left"), pat(T + 60, T + 600, "left")),
            ),
            ["participant.left", "participant.left", "call.completed"],
        ),
    ]
    for facts, expected in steps:
        got, told = types(told, facts)
        assert got == expected
        # The same facts again (another hook, a repeated event) owe nothing.
        assert types(told, facts)[0] == []


def test_waiting_names_the_party_and_its_first_presence() -> None:
    planned, _ = plan(
        Told(status="SCHEDULED"),
        CallFacts(CallStatus.SCHEDULED, patient_joined_at=T + 5, sessions=(pat(T + 5),)),
    )
    assert planned[-1].type == "call.waiting"
    assert planned[-1].extra == {"waiting": {"role": "patient", "since": T + 5}}
    assert planned[0].extra == {"participant": {"role": "patient", "at": T + 5}}


def test_leaves_carry_the_reason_and_come_in_time_order() -> None:
    planned, _ = plan(
        Told(status="IN_PROGRESS", started=True, joined={"s-doc": T, "s-pat": T + 1}),
        CallFacts(
            CallStatus.IN_PROGRESS,
            sessions=(doc(T, T + 90, "kicked"), pat(T + 1, T + 50, "unknown")),
        ),
    )
    assert [p.extra["participant"] for p in planned] == [
        {"role": "patient", "at": T + 50, "reason": "unknown"},
        {"role": "doctor", "at": T + 90, "reason": "kicked"},
    ]


def test_others_and_uncounted_sessions_are_not_told() -> None:
    facts = CallFacts(
        CallStatus.SCHEDULED,
        sessions=(
            SessionFacts("s-x", "other", T, None, None),
            SessionFacts("s-y", "doctor", T, None, None, counted=False),
        ),
    )
    assert types(Told(status="SCHEDULED"), facts)[0] == []


def test_a_whole_call_learnt_at_once_still_starts_before_it_completes() -> None:
    facts = CallFacts(CallStatus.COMPLETED, started_at=T, ended_at=T + 10, duration=10)
    assert types(Told(status="SCHEDULED"), facts)[0] == ["call.started", "call.completed"]


def test_a_repair_of_a_told_record_is_told_again() -> None:
    first = CallFacts(CallStatus.COMPLETED, started_at=T, ended_at=T + 10, duration=10)
    _, told = types(Told(status="IN_PROGRESS", started=True), first)
    assert types(told, replace(first, ended_at=T + 20, duration=20))[0] == ["call.completed"]
    no_show = CallFacts(CallStatus.NO_SHOW, missing="both")
    _, told = types(Told(status="SCHEDULED"), no_show)
    assert types(told, replace(no_show, missing="patient"))[0] == ["call.no_show"]


def test_a_failed_call_started_afresh_is_scheduled_and_waited_for_again() -> None:
    _, told = types(Told(), CallFacts(CallStatus.SCHEDULED, doctor_joined_at=T, sessions=(doc(T),)))
    got, told = types(told, CallFacts(CallStatus.FAILED, doctor_joined_at=T))
    assert got == ["call.failed"]
    assert types(told, CallFacts(CallStatus.SCHEDULED))[0] == ["call.scheduled"]
    again = CallFacts(CallStatus.SCHEDULED, doctor_joined_at=T + 99)
    assert types(replace(told, status="SCHEDULED", waiting=None), again)[0] == ["call.waiting"]


def test_cancelled() -> None:
    assert types(Told(status="SCHEDULED"), CallFacts(CallStatus.CANCELLED))[0] == ["call.cancelled"]


def test_a_patient_knocking_in_the_lobby_is_told_as_waiting() -> None:
    # The doctor is in the room; the patient knocks: the record says the patient waits.
    facts = CallFacts(
        CallStatus.SCHEDULED,
        doctor_joined_at=T,
        sessions=(doc(T),),
        waiting_role="patient",
        waiting_since=T + 5,
    )
    got, told = types(Told(), facts)
    assert got == ["call.scheduled", "participant.joined", "call.waiting"]
    planned, _ = plan(Told(), facts)
    assert planned[-1].extra == {"waiting": {"role": "patient", "since": T + 5}}
    assert types(told, facts)[0] == []


def test_a_recording_is_told_when_it_starts_and_when_it_stops() -> None:
    rolling = RecordingFacts("rec1", T + 10, None, "file")
    facts = CallFacts(CallStatus.IN_PROGRESS, started_at=T, recordings=(rolling,))
    got, told = types(Told(status="IN_PROGRESS", started=True), facts)
    assert got == ["recording.started"]
    assert types(told, facts)[0] == []  # told once
    stopped = replace(facts, recordings=(replace(rolling, ended_at=T + 70),))
    planned, told = plan(told, stopped)
    assert [p.type for p in planned] == ["recording.stopped"]
    assert planned[0].extra == {
        "recording": {"startedAt": T + 10, "endedAt": T + 70, "mode": "file"}
    }
    assert types(told, stopped)[0] == []
    # A recording learnt only once it was over is told as started, then stopped.
    done = CallFacts(CallStatus.COMPLETED, started_at=T, ended_at=T + 99, duration=0)
    _, told = types(Told(), done)
    late = replace(done, recordings=(RecordingFacts("rec2", T, T + 9, None),))
    assert types(told, late)[0] == ["recording.started", "recording.stopped"]
