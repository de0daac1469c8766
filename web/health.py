"""``/healthz`` and ``/metrics`` of a node's or central's web service, built from its store.

Both answer without a login and carry no personal data: counts, timestamps, codes and
versions only. ``/healthz`` is JSON (:class:`Health`) with HTTP 200 when every check
passes and 503 when one fails; monitoring and the provisioning playbook read it after a
start. ``/metrics`` is the Prometheus text format, written by the official client library
(:func:`metrics_text`), so any scraper of the usual stack reads it; example alert rules
are in ``docs/alerts.yml``.

A check fails when the store does not open, the center's own certificate is revoked or
expired, or the catalog it holds has expired. A certificate that expires within
:data:`CERT_WARN_DAYS`, a node that has not synced yet or whose last attempt failed,
and a node with no catalog yet are warnings: the center works, an operator should look.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlite_utils import Database
from werkzeug.wrappers import Response

from sync.link.protocol import VERSIONS
from sync.projection.catalog import newest_expiry, newest_version
from sync.record.refused import rejections
from sync.record.trust import Certificate, certificates

__all__ = ["CERT_WARN_DAYS", "Health", "health_response", "metrics_text", "own_certificate"]

DAY = 86_400
CERT_WARN_DAYS = 30
"""A certificate closer than this to its expiry is a warning on the dashboard and here."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _software_version() -> str:
    try:
        return metadata.version("tongban")
    except metadata.PackageNotFoundError:
        return "unknown"


SOFTWARE_VERSION = _software_version()
"""The version of the installed software, as ``pip`` and the playbooks see it."""


@dataclass
class Health:
    """What ``/healthz`` reports for one center."""

    role: str  # "node" or "central"
    code: str
    tier: str
    now: int
    version: str = SOFTWARE_VERSION
    protocol: int = VERSIONS[0]
    store: bool = True
    certificate_expires: int | None = None  # None: central (no certificate) or none held
    certificate_revoked: bool = False
    catalog_version: int = 0
    catalog_expires: int | None = None
    last_sync: int | None = None
    last_sync_error: str | None = None
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def judge(self, needs_certificate: bool) -> Health:
        """Fill in :attr:`failures` and :attr:`warnings` from what was read."""
        if not self.store:
            self.failures.append("store")
        if needs_certificate:
            if self.certificate_expires is None:
                self.failures.append("certificate missing")
            elif self.certificate_revoked:
                self.failures.append("certificate revoked")
            elif self.certificate_expires <= self.now:
                self.failures.append("certificate expired")
            elif self.certificate_expires - self.now < CERT_WARN_DAYS * DAY:
                self.warnings.append("certificate expires soon")
        if self.catalog_expires is None:
            self.warnings.append("no catalog")
        elif self.catalog_expires <= self.now:
            self.failures.append("catalog expired")
        if needs_certificate and self.last_sync is None:
            self.warnings.append("never synced")
        if self.last_sync_error:
            self.warnings.append("last sync failed")
        return self

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "failing", **asdict(self)}


def own_certificate(db: Database, code: str, kid: bytes) -> Certificate | None:
    """The certificate of ``code`` for ``kid`` that ``db`` holds, if any."""
    for cert in certificates(db, code):
        if cert.kid == kid:
            return cert
    return None


def read_common(health: Health, db: Database) -> Health:
    """The catalog a store holds, into ``health``."""
    health.catalog_version = newest_version(db)
    health.catalog_expires = newest_expiry(db)
    return health


def health_response(health: Health) -> Response:
    body = json.dumps(health.as_json(), ensure_ascii=False, sort_keys=True)
    response = Response(body, status=200 if health.ok else 503, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def store_failed(role: str, code: str, tier: str, now: int, exc: Exception) -> Health:
    """The health of a center whose store did not open: the code of the refusal only."""
    health = Health(role, code, tier, now, store=False)
    health.failures.append(f"store: {getattr(getattr(exc, 'code', None), 'value', 'E_INTERNAL')}")
    return health


class Snapshot:
    """A Prometheus collector over values read once for one scrape."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return iter(self.families)


def gauge(
    name: str, doc: str, value: float | None, labels: dict[str, str] | None = None
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), value)
    return family


def health_families(health: Health, db: Database, database: Path, records: int) -> list[GaugeMetricFamily]:
    """The metrics every center has: up, version, store, records, rejected, certificate, catalog."""
    info = GaugeMetricFamily(
        "tongban_info",
        "The center and the software it runs",
        labels=["role", "code", "tier", "version", "protocol"],
    )
    info.add_metric([health.role, health.code, health.tier, health.version, str(health.protocol)], 1)
    rejected = GaugeMetricFamily("tongban_rejected_records", "Records refused, by code", labels=["code"])
    by_code: dict[str, int] = {}
    for row in rejections(db):
        by_code[row.code] = by_code.get(row.code, 0) + row.times
    for code, times in sorted(by_code.items()):
        rejected.add_metric([code], times)
    return [
        info,
        gauge("tongban_healthy", "1 when every /healthz check passes", 1 if health.ok else 0),
        gauge("tongban_store_bytes", "Size of the store's database file", _size(database)),
        gauge("tongban_records", "Signed records the store holds", records),
        rejected,
        gauge(
            "tongban_certificate_expiry_timestamp_seconds",
            "When the center's own certificate expires",
            health.certificate_expires,
        ),
        gauge(
            "tongban_certificate_revoked",
            "1: certificate revoked",
            int(health.certificate_revoked),
        ),
        gauge("tongban_catalog_version", "The newest catalog release held", health.catalog_version),
        gauge(
            "tongban_catalog_expiry_timestamp_seconds",
            "Catalog expiry",
            health.catalog_expires,
        ),
    ]


def metrics_text(families: list[GaugeMetricFamily]) -> Response:
    """``/metrics``: ``families`` in the Prometheus text format, from a registry of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(families))
    response = Response(generate_latest(registry), mimetype=None, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _size(database: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        path = database.with_name(database.name + suffix)
        if path.exists():
            total += path.stat().st_size
    return total
