"""docs/grafana-dashboard.json queries only metrics the service exports, and names its job."""

from __future__ import annotations

import json
import re

from service import metrics
from tests.conftest import repo_root

DASHBOARD = repo_root() / "docs" / "grafana-dashboard.json"


def exported_samples() -> set[str]:
    names = {"videocalls_calls"}  # computed at scrape time by metrics.CallsToday
    for metric in (
        metrics.HTTP_REQUESTS,
        metrics.HTTP_DURATION,
        metrics.EVENTS_RECEIVED,
        metrics.EVENT_LAG,
        metrics.SWEEPS,
        metrics.WEBHOOK_DELIVERIES,
    ):
        for family in metric.describe():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
    return names


def test_every_query_names_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in expressions for name in re.findall(r"\bvideocalls_[a-z_]+", e)}
    assert used, "the dashboard queries nothing"
    assert used <= exported_samples(), used - exported_samples()
    # Every metric of the issue has a panel.
    for name in (
        "videocalls_http_requests_total",
        "videocalls_http_request_duration_seconds_bucket",
        "videocalls_events_received_total",
        "videocalls_event_lag_seconds_bucket",
        "videocalls_calls",
        "videocalls_sweeps_total",
        "videocalls_webhook_deliveries_total",
    ):
        assert name in used, name
    # Each query is scoped to the job the operator guide's scrape config names.
    assert all('job="$job"' in e for e in expressions)
    assert "job_name: videocalls" in (repo_root() / "docs" / "operator-guide.md").read_text()
