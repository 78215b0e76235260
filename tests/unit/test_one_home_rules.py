"""Rules that once lived in several places, each with its one definition (issue 11).

Each rule is tested on values, and a scan of `service/` checks that nobody grew a second copy:
rounding arithmetic, role comparisons, the `missing` vocabulary and the type-name switch.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from service.auth import AuthError
from service.domain import rules
from service.domain.model import CallStatus, EndReason, Missing, Role, missing_party, role_in
from service.domain.presence import CallDerivation, LobbyVisit, PresenceSession, Waiting
from service.domain.prosody import EventType, Occupant, ProsodyStarted, RoomEvent, Snapshot, type_of
from service.domain.record import SettledEnd, presence_record

SERVICE = Path(__file__).resolve().parents[2] / "service"


def _sources() -> dict[str, str]:
    return {str(p.relative_to(SERVICE)): p.read_text() for p in SERVICE.rglob("*.py")}


# --- whole seconds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ms,expected", [(0, 0), (499, 0), (500, 1), (1499, 1), (1500, 2), (2500, 3), (59_999.5, 60)]
)
def test_whole_seconds_rounds_half_up_never_to_even(ms: float, expected: int) -> None:
    assert rules.whole_seconds(ms) == expected


@pytest.mark.parametrize(
    "started,now,expected",
    [
        (10_000, 71_499, (71_499, 61)),
        (10_000, 71_500, (71_500, 62)),
        # A start stamped just after the clock was read: the end is the start.
        (80_000, 79_990, (80_000, 0)),
        # No start at all: ended now, lasted nothing.
        (None, 50_000, (50_000, 0)),
    ],
)
def test_a_client_end_never_precedes_the_start(
    started: int | None, now: int, expected: tuple[int, int]
) -> None:
    assert rules.client_end(started, now) == expected


def test_rounding_arithmetic_lives_only_in_the_rules() -> None:
    pattern = re.compile(r"\+\s*500\)?\s*/{1,2}\s*1000")
    found = [name for name, text in _sources().items() if pattern.search(text)]
    assert found == ["domain/rules.py"]


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uid,expected",
    [("doc", Role.DOCTOR), ("pat", Role.PATIENT), ("someone", Role.OTHER), (None, Role.OTHER)],
)
def test_role_in_an_appointment(uid: str | None, expected: Role) -> None:
    assert role_in("doc", "pat", uid) is expected


def test_role_comparisons_live_only_in_the_model() -> None:
    pattern = re.compile(r"\b(uid|user_id)\s*==\s*[\w.]*(doctor|patient)_uid\b")
    found = [name for name, text in _sources().items() if pattern.search(text)]
    assert found == ["domain/model.py"]
    assert sum(text.count("def role_in(") for text in _sources().values()) == 1


# --- who is missing ----------------------------------------------------------------------------


def test_missing_party_for_every_combination() -> None:
    expected = {
        (False, False): Missing.BOTH,
        (True, False): Missing.PATIENT,
        (False, True): Missing.DOCTOR,
        (True, True): Missing.NONE,
    }
    for doctor, patient in itertools.product((False, True), repeat=2):
        assert missing_party(doctor_came=doctor, patient_came=patient) is expected[doctor, patient]


def test_the_missing_vocabulary_is_one_enum() -> None:
    sources = _sources()
    assert sum(text.count("def missing_party(") for text in sources.values()) == 1
    # Literal "both" appears nowhere else: presence, the sweeper and OpenAPI use the enum.
    found = [name for name, text in sources.items() if re.search(r"[\"']both[\"']", text)]
    assert found == ["domain/model.py"]


def test_openapi_missing_enum_comes_from_the_model() -> None:
    from service.api.openapi import DOCUMENT

    presence = DOCUMENT["components"]["schemas"]["Presence"]["properties"]
    assert presence["missing"]["enum"] == [*(m.value for m in Missing), None]


# --- event types -------------------------------------------------------------------------------


def test_type_of_every_kind_of_event() -> None:
    room = RoomEvent(
        id="e1",
        type=EventType.OCCUPANT_JOINED,
        occurred_at=1,
        host="meet",
        boot_id="b",
        seq=1,
        room_name="r",
        meeting_id="m",
        occupant=Occupant("s", "u"),
    )
    snapshot = Snapshot(id="e2", occurred_at=1, host="meet", boot_id="b", seq=2, rooms=())
    started = ProsodyStarted(id="e3", occurred_at=1, host="meet", boot_id="b", seq=0)
    assert type_of(room) is EventType.OCCUPANT_JOINED
    assert type_of(snapshot) is EventType.ROOMS_SNAPSHOT
    assert type_of(started) is EventType.PROSODY_STARTED
    sources = _sources()
    assert sum(text.count("def type_of(") for text in sources.values()) == 1
    switches = [n for n, t in sources.items() if "return EventType.PROSODY_STARTED" in t]
    assert switches == ["domain/prosody.py"]


# --- auth errors -------------------------------------------------------------------------------


def test_auth_error_status_is_decided_by_the_error() -> None:
    assert AuthError("auth_unavailable").http_status == 503
    for code in ("missing_token", "invalid_token", "expired_token", "revoked_token"):
        assert AuthError(code).http_status == 401
    sources = _sources()
    found = [n for n, t in sources.items() if '"auth_unavailable"' in t and "raise" in t]
    assert "api/common.py" not in found


# --- the status path ---------------------------------------------------------------------------


def test_status_path_for_every_pair() -> None:
    for current, target in itertools.product(CallStatus, repeat=2):
        path = rules.status_path(current, target)
        if current is target:
            assert path == []
        elif rules.can_transition(current, target):
            assert path == [target]
        elif (current, target) == (CallStatus.SCHEDULED, CallStatus.COMPLETED):
            assert path == [CallStatus.IN_PROGRESS, CallStatus.COMPLETED]
        else:
            assert path == [], (current, target)
        # Every step of a path is an allowed transition.
        for before, after in itertools.pairwise([current, *path]):
            assert rules.can_transition(before, after)


def test_only_a_completed_call_keeps_its_end_against_a_derivation() -> None:
    for stored, derived in itertools.product(CallStatus, repeat=2):
        expected = stored is CallStatus.COMPLETED and derived is not CallStatus.COMPLETED
        assert rules.keeps_settled_end(stored, derived) is expected


# --- the presence record -----------------------------------------------------------------------


def _session(name: str, left_at: int | None, counted: bool) -> PresenceSession:
    return PresenceSession(
        session=name,
        user_id="doc",
        role=Role.DOCTOR,
        joined_at=1_000,
        left_at=left_at,
        end_reason=None if left_at is None else EndReason.LEFT,
        boot_id="b",
        host="meet",
        meeting_id="m",
        repaired=False,
        counted=counted,
    )


def _derivation(status: CallStatus) -> CallDerivation:
    return CallDerivation(
        status=status,
        doctor_joined_at=1_000,
        patient_joined_at=2_000,
        started_at=2_000,
        ended_at=None,
        duration=None,
        doctor_presence_s=9,
        patient_presence_s=8,
        missing=None,
        completed_at=None,
        cutoff=None,
        sessions=(
            _session("open", None, True),
            _session("open-late", None, False),
            _session("closed", 5_000, True),
        ),
        duration_uncertain=False,
        waiting=Waiting(Role.PATIENT, 1_500),
        doctor_wait_s=1,
        patient_wait_s=0,
        lobby=(LobbyVisit("k", Role.PATIENT, 1_500, 2_000, EndReason.ADMITTED, False),),
        open_sessions=1,  # derive_call counts them (incremental steps carry no sessions)
    )


def test_the_record_keeps_a_settled_end_and_counts_open_sessions() -> None:
    derived = _derivation(CallStatus.IN_PROGRESS)
    settled = SettledEnd(CallStatus.COMPLETED, 60_000, 58, True)
    kept = presence_record(derived, settled)
    assert (kept.ended_at, kept.duration, kept.duration_uncertain) == (60_000, 58, True)
    assert kept.open_sessions == 1
    assert (kept.waiting_role, kept.waiting_since) == (Role.PATIENT, 1_500)
    assert kept.lobby_visits == derived.lobby
    fresh = presence_record(derived, SettledEnd(CallStatus.IN_PROGRESS, None, None, False))
    assert (fresh.ended_at, fresh.duration, fresh.duration_uncertain) == (None, None, False)
    assert (fresh.doctor_presence, fresh.patient_presence) == (9, 8)


# --- the unit of work ------------------------------------------------------------------------

USE_CASES = ("calls", "tracking", "directory")


def test_no_use_case_imports_another() -> None:
    sources = _sources()
    for name in USE_CASES:
        others = "|".join(u for u in USE_CASES if u != name)
        pattern = rf"^from service(\.({others}) import| import .*\b({others})\b)"
        assert not re.search(pattern, sources[f"{name}.py"], re.MULTILINE), name


def test_no_work_closures_for_the_database() -> None:
    found = [n for n, t in _sources().items() if re.search(r"db\.run\(|def work\(\)", t)]
    assert found == []
