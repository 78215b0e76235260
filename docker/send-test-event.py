#!/usr/bin/env python
"""Send one signed test event to the service, as the Prosody module would, and report the answer.

Installed in the image as `videocalls-test-event`; run it in the service's container:
    docker compose -f docker-compose.yml -f docker-compose.jitsi.yml \
        exec videocalls videocalls-test-event [--url URL]
It signs with PROSODY_EVENTS_SECRET (the container's, i.e. VIDEOCALLS_EVENTS_SECRET) and sends a
`room.created` event for a room no appointment uses, so it changes no video call.
Exit status 0 when the service accepted it (204), 1 otherwise, with the likely cause.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from service.receiver.signing import sign

DEFAULT_URL = "http://127.0.0.1:8000/api/prosody/events"
TEST_ROOM = "videocalls-selftest"

HINTS = {
    401: "signature refused: the secret differs from the service's PROSODY_EVENTS_SECRET, "
    "or this machine's clock is more than 5 minutes off",
    400: "body refused: this tool and the service disagree on the event contract version",
    404: "no such endpoint: is this the videocalls service?",
    503: "the service cannot store events now: check its database (GET /readyz)",
}


def build_event(now_ms: int) -> dict[str, object]:
    return {
        "version": 1,
        "id": f"evt_{uuid.uuid4()}",
        "type": "room.created",
        "occurred_at": now_ms,
        "source": {"host": "selftest", "boot_id": f"b_selftest_{now_ms}", "seq": 1},
        "room": {
            "name": TEST_ROOM,
            "jid": f"{TEST_ROOM}@selftest",
            "meeting_id": str(uuid.uuid4()),
        },
        "reason": None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    args = parser.parse_args(argv)

    secrets = os.environ.get("PROSODY_EVENTS_SECRET", "").split()
    if not secrets:
        print(
            "PROSODY_EVENTS_SECRET is not set (VIDEOCALLS_EVENTS_SECRET in .env)", file=sys.stderr
        )
        return 1
    now = time.time()
    event = build_event(int(now * 1000))
    body = json.dumps(event, separators=(",", ":")).encode()
    timestamp = int(now)
    request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own)
        args.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "webhook-id": str(event["id"]),
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secrets[0], str(event["id"]), timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if status == 204:
        print(f"ok: {args.url} accepted test event {event['id']}")
        return 0
    print(
        f"HTTP {status} from {args.url}: {HINTS.get(status, 'unexpected answer')}", file=sys.stderr
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
