"""Backdating inside a grant's validity: central's re-check flags what no honest node signs.

A node's clock is its own, so a record's time is the author's word. Two witnesses bound
it: the record before it in the author's chain (a later record cannot be older), and the
parent's receipts (``link.receipt``): a record was signed no earlier than ``max_offline``
days before the first receipt that covers it, since a node that had it was offline no
longer than that. The village here signs with the real key; the town and central are the
real ones, over real sessions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from central import authority, recheck
from central.config import CONFIG_FILE
from core.clock import FixedClock
from core.errors import ErrorCode
from sync.record.db import transaction
from tests.helpers import CITY, TOWN, VILLAGE, open_desk
from tests.integration.syncnet import City, build_delegated_city, proxy_form, take_in

DAY = 86_400
IDS = ("110105194912310046", "110105194912310062")


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_delegated_city(tmp_path)


def _checks(city: City) -> dict[str, tuple[str, str | None]]:
    """Central's re-check as its duties run it: with the ``[recheck]`` of its central.toml."""
    with authority.open_central(city.net.central_dir, city.clock) as central:
        recheck.recheck(central.store, CITY, max_offline_days=central.config.recheck.max_offline_days)
        rows = central.store.db.conn.execute("SELECT case_no, verdict, code FROM intake_checks").fetchall()
        return {case_no: (verdict, code) for case_no, verdict, code in rows}


def _sync_up(city: City) -> None:
    with city.serving(CITY, TOWN):
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok


def test_an_intake_dated_before_its_chain_predecessor_is_refused(city: City) -> None:
    city.clock.advance(3 * DAY)
    honest = take_in(city, VILLAGE, IDS[0])
    # The same key signs the next intake with a clock a day behind the record before it.
    with open_desk(city.home(VILLAGE), FixedClock(t=city.clock.now() - DAY)) as desk:
        backdated = desk.intake(proxy_form(desk, TOWN, IDS[1]), actor="wangli").case_no
    _sync_up(city)
    checks = _checks(city)
    assert checks[honest] == ("ok", None)
    assert checks[backdated] == ("refused", ErrorCode.BACKDATED.value)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        flagged = {f.case_no: f for f in recheck.flagged(central.store)}
    assert "before" in flagged[backdated].detail


def test_an_intake_dated_more_than_max_offline_before_its_first_receipt_is_refused(city: City) -> None:
    # Signed a day after the village's last session, sent up 31 days later: no honest node
    # that took it in then stayed offline that long.
    city.clock.advance(DAY)
    case_no = take_in(city, VILLAGE, IDS[0])
    city.clock.advance(31 * DAY)
    _sync_up(city)
    assert _checks(city)[case_no] == ("refused", ErrorCode.BACKDATED.value)


def test_an_honest_node_offline_for_29_days_stays_ok(city: City) -> None:
    city.clock.advance(DAY)
    first = take_in(city, VILLAGE, IDS[0])
    city.clock.advance(14 * DAY)
    second = take_in(city, VILLAGE, IDS[1])
    city.clock.advance(15 * DAY)  # 29 days after the first intake, the village syncs again
    _sync_up(city)
    checks = _checks(city)
    assert checks[first] == ("ok", None) and checks[second] == ("ok", None)
    # A run from scratch a while later, with newer receipts of the village held, judges
    # them the same: each is held to the first receipt that covers it.
    city.clock.advance(5 * DAY)
    _sync_up(city)
    with authority.open_central(city.net.central_dir, city.clock) as central, transaction(central.store.db):
        central.store.db.conn.execute("DELETE FROM intake_checks")
    checks = _checks(city)
    assert checks[first] == ("ok", None) and checks[second] == ("ok", None)


def test_max_offline_is_centrals_to_configure(city: City) -> None:
    config = city.net.central_dir / CONFIG_FILE
    config.write_text(config.read_text() + "\n[recheck]\nmax_offline_days = 40\n")
    city.clock.advance(DAY)
    case_no = take_in(city, VILLAGE, IDS[0])
    city.clock.advance(31 * DAY)
    _sync_up(city)
    assert _checks(city)[case_no] == ("ok", None)
