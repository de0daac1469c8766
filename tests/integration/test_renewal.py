"""Short grants, renewed automatically: central renews its root grants, a town its villages'.

Months pass; nobody touches a grant by hand. Central renews a town's grant when a third of
its validity is left; the town, after the session that brought the renewal, renews the
sub-grants it gave its villages under the new grant; the village takes cases in without
a staleness flag all along. A revoked grant is never renewed, and neither is a sub-grant
whose parent was revoked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from central import authority
from core.grants import Verdict
from node import sync_hooks
from sync.projection.delegation import renewals_due, revoke_grant
from sync.projection.grants import StoreGrants
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_delegated_city, proxy_form

DAY = 86_400


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_delegated_city(tmp_path)


def _central_renews(city: City) -> int:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        return len(authority.renew_grants(central))


def _town_renews(city: City) -> int:
    with city.open(TOWN) as opened:
        return sync_hooks.synced(opened.log, opened.keys, TOWN)


def _village_verdict(city: City) -> Verdict:
    desk = city.desk(VILLAGE)
    try:
        form = proxy_form(desk)
        return desk.authority(form.item).auth.verdict
    finally:
        desk.store.close()


def _village_grants(city: City) -> int:
    opened = city.open(VILLAGE)
    try:
        return len(StoreGrants(opened.log.db).held_by(VILLAGE))
    finally:
        opened.close()


def test_grants_renew_down_the_tiers_without_anyone_touching_them(city: City) -> None:
    assert _central_renews(city) == 0 and _town_renews(city) == 0  # nothing is due yet
    first = _village_grants(city)
    for _month in range(4):  # 120 days: the town's 90-day and the village's 30-day grants
        city.clock.advance(25 * DAY)
        _central_renews(city)
        with city.serving(CITY, TOWN):
            assert city.sync(TOWN).ok
            _town_renews(city)
            assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
        assert _village_verdict(city) is Verdict.OK
    assert _village_grants(city) >= 4 * first  # renewed at least every 25-30 days
    city.verify_all()


def test_revoked_grants_are_not_renewed_nor_their_sub_grants(city: City) -> None:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        town_grants = StoreGrants(central.store.db).held_by(TOWN)
        revoked = town_grants[0]
        revoke_grant(central.store.log, central.keys, CITY, revoked.id, "调整", actor="shouquan")
    city.clock.advance(70 * DAY)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        due = renewals_due(central.store.db, CITY, city.clock.now())
        assert due and revoked.id not in {r.grant.id for r in due}
        authority.renew_grants(central)
        assert not renewals_due(central.store.db, CITY, city.clock.now())  # renewed once, not again
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok
    opened = city.open(TOWN)
    try:
        under_revoked = [g for g, _ in StoreGrants(opened.log.db).issued_by(TOWN) if g.parent == revoked.id]
        assert under_revoked
        due = renewals_due(opened.log.db, TOWN, city.clock.now())
        assert due
        assert all(r.parent is not None and r.parent.id != revoked.id for r in due)
        assert not {r.grant.id for r in due} & {g.id for g in under_revoked}
    finally:
        opened.close()


def test_revoking_the_current_grant_of_a_line_is_not_undone_by_renewing_its_predecessor(city: City) -> None:
    city.clock.advance(70 * DAY)  # a third of the town's 90 days left: renewed once
    with authority.open_central(city.net.central_dir, city.clock) as central:
        renewed = authority.renew_grants(central)
        assert renewed
        for record in renewed:  # the operator revokes the town's current grants
            revoke_grant(central.store.log, central.keys, CITY, record.id, "撤销", actor="shouquan")
        # Their predecessors are due: renewing them would grant the town again.
        assert not renewals_due(central.store.db, CITY, city.clock.now())
        # And the predecessors, still within their validity, were revoked with them.
        grants = StoreGrants(central.store.db)
        assert all(revoked for g, revoked in grants.issued_by(CITY) if g.aud == TOWN)


def test_nothing_is_renewed_for_a_node_whose_certificate_is_revoked(city: City) -> None:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        authority.revoke_node(central, VILLAGE, reason="机器遗失")
    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok
    city.clock.advance(25 * DAY)
    opened = city.open(TOWN)
    try:
        assert StoreGrants(opened.log.db).issued_by(TOWN)  # the village's grants are there
        assert not renewals_due(opened.log.db, TOWN, city.clock.now())
    finally:
        opened.close()
