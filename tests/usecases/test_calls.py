"""service.calls as Python functions on SQLite and PostgreSQL: initiate, tokens, status
reports, details, lists, stats, and a call following its cancelled appointment."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from service import calls, directory, tracking, transitions
from service.config import Settings
from service.domain.model import Action, CallStatus, Role
from service.errors import AppError, BadRequest, Conflict, Forbidden, NotFound
from service.store import clinic
from service.store.models import Appointment, VideoCall
from tests.clock import DAY_MS, FrozenClock, appointment_around
from tests.usecases.support import ROOM, Prosody, appointment, audits, read, user, write

pytestmark = pytest.mark.usefixtures("seeded")


def stored_call(call_id: str) -> VideoCall:
    return read(lambda: VideoCall.get_by_id(call_id))


def appointment_status(appointment_id: str) -> str:
    return str(read(lambda: Appointment.get_by_id(appointment_id).status))


def claims(settings: Settings, token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token,
        settings.jitsi_app_secret,
        algorithms=["HS256"],
        audience=settings.jitsi_app_id,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    return decoded


def expect(error: type[AppError], code: str, fn: Any, *args: Any) -> AppError:
    with pytest.raises(error) as raised:
        fn(*args)
    assert raised.value.code == code
    return raised.value


# --- initiate ---------------------------------------------------------------------------


def test_initiate_creates_the_call_and_grants_the_doctor_a_token(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    assert grant.role is Role.DOCTOR
    assert grant.call.status == "SCHEDULED"
    assert grant.call.appointment_id == "appt1"
    assert grant.call.room_name == ROOM
    assert grant.call.id.startswith("vc_")
    assert grant.domain == "meet.example.test"
    assert grant.link == f"https://meet.example.test/{ROOM}?jwt={grant.token.token}"
    assert grant.token.expires_at == clock.s + settings.jitsi_token_ttl
    token = claims(settings, grant.token.token)
    assert token["room"] == ROOM
    assert token["moderator"] is True
    assert token["context"]["user"]["id"] == "doc"
    assert token["context"]["user"]["name"] == "Dr. Doc Test"
    row = stored_call(grant.call.id)
    assert (row.status, row.created_at, row.doctor_uid, row.patient_uid) == (
        "SCHEDULED",
        clock.ms,
        "doc",
        "pat",
    )
    assert audits("call.created") == [("doc", grant.call.id, "appt1", {})]
    assert audits("token.issued") == [("doc", grant.call.id, "appt1", {"role": "doctor"})]


def test_the_second_participant_joins_the_same_call(settings: Settings, clock: FrozenClock) -> None:
    first = calls.initiate(settings, "doc", "appt1")
    clock.advance(5_000)
    second = calls.initiate(settings, "pat", "appt1")
    assert second.call.id == first.call.id
    assert second.role is Role.PATIENT
    token = claims(settings, second.token.token)
    assert token["moderator"] is False
    assert token["context"]["user"]["name"] == "Pat Test"
    assert len(audits("call.created")) == 1
    assert [a[3]["role"] for a in audits("token.issued")] == ["doctor", "patient"]
    assert read(lambda: VideoCall.select().count()) == 1


def test_initiate_refuses_unknown_appointments_and_outsiders(settings: Settings) -> None:
    # An unknown appointment is refused like one of somebody else's: no existence oracle.
    unknown = expect(Forbidden, "not_participant", calls.initiate, settings, "doc", "nope")
    stranger = expect(Forbidden, "not_participant", calls.initiate, settings, "outsider", "appt1")
    assert (unknown.message, unknown.extra) == (stranger.message, stranger.extra)
    assert read(lambda: VideoCall.select().count()) == 0


def test_initiate_refuses_when_either_account_is_inactive(settings: Settings) -> None:
    user("pat", isActive=False)
    expect(Forbidden, "account_inactive", calls.initiate, settings, "doc", "appt1")
    assert read(lambda: VideoCall.select().count()) == 0


@pytest.mark.parametrize("status", ["PENDING", "COMPLETED", "CANCELLED", "NO_SHOW"])
def test_initiate_needs_an_active_appointment(
    settings: Settings, clock: FrozenClock, status: str
) -> None:
    appointment(clock, "appt2", status=status)
    error = expect(BadRequest, "appointment_not_active", calls.initiate, settings, "doc", "appt2")
    assert error.extra == {"currentStatus": status}


def test_initiate_on_a_closed_call_is_a_conflict(settings: Settings) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    calls.report_status("doc", grant.call.id, Action.CANCEL)
    error = expect(Conflict, "call_closed", calls.initiate, settings, "pat", "appt1")
    assert error.extra == {"currentStatus": "CANCELLED"}
    assert len(audits("token.issued")) == 1


def test_initiate_after_a_failure_starts_the_call_afresh(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    calls.report_status("doc", "appt1", Action.JOIN)
    calls.report_status("pat", "appt1", Action.JOIN)
    clock.advance(1_000)
    calls.report_status("doc", "appt1", Action.FAILED)
    assert stored_call(grant.call.id).status == "FAILED"
    clock.advance(1_000)
    again = calls.initiate(settings, "pat", "appt1")
    assert again.call.id == grant.call.id
    assert again.call.status == "SCHEDULED"
    assert again.call.started_at is None
    assert again.call.doctor_joined_at is None
    assert again.call.patient_joined_at is None
    transitions = [a[3] for a in audits("call.transition")]
    assert transitions[-1] == {"from": "FAILED", "to": "SCHEDULED", "cause": "initiate"}
    assert audits("call.transition")[-1][0] == "pat"


# --- refresh_token ----------------------------------------------------------------------


def test_refresh_token_by_appointment_id_or_call_id(settings: Settings) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    by_appointment = calls.refresh_token(settings, "pat", "appt1")
    by_call = calls.refresh_token(settings, "doc", grant.call.id)
    assert by_appointment.call.id == by_call.call.id == grant.call.id
    assert (by_appointment.role, by_call.role) == (Role.PATIENT, Role.DOCTOR)
    assert [a[3]["role"] for a in audits("token.issued")] == ["doctor", "patient", "doctor"]


def test_refresh_token_errors(settings: Settings) -> None:
    not_initiated = expect(
        NotFound, "video_call_not_found", calls.refresh_token, settings, "doc", "appt1"
    )
    assert not_initiated.message == "Video call not initiated for this appointment"
    # Not for a stranger, nor for an unknown id: the same 403 as for an existing call.
    expect(Forbidden, "not_participant", calls.refresh_token, settings, "outsider", "appt1")
    expect(Forbidden, "not_participant", calls.refresh_token, settings, "doc", "x")
    calls.initiate(settings, "doc", "appt1")
    expect(Forbidden, "not_participant", calls.refresh_token, settings, "outsider", "appt1")
    user("doc", isActive=False)
    expect(Forbidden, "account_inactive", calls.refresh_token, settings, "pat", "appt1")
    user("doc")
    calls.report_status("doc", "appt1", Action.CANCEL)
    closed = expect(Conflict, "call_closed", calls.refresh_token, settings, "doc", "appt1")
    assert closed.extra == {"currentStatus": "CANCELLED"}


# --- report_status ----------------------------------------------------------------------


@pytest.mark.presence_from_clients
def test_joins_start_the_call_when_both_are_in(settings: Settings, clock: FrozenClock) -> None:
    calls.initiate(settings, "doc", "appt1")
    doctor_at = clock.advance(10_000)
    after_doctor = calls.report_status("doc", "appt1", Action.JOIN)
    assert after_doctor.status == "SCHEDULED"
    assert after_doctor.doctor_joined_at == doctor_at
    assert after_doctor.patient_joined_at is None
    patient_at = clock.advance(20_000)
    after_patient = calls.report_status("pat", "appt1", Action.JOIN)
    assert after_patient.status == "IN_PROGRESS"
    assert after_patient.started_at == patient_at
    assert after_patient.doctor_joined_at == doctor_at
    assert appointment_status("appt1") == "IN_PROGRESS"
    assert [a[3] for a in audits("call.transition")] == [
        {"from": "SCHEDULED", "to": "IN_PROGRESS", "cause": "client_report"}
    ]
    assert [a[3] for a in audits("appointment.transition")] == [
        {"to": "IN_PROGRESS", "cause": "client_report"}
    ]
    clock.advance(5_000)
    again = calls.report_status("doc", "appt1", Action.JOIN)
    assert again.doctor_joined_at == doctor_at
    assert [a[3] for a in audits("status.reported")] == [
        {"action": "join", "advisory": False},
        {"action": "join", "advisory": False},
        {"action": "join", "advisory": False},
    ]


@pytest.mark.presence_from_clients
@pytest.mark.parametrize(("talk_ms", "seconds"), [(90_499, 90), (90_500, 91)])
def test_end_completes_with_a_rounded_duration(
    settings: Settings, clock: FrozenClock, talk_ms: int, seconds: int
) -> None:
    calls.initiate(settings, "doc", "appt1")
    started_at = clock.ms
    calls.report_status("doc", "appt1", Action.JOIN)
    assert calls.report_status("pat", "appt1", Action.JOIN).started_at == started_at
    ended_at = clock.advance(talk_ms)
    done = calls.report_status("pat", "appt1", Action.END)
    assert (done.status, done.ended_at, done.duration) == ("COMPLETED", ended_at, seconds)
    assert appointment_status("appt1") == "COMPLETED"
    repeat = calls.report_status("doc", "appt1", Action.END)
    assert (repeat.status, repeat.ended_at) == ("COMPLETED", ended_at)
    assert [a[3]["to"] for a in audits("call.transition")] == ["IN_PROGRESS", "COMPLETED"]


@pytest.mark.presence_from_clients
def test_a_refused_report_is_audited_and_changes_nothing(settings: Settings) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    error = expect(Conflict, "invalid_transition", calls.report_status, "doc", "appt1", Action.END)
    assert error.extra == {"currentStatus": "SCHEDULED"}
    assert stored_call(grant.call.id).status == "SCHEDULED"
    assert audits("status.reported") == [
        ("doc", grant.call.id, "appt1", {"action": "end", "refused": "SCHEDULED"})
    ]
    assert audits("call.transition") == []


@pytest.mark.presence_from_clients
def test_cancel_leaves_the_appointment_and_closes_the_call(settings: Settings) -> None:
    calls.initiate(settings, "doc", "appt1")
    cancelled = calls.report_status("pat", "appt1", Action.CANCEL)
    assert cancelled.status == "CANCELLED"
    assert appointment_status("appt1") == "CONFIRMED"
    error = expect(Conflict, "invalid_transition", calls.report_status, "doc", "appt1", Action.JOIN)
    assert error.extra == {"currentStatus": "CANCELLED"}
    start = expect(
        Conflict, "invalid_transition", calls.report_status, "doc", "appt1", Action.START
    )
    assert start.message == "Cannot change video call status from CANCELLED to IN_PROGRESS"


@pytest.mark.presence_from_clients
def test_failed_from_in_progress(settings: Settings) -> None:
    calls.initiate(settings, "doc", "appt1")
    calls.report_status("doc", "appt1", Action.JOIN)
    calls.report_status("pat", "appt1", Action.JOIN)
    failed = calls.report_status("doc", "appt1", Action.FAILED)
    assert failed.status == "FAILED"
    assert appointment_status("appt1") == "IN_PROGRESS"


def test_report_status_errors(settings: Settings) -> None:
    expect(NotFound, "video_call_not_found", calls.report_status, "doc", "appt1", Action.JOIN)
    calls.initiate(settings, "doc", "appt1")
    expect(Forbidden, "not_participant", calls.report_status, "outsider", "appt1", Action.JOIN)
    user("pat", isActive=False)
    expect(Forbidden, "account_inactive", calls.report_status, "pat", "appt1", Action.JOIN)
    assert calls.report_status("doc", "appt1", Action.JOIN).status == "SCHEDULED"


def test_reports_are_advisory_once_prosody_tracks_the_call(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    prosody = Prosody()
    tracking.ingest(settings, prosody.joined(ROOM, "s-doc", "doc", clock.ms - 1_000), "test")
    kept = calls.report_status("pat", "appt1", Action.JOIN)
    assert kept.status == "SCHEDULED"
    assert kept.patient_joined_at is None
    assert kept.doctor_joined_at == clock.ms - 1_000
    assert calls.report_status("doc", "appt1", Action.END).status == "SCHEDULED"
    assert calls.report_status("doc", "appt1", Action.CANCEL).status == "CANCELLED"
    assert [a[3] for a in audits("status.reported")] == [
        {"action": "join", "advisory": True},
        {"action": "end", "advisory": True},
        {"action": "cancel", "advisory": False},
    ]
    assert stored_call(grant.call.id).tracked_by_server is True


def test_cancel_is_advisory_once_prosody_saw_both(settings: Settings, clock: FrozenClock) -> None:
    calls.initiate(settings, "doc", "appt1")
    prosody = Prosody()
    tracking.ingest(settings, prosody.joined(ROOM, "s-doc", "doc", clock.ms - 2_000), "test")
    tracking.ingest(settings, prosody.joined(ROOM, "s-pat", "pat", clock.ms - 1_000), "test")
    assert calls.report_status("pat", "appt1", Action.CANCEL).status == "IN_PROGRESS"
    assert audits("status.reported")[-1][3] == {"action": "cancel", "advisory": True}


# --- details ----------------------------------------------------------------------------


def test_details_of_a_call(settings: Settings, clock: FrozenClock) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    tracking.ingest(settings, Prosody().joined(ROOM, "s-doc", "doc", clock.ms - 500), "test")
    for ref in ("appt1", grant.call.id):
        view = calls.details("pat", ref)
        assert view.call.id == grant.call.id
        assert view.appointment.id == "appt1"
        assert view.appointment.status == "CONFIRMED"
        assert view.doctor is not None and view.doctor.uid == "doc"
        assert view.doctor.first_name == "Doc"
        assert view.patient is not None and view.patient.uid == "pat"
        assert [(s.session, s.role, s.joined_at, s.left_at) for s in view.sessions] == [
            ("s-doc", "doctor", clock.ms - 500, None)
        ]


def test_details_errors(settings: Settings) -> None:
    expect(NotFound, "video_call_not_found", calls.details, "doc", "appt1")
    calls.initiate(settings, "doc", "appt1")
    expect(Forbidden, "not_participant", calls.details, "outsider", "appt1")
    user("doc", isActive=False)
    expect(Forbidden, "account_inactive", calls.details, "doc", "appt1")
    assert calls.details("pat", "appt1").doctor is not None


# --- lists ------------------------------------------------------------------------------


def three_calls(settings: Settings, clock: FrozenClock) -> list[str]:
    """appt1 (doc/pat), appt2 (doc/other), appt3 (other/pat), a second apart, oldest first."""
    user("other")
    appointment(clock, "appt2", patientUid="other")
    appointment(clock, "appt3", doctorUid="other")
    ids = []
    for appointment_id in ("appt1", "appt2", "appt3"):
        ids.append(
            calls.initiate(
                settings, "other" if appointment_id == "appt3" else "doc", appointment_id
            ).call.id
        )
        clock.advance(1_000)
    return ids


def test_list_for_user_pages_newest_first(settings: Settings, clock: FrozenClock) -> None:
    ids = three_calls(settings, clock)
    first = calls.list_for_user("doc", None, None, 1)
    assert [v.call.id for v in first.items] == [ids[1]]
    assert first.items[0].appointment.id == "appt2"
    assert first.items[0].patient is not None and first.items[0].patient.uid == "other"
    assert first.next_cursor is not None
    assert first.next_cursor.id == ids[1]
    second = calls.list_for_user("doc", None, first.next_cursor, 1)
    assert [v.call.id for v in second.items] == [ids[0]]
    assert second.next_cursor is None
    everything = calls.list_for_user("pat", None, None, 10)
    assert [v.call.id for v in everything.items] == [ids[2], ids[0]]
    assert everything.next_cursor is None
    assert calls.list_for_user("outsider", None, None, 10).items == []


def test_list_for_user_filters_by_status(settings: Settings, clock: FrozenClock) -> None:
    ids = three_calls(settings, clock)
    calls.report_status("doc", "appt1", Action.CANCEL)
    cancelled = calls.list_for_user("doc", CallStatus.CANCELLED, None, 10)
    assert [v.call.id for v in cancelled.items] == [ids[0]]
    scheduled = calls.list_for_user("doc", CallStatus.SCHEDULED, None, 10)
    assert [v.call.id for v in scheduled.items] == [ids[1]]


def test_list_for_user_needs_an_active_account(settings: Settings) -> None:
    expect(Forbidden, "account_inactive", calls.list_for_user, "stranger", None, None, 10)
    user("doc", isActive=False)
    expect(Forbidden, "account_inactive", calls.list_for_user, "doc", None, None, 10)


@pytest.mark.presence_from_clients
def test_list_for_admin(settings: Settings, clock: FrozenClock) -> None:
    ids = three_calls(settings, clock)
    calls.report_status("other", "appt3", Action.JOIN)
    calls.report_status("pat", "appt3", Action.JOIN)
    page = calls.list_for_admin(None, None, 2)
    assert [v.call.id for v in page.items] == [ids[2], ids[1]]
    assert page.next_cursor is not None
    rest = calls.list_for_admin(None, page.next_cursor, 2)
    assert [v.call.id for v in rest.items] == [ids[0]]
    assert rest.next_cursor is None
    started = calls.list_for_admin(CallStatus.IN_PROGRESS, None, 10)
    assert [(v.call.id, v.call.status) for v in started.items] == [(ids[2], "IN_PROGRESS")]
    assert calls.list_for_admin(CallStatus.NO_SHOW, None, 10).items == []


# --- stats ------------------------------------------------------------------------------


@pytest.mark.presence_from_clients
def test_stats_for_doctor(settings: Settings, clock: FrozenClock) -> None:
    yesterday = appointment_around(clock.ms - DAY_MS)
    appointment(clock, "appt2", **yesterday)
    appointment(clock, "appt3")
    for appointment_id, talk_ms in (("appt1", 60_000), ("appt2", 120_000)):
        calls.initiate(settings, "doc", appointment_id)
        calls.report_status("doc", appointment_id, Action.JOIN)
        calls.report_status("pat", appointment_id, Action.JOIN)
        clock.advance(talk_ms)
        calls.report_status("doc", appointment_id, Action.END)
    calls.initiate(settings, "doc", "appt3")
    stats = calls.stats_for_doctor("doc", None, None)
    assert stats.total_calls == 2
    assert stats.total_duration == 180
    assert stats.avg_duration == 90.0
    assert stats.avg_patient_wait is None
    assert stats.by_status == {
        "SCHEDULED": 1,
        "IN_PROGRESS": 0,
        "COMPLETED": 2,
        "CANCELLED": 0,
        "FAILED": 0,
        "NO_SHOW": 0,
    }
    day = yesterday["appointmentDate"]
    only_yesterday = calls.stats_for_doctor("doc", day, day)
    assert (only_yesterday.total_calls, only_yesterday.total_duration) == (1, 120)
    assert only_yesterday.by_status["SCHEDULED"] == 0
    empty = calls.stats_for_doctor("pat", None, None)
    assert (empty.total_calls, empty.total_duration, empty.avg_duration) == (0, 0, None)
    assert set(empty.by_status.values()) == {0}
    expect(Forbidden, "account_inactive", calls.stats_for_doctor, "stranger", None, None)


# --- a cancelled appointment ------------------------------------------------------------


def test_follow_cancelled_appointment_cancels_a_call_not_started(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    at = clock.advance(1_000)
    write(lambda: transitions.follow_cancelled_appointment("appt1", "clinic", at))
    row = stored_call(grant.call.id)
    assert (row.status, row.updated_at) == ("CANCELLED", at)
    assert audits("call.transition") == [
        (
            "clinic",
            grant.call.id,
            "appt1",
            {"from": "SCHEDULED", "to": "CANCELLED", "cause": "appointment_cancelled"},
        )
    ]


@pytest.mark.presence_from_clients
def test_follow_cancelled_appointment_leaves_a_started_call(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    calls.report_status("doc", "appt1", Action.JOIN)
    calls.report_status("pat", "appt1", Action.JOIN)
    write(lambda: transitions.follow_cancelled_appointment("appt1", "clinic", clock.ms))
    write(lambda: transitions.follow_cancelled_appointment("no-call", "clinic", clock.ms))
    assert stored_call(grant.call.id).status == "IN_PROGRESS"
    assert [a[3]["to"] for a in audits("call.transition")] == ["IN_PROGRESS"]


def test_cancelling_through_the_directory_cancels_the_call(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    appointment(clock, "appt1", status="CANCELLED")
    assert stored_call(grant.call.id).status == "CANCELLED"
    assert audits("call.transition")[0][0] == "admin"
    stored = read(lambda: clinic.get_appointment("appt1"))
    assert stored is not None and stored.status == "CANCELLED"
    assert directory.check_id("appt1", "id") == "appt1"
