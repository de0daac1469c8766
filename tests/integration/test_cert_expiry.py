"""A certificate nearing its expiry, weeks ahead: on central's dashboard (a banner and its
column, the nodes CSV), in central's ``/metrics`` and in ``tongban city status``.

One village of the city is enrolled for 10 days only; the others for the usual 365.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from central import authority, dashboard
from core.clock import SystemClock
from node import identity
from tests.helpers import TOWN, VILLAGE, VILLAGE_2, seeded_random
from tests.integration.webcentral import build_central, login
from tests.integration.webnode import serve

pytestmark = pytest.mark.slow
DAY = 86_400


def test_a_certificate_expiring_in_ten_days_is_flagged_weeks_ahead(tmp_path: Path) -> None:
    net = build_central(tmp_path)
    with authority.open_central(net.central_dir, net.clock) as central:
        token, _ = authority.issue_enroll_token(central, VILLAGE_2, random=seeded_random("token/v2"))
    home = net.node_dir(VILLAGE_2)
    made = identity.init(
        home,
        tier="village",
        code=VILLAGE_2,
        name="李家村便民服务中心",
        parent=TOWN,
        clock=net.clock,
        random=seeded_random(VILLAGE_2),
        token=token,
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.enroll(central, made.request_path.read_bytes(), valid_days=10)
        now = SystemClock().now()
        board = dashboard.snapshot(central.store.db, now=now)
        table = dashboard.to_csv(board, "nodes")
    assert [row.code for row in board.expiring] == [VILLAGE_2]
    (soon,) = board.expiring
    assert soon.cert_expires is not None and 9 * DAY < soon.cert_expires - now <= 10 * DAY
    assert "cert_expires" in table.splitlines()[0]
    with serve(net.central_dir, probe="/healthz") as web:
        login(web, "chakan")
        status, _, html = web.request("GET", "/")
        text = web.request("GET", "/metrics")[2]
    assert status == 200 and 'id="cert-expiry"' in html
    banner = html.split('id="cert-expiry"', 1)[1].split("</div>", 1)[0]
    assert VILLAGE_2 in banner and VILLAGE not in banner and "证书到期" in banner
    assert f'id="cert-{VILLAGE_2}" class="bad"' in html and f'id="cert-{VILLAGE}">' in html
    expiry = {
        s.labels["node"]: s.value
        for f in text_string_to_metric_families(text)
        if f.name == "tongban_node_certificate_expiry_timestamp_seconds"
        for s in f.samples
    }
    assert expiry[VILLAGE_2] == soon.cert_expires and expiry[VILLAGE] - now > 300 * DAY
