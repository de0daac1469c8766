"""The node's ``/healthz`` and ``/metrics`` (no login, no personal data: :mod:`web.health`).

Besides what every center reports, a node reports its link to its parent: its last
successful sync, what waits to go up and down, and the case tiles' counts.
"""

from __future__ import annotations

from nameko.web.handlers import http
from prometheus_client.core import GaugeMetricFamily
from werkzeug.wrappers import Request, Response

from node.desk import Desk
from node.web.deps import DeskProvider, WorkerDesk
from web.health import (
    Health,
    gauge,
    health_families,
    health_response,
    metrics_text,
    own_certificate,
    read_common,
    store_failed,
)


def node_health(worker: WorkerDesk) -> tuple[Health, Desk | None]:
    """What ``/healthz`` says of the node, and its desk when its store opened."""
    pool = worker.pool
    node = pool.config.node
    now = pool.clock.now()
    try:
        desk = worker.desk
    except Exception as exc:  # the store did not open: the refusal's code is the answer
        return store_failed("node", node.code, node.tier, now, exc), None
    health = read_common(Health("node", node.code, node.tier, now), desk.db)
    cert = own_certificate(desk.db, node.code, pool.keys.kid)
    if cert is not None:
        health.certificate_expires, health.certificate_revoked = cert.exp, cert.revoked
    status = desk.sync_status()
    health.last_sync, health.last_sync_error = status.last_ok, status.last_error
    return health.judge(needs_certificate=True), desk


def node_families(health: Health, desk: Desk) -> list[GaugeMetricFamily]:
    status = desk.sync_status()
    counts = desk.counts()
    cases = GaugeMetricFamily("tongban_cases", "Cases on the node's home page tiles", labels=["tile"])
    for tile in ("today", "open", "overdue", "queue"):
        cases.add_metric([tile], getattr(counts, tile))
    return [
        *health_families(health, desk.db, desk.config.database_path, desk.store.log.count()),
        gauge(
            "tongban_sync_last_success_timestamp_seconds",
            "Last sync that ended well",
            status.last_ok,
        ),
        gauge("tongban_sync_last_attempt_timestamp_seconds", "Last sync begun", status.last_attempt),
        gauge("tongban_sync_failing", "1 when the last sync attempt failed", int(bool(status.last_error))),
        gauge("tongban_backlog_up_records", "The node's records its parent lacks", status.waiting_up),
        gauge(
            "tongban_backlog_down_records",
            "Left to come down at the last sync",
            status.waiting_down,
        ),
        cases,
    ]


class HealthPages:
    web: WorkerDesk = DeskProvider()

    @http("GET", "/healthz")
    def healthz(self, request: Request) -> Response:
        return health_response(node_health(self.web)[0])

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        health, desk = node_health(self.web)
        if desk is None:
            return metrics_text([gauge("tongban_healthy", "1 when every /healthz check passes", 0)])
        return metrics_text(node_families(health, desk))
