"""No input can stop the record: hostile requests to every endpoint and both receivers, on
SQLite and PostgreSQL, get a 4xx, store nothing, and never a 5xx.

Part one pins each defect an attacker's run found (regressions). Part two is a property
suite: valid requests with one part replaced by a hostile value, or hostile raw bodies,
about 1,000 requests per database in CI. A 5xx from the Prosody receiver is the worst case:
the module retries oldest-first, so one such event would block every later one.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.eventstream import Stream, signed
from service.receiver.signing import sign
from service.store import uow
from service.store.models import OccupantSession, ProsodyEvent, User
from tests.api.conftest import Api

ROOM = "appointment_appt1"
DEEP = 1_000
HUGE_INT = "9" * 5_000


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def stored_events() -> int:
    return uow.run(lambda: ProsodyEvent.select().count())


def post_event(api: Api, event: dict[str, Any]) -> Any:
    body, headers = signed(api.settings.prosody_events_secrets[0], event)
    return api.client.post("/api/prosody/events", content=body, headers=headers)


def post_signed_raw(api: Api, event_id: str, body: bytes) -> Any:
    ts = api.clock.ms // 1000
    headers = {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(api.settings.prosody_events_secrets[0], event_id, ts, body),
    }
    return api.client.post("/api/prosody/events", content=body, headers=headers)


def event_sync(api: Api, kind: str, body: bytes) -> Any:
    headers = {
        "Authorization": f"Bearer {api.settings.event_sync_token}",
        "content-type": "application/json",
    }
    return api.client.post(f"/api/event-sync/events/{kind}", content=body, headers=headers)


def cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def assert_refused(response: Any, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"message", "error"}


# --- part one: every defect of the attack run ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "who"),
    [
        ("post", "/api/video-calls/initiate", "doc"),
        ("patch", "/api/video-calls/appt1/status", "doc"),
        ("put", "/api/admin/users/u1", "admin"),
        ("put", "/api/admin/appointments/a1", "admin"),
    ],
)
def test_deep_nesting_in_bodies_is_a_400(call: Api, method: str, url: str, who: str) -> None:
    headers = call.admin() if who == "admin" else call.auth(who)
    headers["content-type"] = "application/json"
    for body in (nested(DEEP), "[" * DEEP + "]" * DEEP, nested(20)):
        response = call.client.request(method, url, content=body.encode(), headers=headers)
        assert_refused(response)
        assert response.json()["error"] == "invalid_json"


@pytest.mark.parametrize("path", ["/api/video-calls", "/api/admin/video-calls"])
@pytest.mark.parametrize(
    "value",
    [
        "[" * DEEP + "]" * DEEP,
        # A bool passes Python's int check; PostgreSQL refused to compare it with a bigint.
        '[true, "vc_x"]',
        f'[{HUGE_INT}, "vc_x"]',
        '[1, "vc_\\ud83d"]',
        '[1, "vc_x\\u0000"]',
    ],
)
def test_hostile_cursors_are_a_400(call: Api, path: str, value: str) -> None:
    headers = call.admin() if "admin" in path else call.auth("doc")
    response = call.client.get(path, params={"cursor": cursor(value)}, headers=headers)
    assert_refused(response)
    assert response.json()["error"] == "invalid_cursor"


@pytest.mark.parametrize("field", ["firstName", "lastName", "email", "profileImageUrl"])
@pytest.mark.parametrize("bad", ["\\ud83d", "a\\udc00b", "x\\u0000"])
def test_lone_surrogates_and_nul_in_admin_user_fields(call: Api, field: str, bad: str) -> None:
    body = {"firstName": "Ann", field: "PLACEHOLDER"}
    raw = json.dumps(body).replace("PLACEHOLDER", bad).encode()
    headers = {**call.admin(), "content-type": "application/json"}
    response = call.client.put("/api/admin/users/u-bad", content=raw, headers=headers)
    assert_refused(response)
    assert uow.run(lambda: User.select().where(User.uid == "u-bad").count()) == 0


def _joined(stream: Stream, now: int) -> dict[str, Any]:
    return stream.joined(ROOM, "m1", "s-1", "pat", now - 10_000)


def _snapshot(stream: Stream, now: int) -> dict[str, Any]:
    occupant = {"session": "s-1", "user_id": "pat", "joined_at": now - 60_000}
    return stream.snapshot(
        now - 5_000, [{"room": stream.room(ROOM, "m1"), "occupants": [occupant]}]
    )


Builder = Callable[[Stream, int], dict[str, Any]]
# (builder, path into the event, hostile JSON text put there)
SIGNED_CASES: list[tuple[Builder, tuple[Any, ...], str]] = [
    (_joined, ("room", "name"), '"appointment_\\ud83d"'),
    (_joined, ("occupant", "user_id"), '"\\ud83dpat"'),
    (_joined, ("source", "boot_id"), '"b_\\udfff"'),
    (_joined, ("room", "name"), '"appointment_appt1\\u0000"'),
    (_joined, ("room", "meeting_id"), '"m1\\u0000"'),
    (_joined, ("occupant", "session"), '"s\\u0000"'),
    (_joined, ("source", "host"), '"muc\\u0000"'),
    (_joined, ("source", "seq"), HUGE_INT),
    (_joined, ("occurred_at",), HUGE_INT),
    (_joined, ("occupant",), nested(DEEP)),
    (_joined, ("extra",), nested(DEEP)),
    (_joined, ("extra",), '"\\ud83d"'),
    (_snapshot, ("rooms", 0, "room", "name"), '"r\\u0000"'),
    (_snapshot, ("rooms", 0, "occupants", 0, "session"), '"s\\u0000"'),
    (_snapshot, ("rooms", 0, "occupants", 0, "user_id"), '"\\ud800"'),
    (_snapshot, ("rooms", 0, "occupants", 0, "joined_at"), HUGE_INT),
]


def _put(target: Any, path: tuple[Any, ...], marker: str) -> None:
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = marker


@pytest.mark.parametrize(("build", "path", "bad"), SIGNED_CASES)
def test_hostile_fields_in_signed_events(
    call: Api, build: Builder, path: tuple[Any, ...], bad: str
) -> None:
    event = build(Stream(), call.clock.ms)
    _put(event, path, "@@HOSTILE@@")
    body = json.dumps(event).replace('"@@HOSTILE@@"', bad).encode()
    response = post_signed_raw(call, event["id"], body)
    assert_refused(response)
    assert response.json()["error"] == "invalid_event"
    assert stored_events() == 0


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("room_name", '"appointment_\\ud83d"'),
        ("room_name", '"appointment_appt1\\u0000"'),
        ("room_jid", '"appointment_appt1\\u0000@muc.meet.jitsi"'),
        ("breakout_room_id", '"\\ud83d"'),
        ("created_at", HUGE_INT),
        ("extra", nested(DEEP)),
    ],
)
def test_hostile_fields_in_event_sync(call: Api, field: str, bad: str) -> None:
    body: dict[str, Any] = {
        "room_name": ROOM,
        "is_breakout": field == "breakout_room_id",
        "breakout_room_id": None,
        "created_at": call.clock.ms // 1000,
    }
    if field != "room_jid":
        body["room_jid"] = f"{ROOM}@muc.meet.jitsi"
    body[field] = "@@HOSTILE@@"
    raw = json.dumps(body).replace('"@@HOSTILE@@"', bad).encode()
    response = event_sync(call, "room/created", raw)
    assert_refused(response)
    assert stored_events() == 0


def test_duplicate_keys_and_nan_stay_refused(call: Api) -> None:
    event = _joined(Stream(), call.clock.ms)
    body = json.dumps(event)
    duplicate = body[:-1] + ', "type": "room.destroyed"}'
    assert_refused(post_signed_raw(call, event["id"], duplicate.encode()))
    nan = body.replace('"version": 1', '"version": NaN')
    assert_refused(post_signed_raw(call, event["id"], nan.encode()))
    headers = {**call.auth("doc"), "content-type": "application/json"}
    response = call.client.post(
        "/api/video-calls/initiate",
        content=b'{"appointmentId": "appt1", "appointmentId": "other"}',
        headers=headers,
    )
    assert_refused(response)
    assert stored_events() == 0


# --- part two: the property suite ---------------------------------------------------------

# Strings that broke a database or the parser, and their neighbours.
NASTY_TEXT = st.sampled_from(
    ["\x00", "a\x00b", "\ud83d", "\udc00", "x\ud800y", "\ufeff", "\u202e", "%00", "../", "a" * 5000]
)
TEXT = st.one_of(
    NASTY_TEXT,
    st.text(st.characters(codec=None, categories=None), max_size=40),
    st.text(max_size=300),
)
SCALAR = st.one_of(
    TEXT,
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**63) + 2),
    st.floats(allow_nan=False, allow_infinity=False),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
# Raw texts json.dumps would never write.
RAW_VALUE = st.one_of(
    st.integers(min_value=20, max_value=1_500).map(nested),
    st.integers(min_value=20, max_value=1_500).map(lambda n: "[" * n + "]" * n),
    st.just(HUGE_INT),
    st.sampled_from(["NaN", "-Infinity", "1e999999", '"\\ud83d"', '"\\u0000"', "0x10", "01"]),
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """`base` with one value (at any depth) replaced or added, as JSON bytes."""
    target: Any = base
    while True:
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if isinstance(target[key], (dict, list)) and draw(st.booleans()):
            target = target[key]
            continue
        break
    if isinstance(target, dict) and draw(st.booleans()):
        key = draw(st.sampled_from([*list(target), "extra"]))
    elif isinstance(target, list):
        key = draw(st.integers(0, max(0, len(target) - 1))) if target else None
    if key is None:
        target.append("@@HOSTILE@@")
    else:
        target[key] = "@@HOSTILE@@"
    text = json.dumps(base, ensure_ascii=True)
    if draw(st.booleans()):
        replacement = draw(RAW_VALUE)
    else:
        replacement = json.dumps(draw(VALUE), ensure_ascii=True)
    return text.replace('"@@HOSTILE@@"', replacement, 1).encode()


def _appointment_body(api: Api) -> dict[str, Any]:
    return {
        "doctorUid": "doc",
        "patientUid": "pat",
        "appointmentDate": api.clock.day(),
        "startTime": "00:00",
        "endTime": "23:59",
        "timezone": "UTC",
        "status": "CONFIRMED",
    }


def _event_sync_body(now_ms: int) -> dict[str, Any]:
    now_s = now_ms // 1000
    return {
        "room_name": ROOM,
        "room_jid": f"{ROOM}@muc.meet.jitsi",
        "is_breakout": False,
        "breakout_room_id": None,
        "occupant": {
            "occupant_jid": f"{ROOM}@muc.meet.jitsi/n",
            "id": "pat",
            "joined_at": now_s - 60,
            "left_at": now_s - 5,
        },
    }


def _query_text() -> st.SearchStrategy[str]:
    return st.one_of(TEXT, RAW_VALUE.map(cursor), VALUE.map(lambda v: cursor(json.dumps(v))))


REQUESTS_PER_EXAMPLE = 12
EXAMPLES = 90  # x 12 requests x 2 databases: over 2,000 hostile requests


def _send_all(api: Api, data: st.DataObject, counter: list[int]) -> None:
    doc = {**api.auth("doc"), "content-type": "application/json"}
    admin = {**api.admin(), "content-type": "application/json"}
    draw = data.draw
    responses = [
        api.client.post(
            "/api/video-calls/initiate",
            content=draw(mutated({"appointmentId": "appt1"})),
            headers=doc,
        ),
        api.client.patch(
            "/api/video-calls/appt1/status", content=draw(mutated({"action": "join"})), headers=doc
        ),
        api.client.put(
            "/api/admin/users/hostile",
            content=draw(mutated({"firstName": "A", "lastName": "B", "isActive": True})),
            headers=admin,
        ),
        api.client.put(
            "/api/admin/appointments/hostile",
            content=draw(mutated(_appointment_body(api))),
            headers=admin,
        ),
        api.client.get(
            "/api/video-calls"
            + _query(draw(st.sampled_from(["status", "limit", "cursor"])), draw(_query_text())),
            headers=doc,
        ),
        api.client.get(
            "/api/admin/video-calls"
            + _query(draw(st.sampled_from(["status", "limit", "cursor"])), draw(_query_text())),
            headers=admin,
        ),
        api.client.get(
            "/api/video-calls/stats" + _query(draw(st.sampled_from(["from", "to"])), draw(TEXT)),
            headers=doc,
        ),
        api.client.get(
            "/api/video-calls/" + _path_segment(draw(TEXT)), headers=doc, follow_redirects=False
        ),
        api.client.get(
            "/api/video-calls/token/" + _path_segment(draw(TEXT)),
            headers=doc,
            follow_redirects=False,
        ),
        event_sync(api, "occupant/left", draw(mutated(_event_sync_body(api.clock.ms)))),
    ]
    stream = Stream()
    now = api.clock.ms
    base = draw(
        st.sampled_from(
            [
                stream.joined(ROOM, "m1", "s-h", "pat", now - 30_000),
                stream.left(ROOM, "m1", "s-h", "pat", now - 10_000),
                stream.snapshot(
                    now - 5_000,
                    [
                        {
                            "room": stream.room(ROOM, "m1"),
                            "occupants": [
                                {"session": "s-h", "user_id": "pat", "joined_at": now - 30_000}
                            ],
                        }
                    ],
                ),
            ]
        )
    )
    body = draw(mutated(base))
    responses.append(post_signed_raw(api, base["id"], body))
    # Forged: a valid event signed with another key is never accepted.
    forged = stream.joined(ROOM, "m1", "s-forged", "pat", now - 1_000)
    forged_body, headers = signed(
        "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(), forged
    )
    before = stored_events()
    response = api.client.post("/api/prosody/events", content=forged_body, headers=headers)
    assert response.status_code == 401
    assert stored_events() == before
    responses.append(response)
    for response in responses:
        assert response.status_code < 500, (
            response.request.method,
            response.request.url,
            response.text,
        )
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/json")
    counter[0] += len(responses)


def _path_segment(text: str) -> str:
    # Lone surrogates go on the wire as the bytes a careless client would send.
    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"


def _query(name: str, value: str) -> str:
    return f"?{name}=" + quote(value.encode("utf-8", "surrogatepass"), safe="")


def test_hostile_requests_never_get_a_server_error(call: Api) -> None:
    counter = [0]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        _send_all(call, data, counter)

    run()
    assert counter[0] >= EXAMPLES * REQUESTS_PER_EXAMPLE
    # Nothing hostile reached the sessions: each one is the suite's valid session (signed or
    # event_sync's derived id); the forged one is nowhere.
    sessions = uow.run(lambda: {row.session for row in OccupantSession.select()})
    assert all(name == "s-h" or name.startswith("es_") for name in sessions), sessions
    forged = uow.run(
        lambda: ProsodyEvent.select().where(ProsodyEvent.data.contains("s-forged")).count()
    )
    assert forged == 0
