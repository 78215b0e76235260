"""The OpenAPI facts of GET /metrics (service/api/prometheus.py), and its security scheme.

The console's own operations are documented beside their routes (api/console.py for its
files, api/admin_views.py for its views); their answers' schemas come from
service/wire/console.py.
"""

from __future__ import annotations

from typing import Final

from service.api import apidoc as doc

OPERATIONS: Final[doc.JSON] = {
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics (text format), with METRICS_TOKEN",
            "tags": ["operations"],
            "security": [{"metricsToken": []}],
            "responses": {
                "200": {
                    "description": "Prometheus' text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": doc.string()}},
                },
                "401": doc.error("Missing or wrong token", ["missing_token", "invalid_token"]),
                "404": doc.error(
                    "Metrics are disabled (METRICS_TOKEN unset)", ["metrics_disabled"]
                ),
                "503": doc.error(
                    "The database cannot be reached; retry later", ["database_unavailable"]
                ),
            },
        }
    },
}

SECURITY_SCHEMES: Final[doc.JSON] = {
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "METRICS_TOKEN, in Prometheus' scrape config (authorization.credentials)",
    }
}
