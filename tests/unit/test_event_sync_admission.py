"""service.receiver.admission: which peers and which times the event_sync receiver admits."""

from __future__ import annotations

import ipaddress

import pytest

from service.config import DEFAULT_EVENT_SYNC_NETWORKS
from service.receiver.admission import refused_peer, refused_time

NETWORKS = tuple(ipaddress.ip_network(n) for n in DEFAULT_EVENT_SYNC_NETWORKS)


@pytest.mark.parametrize(
    ("peer", "headers", "reason"),
    [
        ("127.0.0.1", {}, None),
        ("172.18.0.5", {}, None),
        ("::ffff:10.0.0.1", {}, None),
        ("fd12::1", {}, None),
        ("8.8.8.8", {}, "network_not_allowed"),
        ("::ffff:8.8.8.8", {}, "network_not_allowed"),
        ("172.32.0.1", {}, "network_not_allowed"),
        ("testclient", {}, "not_an_ip_address"),
        (None, {}, "no_peer_address"),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, "forwarded"),
        ("127.0.0.1", {"forwarded": "for=127.0.0.1"}, "forwarded"),
        ("127.0.0.1", {"x-real-ip": "127.0.0.1"}, "forwarded"),
    ],
)
def test_refused_peer(peer: str | None, headers: dict[str, str], reason: str | None) -> None:
    assert refused_peer(peer, headers, NETWORKS) == reason


def test_refused_time_counts_whole_seconds_generously() -> None:
    now = 1_800_000_000_500
    assert refused_time(now - 120_000, now, 120) is None
    # The second 1_799_999_880 ran until ...880.999: not yet over 120 s ago at ...000.500.
    assert refused_time(1_799_999_880_000, now, 120) is None
    assert refused_time(1_799_999_879_000, now, 120) == "stale"
    assert refused_time(now + 120_000, now, 120) is None
    assert refused_time(now + 120_001, now, 120) == "future"
