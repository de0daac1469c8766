"""Central's 最近联系 for a village behind its town, on real sync sessions over loopback.

A village with nothing new to send moves no chain and signs no receipt, so central hears
of it through its town: the town's ``node.status`` names when each village last ended a
session with it, reported again once that is :data:`SEEN_STEP` newer.
"""

from __future__ import annotations

from pathlib import Path

from central import authority, dashboard
from sync.link.protocol import STATUS_SEEN_FROM, VERSIONS
from sync.projection.status import SEEN_STEP
from sync.record import kinds
from sync.record.log import stored_record
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.forknet import ok
from tests.integration.test_city_status import synced_city
from web.health import SOFTWARE_VERSION

INTERVAL = 10  # the village's and the town's sync interval, seconds
MINUTES = 13


def test_a_village_syncing_every_ten_seconds_is_never_minutes_stale(tmp_path: Path) -> None:
    city = synced_city(tmp_path)
    sql = "SELECT count(*) FROM records WHERE origin = ? AND kind = ?"
    reports_before = city.count(CITY, sql, TOWN, kinds.NODE_STATUS)
    worst, start = 0, city.clock.now()
    now = start
    with city.serving(CITY, TOWN):
        while now - start < MINUTES * 60:  # the test's clock also moves a second per reading
            city.clock.advance(INTERVAL)
            ok(city.sync(VILLAGE))
            ok(city.sync(TOWN))
            with authority.open_central(city.net.central_dir, city.clock) as central:
                now = city.clock.now()
                rows = {r.code: r for r in dashboard.snapshot(central.store.db, now=now).nodes}
            contact = rows[VILLAGE].last_contact
            assert contact is not None
            worst = max(worst, now - contact)
    assert worst <= SEEN_STEP + 2 * INTERVAL, worst
    # ...while the town signed one report per step, not one per session.
    reports = city.count(CITY, sql, TOWN, kinds.NODE_STATUS) - reports_before
    assert 0 < reports <= (now - start) // SEEN_STEP + 2, (reports, now - start)  # +1: a backlog drained


def test_a_town_names_its_villages_only_to_a_parent_that_takes_it(tmp_path: Path) -> None:
    """A parent of older software (protocol 2) would refuse ``seen`` and so stop the town's
    chain at it: the town's report then leaves it out."""
    city = synced_city(tmp_path)
    for version, named in ((2, False), (STATUS_SEEN_FROM, True)):
        city.clock.advance(2 * 3600)  # a report is due
        with city.open(TOWN) as town:
            town.welcomed({}, 0, version)
            head = town.log.head(TOWN)
            assert head is not None
            record = stored_record(town.log.db, head.id)
        assert record is not None and record.kind == kinds.NODE_STATUS
        assert ("seen" in record.body, "software" in record.body) == (named, named), version
        if named:
            assert set(record.body["seen"]) == {VILLAGE}
            assert (record.body["software"], record.body["protocol"]) == (SOFTWARE_VERSION, VERSIONS[0])
