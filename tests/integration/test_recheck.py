"""A revocation made while a village is offline, and central's re-check of every intake.

The village cannot know of the revocation until it syncs, so it goes on taking cases in;
at its first sync the revocation arrives (revocations travel first) and the village
refuses the item from then on, while central flags exactly the cases taken after the
cut-off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from central import authority, recheck
from central.admins import admins
from core.errors import AuthorityError, ErrorCode
from node.desk import Desk, IntakeForm
from sync.projection.delegation import revoke_grant
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_delegated_city, delegate, proxy_form, take_in
from tests.integration.webcentral import login
from tests.integration.webnode import PASSWORD, serve
from web.accounts import hash_password

DAY = 86_400


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_delegated_city(tmp_path)


def _town_grant_of_proxy_item(city: City) -> tuple[str, bytes]:
    desk = city.desk(VILLAGE)
    try:
        form = proxy_form(desk)
        leaf = desk.authority(form.item).grant
        assert leaf is not None and leaf.parent is not None
        return form.item, leaf.parent
    finally:
        desk.store.close()


def _checks(city: City) -> dict[str, tuple[str, str | None]]:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        recheck.recheck(central.store, CITY)
        rows = central.store.db.conn.execute("SELECT case_no, verdict, code FROM intake_checks").fetchall()
        return {case_no: (verdict, code) for case_no, verdict, code in rows}


def test_revocation_while_offline_takes_effect_at_first_sync_and_later_cases_are_flagged(city: City) -> None:
    item, town_grant = _town_grant_of_proxy_item(city)
    before = take_in(city, VILLAGE, "11010519491231002X")

    with authority.open_central(city.net.central_dir, city.clock) as central:
        revoke_grant(central.store.log, central.keys, CITY, town_grant, "授权调整", actor="shouquan")

    # Offline, the village knows nothing of it: it takes cases in as before.
    after = [take_in(city, VILLAGE, doc) for doc in ("110105194912310046", "110105194912310062")]

    with city.serving(CITY, TOWN):
        assert city.sync(TOWN).ok  # the revocation reaches the town
        result = city.sync(VILLAGE)  # first contact: revocation down, the cases up
        assert result.ok and not result.summary.rejected
        assert city.sync(TOWN).ok  # the cases reach central

    desk = city.desk(VILLAGE)
    try:
        with pytest.raises(AuthorityError) as refused:
            desk.intake(proxy_form_for(desk, item), actor="wangli")
        assert refused.value.code is ErrorCode.GRANT_REVOKED
    finally:
        desk.store.close()

    checks = _checks(city)
    assert checks[before] == ("ok", None)
    for case_no in after:
        assert checks[case_no] == ("refused", ErrorCode.GRANT_REVOKED.value)
    city.verify_all()


def proxy_form_for(desk: Desk, item: str) -> IntakeForm:
    """A complete walk-in for ``item``, whether or not the item is still allowed."""
    catalog = desk.catalog()
    entry = catalog.get(item) if catalog else None
    assert entry is not None
    return IntakeForm(
        item=item,
        name="李建国",
        doc_type="resident_id",
        doc_no="110105194912310089",
        phone="13800138000",
        materials=tuple(m.code for m in entry.materials if m.required),
    )


def test_a_revocation_arriving_later_flags_cases_already_checked(city: City) -> None:
    _, town_grant = _town_grant_of_proxy_item(city)
    with city.serving(CITY, TOWN):
        cases = [take_in(city, VILLAGE, doc) for doc in ("110105194912310046", "110105194912310062")]
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
    assert {_checks(city)[c] for c in cases} == {("ok", None)}

    # The town revokes nothing; central revokes the town's grant effective from a moment
    # between the two intakes (a stolen tablet reported late, say).
    with authority.open_central(city.net.central_dir, city.clock) as central:
        received = dict(
            central.store.db.conn.execute(
                "SELECT case_no, received FROM cases WHERE case_no IN (?, ?)", cases
            ).fetchall()
        )
        cut = received[cases[1]]
        city.clock.set(cut)  # the revocation takes effect at the second intake
        revoke_grant(central.store.log, central.keys, CITY, town_grant, "平板遗失", actor="shouquan")
    checks = _checks(city)
    assert checks[cases[0]] == ("ok", None)
    assert checks[cases[1]] == ("refused", ErrorCode.GRANT_REVOKED.value)


def test_expired_authority_is_flagged_stale(city: City) -> None:
    with city.serving(CITY, TOWN):
        city.clock.advance(40 * DAY)  # past the village's 30-day grant: it still takes the walk-in
        case_no = take_in(city, VILLAGE)
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
    verdict, code = _checks(city)[case_no]
    assert verdict == "stale" and code is not None and ErrorCode.GRANT_EXPIRED.value in code
    with authority.open_central(city.net.central_dir, city.clock) as central:
        flagged = recheck.flagged(central.store)
        assert [f.case_no for f in flagged] == [case_no]
        assert recheck.counts(central.store)["pending"] == 0


def test_the_dashboard_shows_what_the_recheck_flagged(city: City) -> None:
    with city.serving(CITY, TOWN):
        city.clock.advance(40 * DAY)
        case_no = take_in(city, VILLAGE)
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
    with authority.open_central(city.net.central_dir, city.clock) as central:
        admins(central).add(
            central, "chakan", "车查看", ["viewer"], hash_password(PASSWORD), actor="sys:test"
        )
    with serve(city.net.central_dir, probe="/login") as web:
        assert login(web, "chakan")[0] in (200, 303)
        status, _, html = web.request("GET", "/")
    assert status == 200
    flagged = html.split('id="flagged"', 1)[1]
    assert case_no in flagged and "待核" in flagged and ErrorCode.GRANT_EXPIRED.value in flagged


def test_a_certificate_revocation_arriving_later_flags_intakes_signed_after_the_cut_off(city: City) -> None:
    with city.serving(CITY, TOWN):
        case_no = take_in(city, VILLAGE)
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
    assert _checks(city)[case_no] == ("ok", None)

    # The village's tablet is reported stolen: its key is revoked with a cut-off before the intake.
    with authority.open_central(city.net.central_dir, city.clock) as central:
        seq = central.store.db.conn.execute(
            "SELECT r.seq FROM cases c JOIN records r ON r.id = c.intake_id WHERE c.case_no = ?", (case_no,)
        ).fetchone()[0]
        authority.revoke_node(central, VILLAGE, reason="平板遗失", last_good_seq=seq - 1)
    assert _checks(city)[case_no] == ("refused", ErrorCode.CERT_REVOKED.value)


def test_an_intake_that_reached_central_before_its_grant_is_judged_again_when_the_grant_arrives(
    city: City,
) -> None:
    with city.serving(CITY, TOWN):
        assert delegate(city, VILLAGE) > 0  # new sub-grants, not yet sent up by the town
        assert city.sync(VILLAGE).ok
    case_no = take_in(city, VILLAGE)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        grant_id = central.store.db.conn.execute("SELECT grant_id FROM cases WHERE case_no = ?", (case_no,))
        assert grant_id.fetchone() is None  # not at central yet
    with city.serving(CITY):  # the town is down: the village falls back to central
        assert city.sync(VILLAGE).ok
        assert case_no in _checks(city)
        assert city.sync(TOWN).ok  # the town's sub-grant reaches central at last
    assert _checks(city)[case_no] == ("ok", None)
