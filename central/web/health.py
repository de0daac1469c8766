"""Central's ``/healthz`` and ``/metrics`` (no login, no personal data: :mod:`web.health`).

Besides what every center reports, central reports each node as the dashboard shows it:
last contact, backlog and rejected at its last status report, whether it is revoked,
when its certificate expires, and the forks of the city.
"""

from __future__ import annotations

from nameko.web.handlers import http
from prometheus_client.core import GaugeMetricFamily
from werkzeug.wrappers import Request, Response

from central import config as central_config
from central import dashboard, registry
from central.authority import Central
from central.keyring import REBUILDING
from central.web.deps import CentralProvider, WorkerCentral
from sync.record.forks import open_forks
from web.health import (
    Health,
    gauge,
    health_families,
    health_response,
    metrics_text,
    read_common,
    store_failed,
)

NODE_LABELS = ["node", "tier"]


def central_health(worker: WorkerCentral) -> tuple[Health, Central | None]:
    """What ``/healthz`` says of central, and the opened central when its store opened."""
    pool = worker.pool
    now = pool.clock.now()
    try:
        central = worker.central
    except Exception as exc:  # the store did not open: the refusal's code is the answer
        code = central_config.load(pool.home).central.code
        return store_failed("central", code, "central", now, exc), None
    health = read_common(Health("central", central.code, "central", now), central.store.db)
    if (central.config.home / REBUILDING).exists():
        health.warnings.append("rebuilding")
    return health.judge(needs_certificate=False), central


def node_families(central: Central, now: int) -> list[GaugeMetricFamily]:
    """One series per node and figure, labelled with the node's code and tier."""
    db = central.store.db
    contact = GaugeMetricFamily(
        "tongban_node_last_contact_timestamp_seconds", "When central last heard of a node", labels=NODE_LABELS
    )
    backlog = GaugeMetricFamily(
        "tongban_node_backlog_records",
        "Records waiting to go up at the node's last report",
        labels=NODE_LABELS,
    )
    rejected = GaugeMetricFamily(
        "tongban_node_rejected_records",
        "Records the node's store refused, at its last report",
        labels=NODE_LABELS,
    )
    revoked = GaugeMetricFamily(
        "tongban_node_revoked", "1 when no certificate of the node is left unrevoked", labels=NODE_LABELS
    )
    expiry = GaugeMetricFamily(
        "tongban_node_certificate_expiry_timestamp_seconds",
        "When the node's live certificate expires",
        labels=NODE_LABELS,
    )
    for row in dashboard.snapshot(db, now=now).nodes:
        key = [row.code, row.tier]
        revoked.add_metric(key, int(row.revoked))
        for family, value in ((contact, row.last_contact), (backlog, row.backlog), (rejected, row.rejected)):
            if value is not None:
                family.add_metric(key, value)
    seen: set[str] = set()
    for cert in registry.nodes(db):  # newest per code first
        if not cert.revoked and cert.code not in seen:
            seen.add(cert.code)
            expiry.add_metric([cert.code, cert.tier], cert.exp)
    forks = gauge("tongban_forks", "Open forks of the city central holds evidence of", len(open_forks(db)))
    return [contact, backlog, rejected, revoked, expiry, forks]


class HealthPages:
    web: WorkerCentral = CentralProvider()

    @http("GET", "/healthz")
    def healthz(self, request: Request) -> Response:
        return health_response(central_health(self.web)[0])

    @http("GET", "/metrics")
    def metrics(self, request: Request) -> Response:
        health, central = central_health(self.web)
        if central is None:
            return metrics_text([gauge("tongban_healthy", "1 when every /healthz check passes", 0)])
        db = central.store.db
        return metrics_text(
            [
                *health_families(health, db, central.config.database_path, central.store.log.count()),
                *node_families(central, health.now),
            ]
        )
