"""The floor: a bare Starlette app that does what any implementation on this stack must.

Its one endpoint parses the same JSON body as `POST /api/video-calls/initiate` and signs a
Jitsi JWT with the same claims (so the same size) with PyJWT, then answers a response of the
same shape. No database, no authentication, no request log. It is served by uvicorn with the
settings `videocalls serve` uses, so the ratio service / baseline is what the service adds.

    python -m bench.baseline_app --port 8001 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.cli import UVICORN_OPTIONS

# The same values the service's tokens carry for a bench doctor (bench/data.py's users).
APP_ID = "clinic-app"
DOMAIN = "meet.example.test"
TTL = 10800
FEATURES = {
    "recording": True,
    "livestreaming": True,
    "screen-sharing": True,
    "transcription": False,
    "outbound-call": False,
    "sip-outbound-call": False,
}
SECRET = os.environ.get("JITSI_APP_SECRET", "") or uuid.uuid4().hex * 2


def _claims(appointment_id: str, now_s: int) -> dict[str, Any]:
    room = f"appointment_{appointment_id}".lower()
    user = {
        "id": "doc_0000",
        "name": "Dr. Bench Doctor0000",
        "moderator": True,
        "affiliation": "owner",
        "lobby_bypass": True,
    }
    return {
        "aud": APP_ID,
        "iss": APP_ID,
        "sub": DOMAIN,
        "room": room,
        "iat": now_s,
        "nbf": now_s - 30,
        "exp": now_s + TTL,
        "jti": uuid.uuid4().hex,
        "moderator": True,
        "context": {"user": user, "features": FEATURES},
    }


async def initiate(request: Request) -> Response:
    try:
        body = json.loads(await request.body())
        appointment_id = body["appointmentId"]
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"message": "bad body", "error": "invalid_json"}, status_code=400)
    now_s = int(time.time())
    claims = _claims(str(appointment_id), now_s)
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    return JSONResponse(
        {
            "message": "Video call initiated successfully",
            "videoCall": {
                "id": "vc_" + claims["jti"],
                "appointmentId": appointment_id,
                "roomName": claims["room"],
                "status": "SCHEDULED",
            },
            "jitsiToken": token,
            "meetingLink": f"https://{DOMAIN}/{claims['room']}?jwt={token}",
            "userRole": "doctor",
            "isModerator": True,
            "expiresIn": "3 hours",
            "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now_s + TTL)),
        }
    )


async def readyz(request: Request) -> Response:
    return JSONResponse({"status": "ready"})


app = Starlette(
    routes=[
        Route("/baseline/initiate", initiate, methods=["POST"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Exactly the uvicorn settings of `videocalls serve` (loop and http left on auto).
    uvicorn.run(
        "bench.baseline_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        **UVICORN_OPTIONS,
    )


if __name__ == "__main__":
    main()
