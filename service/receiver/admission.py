"""What the stock `event_sync` receiver admits: which peers, and which event times.

event_sync signs nothing and names its host in the body, so a static bearer token is all that
stands between a request and a call's record. Three more checks narrow that down:

- the peer: the socket's address must be in EVENT_SYNC_ALLOWED_NETWORKS, and the request must
  not have come through a proxy (any forwarding header). event_sync talks to the service
  directly on Prosody's network; a request that a reverse proxy forwarded came from outside,
  whatever address the proxy connects from (on one host, loopback or Docker's bridge gateway,
  both inside the default networks). Refusing those headers also means the address checked is
  always the socket's: uvicorn (proxy_headers) rewrites it from X-Forwarded-For otherwise.
- the host: every event is attributed to EVENT_SYNC_HOST (the parser is given it), never to a
  host the body names.
- the time: an event more than EVENT_SYNC_MAX_AGE seconds before or after its arrival (the
  service's clock) is refused, so nobody can write a consultation into the past or future.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from service.config import Network

# Headers a proxy adds; event_sync (Prosody's net.http) sends none of them.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def refused_peer(
    peer: str | None, headers: Mapping[str, str], networks: Iterable[Network]
) -> str | None:
    """Why a request from socket address `peer` is refused (None: admitted); the reason is
    for the log, never for the sender."""
    if any(name in headers for name in FORWARDING_HEADERS):
        return "forwarded"
    if not peer:
        return "no_peer_address"
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return "not_an_ip_address"
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not any(address in network for network in networks):
        return "network_not_allowed"
    return None


def refused_time(
    occurred_at_ms: int, now_ms: int, max_age_s: int, resolution_ms: int = 1000
) -> str | None:
    """Why an event's time is refused: "stale" or "future" when it is more than `max_age_s`
    from now, else None.

    event_sync's times are whole seconds (os.time(), rounded down): the time t names a moment
    in [t, t + resolution_ms), which is stale only once all of it is over max_age ago."""
    bound = max_age_s * 1000
    if occurred_at_ms + resolution_ms - 1 < now_ms - bound:
        return "stale"
    if occurred_at_ms > now_ms + bound:
        return "future"
    return None
