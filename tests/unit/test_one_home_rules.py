"""Rules that once lived in several places, each with its one definition (issue 11).

Each rule is tested on values, and a scan of `service/` (its modules and the console's
scripts) checks that nobody grew a second copy: rounding arithmetic, role comparisons, the
`missing` vocabulary, the type-name switch, the `whsec_` prefix, the event body limit, the
event_sync paths and the length of an id.
"""

from __future__ import annotations

import ast
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
    """Every module of service/ and the console's JavaScript, by path under service/."""
    files = [*SERVICE.rglob("*.py"), *SERVICE.glob("console/*.js")]
    return {str(p.relative_to(SERVICE)): p.read_text() for p in files}


def _modules() -> dict[str, ast.Module]:
    return {name: ast.parse(text) for name, text in _sources().items() if name.endswith(".py")}


def _literals(tree: ast.Module) -> list[str]:
    """The module's string constants (f-strings' parts too), docstrings left out."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _assigned(name: str) -> list[str]:
    """The modules that assign `name` at their top level."""
    found = []
    for module, tree in _modules().items():
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.append(module)
    return sorted(found)


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


# --- the console's words and role literals -------------------------------------------------

ROLE_AND_MISSING = {*Role, *Missing}
# Modules other changes of this issue are rewriting (service/api/openapi.py, shapes.py,
# admin_views.py): their restatements are allowed here until those land, and no others.
REWRITTEN_ELSEWHERE = {"api/openapi.py", "api/shapes.py", "api/admin_views.py"}


def test_roles_and_missing_parties_are_compared_through_their_enums() -> None:
    found = set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(
                    isinstance(side, ast.Constant) and side.value in ROLE_AND_MISSING
                    for side in sides
                ):
                    found.add(name)
    assert found <= REWRITTEN_ELSEWHERE, found - REWRITTEN_ELSEWHERE
    values = "|".join(sorted(ROLE_AND_MISSING))
    scripts = {n: t for n, t in _sources().items() if n.endswith(".js")}
    assert scripts
    compare = re.compile(rf"[=!]==?\s*[\"']({values})[\"']")
    assert [n for n, t in scripts.items() if compare.search(t)] == []


# --- the whsec_ prefix -------------------------------------------------------------------------


def test_the_whsec_prefix_is_written_and_checked_once() -> None:
    sources = _sources()
    written = sorted(
        n for n, tree in _modules().items() if any("whsec_" in s for s in _literals(tree))
    )
    # logs.py's is the redaction pattern (a secret found in any text), not a check of one.
    assert written == ["logs.py", "receiver/signing.py"]
    assert not any("whsec_" in t for n, t in sources.items() if n.endswith(".js"))
    checks = [n for n, t in sources.items() for _ in re.finditer(r"startswith\(SECRET_PREFIX\)", t)]
    assert checks == ["config_values.py"]
    assert sum(t.count("def whsec_encoded(") for t in sources.values()) == 1
    # One decoding of a secret's key: the signer's, which the settings' checks call too.
    decoders = [n for n, t in sources.items() if re.search(r"\bbase64\.b64decode\(", t)]
    assert decoders == ["receiver/signing.py"]


# --- the limits and vocabulary of Prosody's events ---------------------------------------------

FOUR_MIB = re.compile(
    r"\b4\s*\*\s*1024\s*\*\s*1024\b|\b4_?194_?304\b|\b4\s*<<\s*20\b|\b2\s*\*\*\s*22\b"
)


def test_the_event_body_limit_is_written_once() -> None:
    from service.api import prosody
    from service.receiver import parse

    assert [n for n, t in _sources().items() if FOUR_MIB.search(t)] == ["receiver/parse.py"]
    assert _assigned("MAX_BODY_BYTES") == ["api/middleware.py", "receiver/parse.py"]
    assert prosody.MAX_EVENT_BODY is parse.MAX_BODY_BYTES  # the route's limit is the parser's


def test_the_event_sync_paths_are_listed_once() -> None:
    from service.api import prosody
    from service.receiver import parse

    assert _assigned("EVENT_SYNC_KINDS") == ["receiver/parse.py"]
    assert prosody.EVENT_SYNC_KINDS is parse.EVENT_SYNC_KINDS
    for kind in parse.EVENT_SYNC_KINDS:
        holders = [n for n, tree in _modules().items() if kind in _literals(tree)]
        assert holders == ["receiver/parse.py"], kind


def test_the_length_of_an_id_is_written_once() -> None:
    from service import fields
    from service.receiver import signing

    assert _assigned("MAX_ID_CHARS") == ["fields.py"]
    assert fields.ID_REGEX.endswith(f"{{1,{fields.MAX_ID_CHARS}}}$")
    # The Standard Webhooks header's own bound is another rule, under its own name.
    assert signing.MAX_WEBHOOK_ID_CHARS != fields.MAX_ID_CHARS
    restated = re.compile(rf"\{{1,{fields.MAX_ID_CHARS}\}}|\b1-{fields.MAX_ID_CHARS}\b")
    found = {n for n, t in _sources().items() if restated.search(t)}
    # Beside those rewrites, restated in openapi_console.py's _ID pattern and directory.py's
    # message (not this change's modules): none may be added.
    assert found <= REWRITTEN_ELSEWHERE | {"api/openapi_console.py", "directory.py"}, found
    numbers = {
        name
        for name, tree in _modules().items()
        if not name.startswith("store/migrations/")  # frozen history: the columns as created
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == fields.MAX_ID_CHARS
    }
    # Beside fields.py: cli.py's 128 + signum (a shell's exit status, another rule), and
    # restatements in modules this change does not own (auth/dev.py's MAX_UID_LENGTH,
    # store/models.py's column widths, the rewrites'): none may be added.
    assert "fields.py" in numbers
    allowed = {"fields.py", "cli.py", "auth/dev.py", "store/models.py"} | REWRITTEN_ELSEWHERE
    assert numbers <= allowed, numbers - allowed
