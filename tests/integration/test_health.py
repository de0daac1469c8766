"""``/healthz`` and ``/metrics`` of a node's and central's real web service, over HTTP.

Neither needs a login or shows personal data; ``/metrics`` is read back with the
Prometheus client's own parser, as a scraper would read it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sync.link.protocol import VERSIONS
from tests.helpers import CITY, VILLAGE
from tests.integration.webnode import GOOD_ID, build_city, serve

pytestmark = pytest.mark.slow


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(dict(s.labels), s.value) for s in f.samples] for f in text_string_to_metric_families(text)
    }


def test_a_village_reports_its_health_and_metrics_without_a_login(tmp_path: Path) -> None:
    net = build_city(tmp_path)
    with serve(net.node_dir(VILLAGE), probe="/healthz") as web:
        status, headers, body = web.request("GET", "/healthz")
        assert status == 200, body
        health = json.loads(body)
        assert health["status"] == "ok" and health["code"] == VILLAGE and health["role"] == "node"
        assert health["certificate_expires"] > health["now"] and not health["certificate_revoked"]
        assert health["catalog_version"] >= 1 and health["protocol"] >= 2
        assert "never synced" in health["warnings"]
        assert GOOD_ID not in body and "王丽" not in body  # no personal data, no clerk
        status, headers, text = web.request("GET", "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        metrics = families(text)
        log = (net.node_dir(VILLAGE) / "web.log").read_text()
    # every line of the program's log has its time; each request has its line (the access log)
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ "
    assert re.search(stamp + r'INFO .*"GET /healthz HTTP/1.1" 200', log, re.M), log
    assert re.search(r"^\d{4}-\d\d-\d\d .* INFO tongban.run: .*新阳村", log, re.M), log
    assert metrics["tongban_healthy"] == [({}, 1.0)]
    ((labels, _),) = metrics["tongban_info"]
    assert labels["code"] == VILLAGE and labels["tier"] == "village"
    assert labels["protocol"] == str(VERSIONS[0])
    assert metrics["tongban_records"][0][1] > 0 and metrics["tongban_store_bytes"][0][1] > 0
    assert metrics["tongban_certificate_expiry_timestamp_seconds"][0][1] == health["certificate_expires"]
    assert {labels["tile"] for labels, _ in metrics["tongban_cases"]} == {"today", "open", "overdue", "queue"}
    assert "tongban_backlog_up_records" in metrics and "tongban_sync_failing" in metrics


def test_central_reports_every_node_in_its_metrics(tmp_path: Path) -> None:
    net = build_city(tmp_path)
    with serve(net.central_dir, probe="/healthz") as web:
        status, _, body = web.request("GET", "/healthz")
        assert status == 200 and json.loads(body)["code"] == CITY
        metrics = families(web.request("GET", "/metrics")[2])
    expiry = {
        labels["node"]: value
        for labels, value in metrics["tongban_node_certificate_expiry_timestamp_seconds"]
    }
    assert VILLAGE in expiry and all(value > 0 for value in expiry.values())
    assert metrics["tongban_forks"] == [({}, 0.0)]
    assert {labels["node"] for labels, _ in metrics["tongban_node_revoked"]} >= {VILLAGE}
