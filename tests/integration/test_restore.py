"""Stores restored from older copies sign no fork: they get their own records back first.

A store does not know the seqs it signed after its copy was taken, so it refuses to sign
(``E_CHAIN_BEHIND``) until a sync has brought its own records back from its parent; then it
signs on from its true head. What reached no one is given up by an operator, knowingly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from central import authority, heartbeat
from core.errors import ErrorCode, RecordError
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.forknet import ID_2, ID_3, backup, chain, ok, rows
from tests.integration.syncnet import City, build_delegated_city, proxy_form, take_in
from tongban.cli import main

DAY = 86_400


def village_db(city: City) -> Path:
    return city.home(VILLAGE) / "node.db"


def a_day_of_work(city: City, n: int) -> None:
    """The village takes a case in, the town approves what waits, both sync."""
    take_in(city, VILLAGE, doc_no=(ID_2, ID_3)[n % 2])
    ok(city.sync(VILLAGE))
    with city.desk(TOWN) as desk:
        for case in desk.queue():
            desk.act(case.case_no, "approve", {}, actor="shenpi")
    ok(city.sync(TOWN))
    ok(city.sync(VILLAGE))
    city.clock.advance(DAY)


def test_a_village_restored_from_a_week_old_copy_gets_its_records_back_and_signs_no_fork(
    tmp_path: Path,
) -> None:
    city = build_delegated_city(tmp_path)
    copy = tmp_path / "village-week-old.db"
    with city.serving(CITY, TOWN):
        backup(village_db(city), copy)
        for n in range(7):
            a_day_of_work(city, n)
        whole = chain(village_db(city), VILLAGE)
        backup(copy, village_db(city))
        assert len(chain(village_db(city), VILLAGE)) < len(whole)

        # Until it has synced, the restored village signs nothing: each seq it would sign
        # is one it has signed already, with other contents.
        with city.desk(VILLAGE) as desk:
            before = chain(village_db(city), VILLAGE)
            assert (ErrorCode.CHAIN_BEHIND.value, "") in [(b.code, b.key) for b in desk.banners()]
            with pytest.raises(RecordError) as refused:
                desk.intake(proxy_form(desk, TOWN), actor="wangli")
            assert refused.value.code is ErrorCode.CHAIN_BEHIND
        assert chain(village_db(city), VILLAGE) == before  # nothing stored

        ok(city.sync(VILLAGE))  # its own records come back from the town
        assert chain(village_db(city), VILLAGE)[: len(whole)] == whole
        with city.desk(VILLAGE) as desk:
            assert all(b.code != ErrorCode.CHAIN_BEHIND.value for b in desk.banners())
        take_in(city, VILLAGE, doc_no=ID_2)  # and it signs on after its true head
        ok(city.sync(VILLAGE))
    town = city.home(TOWN) / "node.db"
    assert chain(town, VILLAGE) == chain(village_db(city), VILLAGE)
    assert rows(town, "SELECT count(*) FROM forks") == [(0,)]
    assert rows(village_db(city), "SELECT count(*) FROM forks") == [(0,)]
    city.verify_all()


def test_what_reached_no_one_is_given_up_by_an_operator(tmp_path: Path) -> None:
    """The village signed a case while offline and lost it with its disk; the copy it is
    restored from is older. Its town cannot give the record back: an operator accepts
    the loss (documented: should the record surface later, it is a fork)."""
    city = build_delegated_city(tmp_path)
    copy = tmp_path / "village-copy.db"
    backup(village_db(city), copy)
    take_in(city, VILLAGE)  # signed, never synced
    backup(copy, village_db(city))
    with city.serving(CITY, TOWN):
        ok(city.sync(VILLAGE))
        with city.desk(VILLAGE) as desk:
            assert ErrorCode.CHAIN_BEHIND.value in [b.code for b in desk.banners()]
        runner = CliRunner()
        refused = runner.invoke(main, ["node", "accept-loss", str(city.home(VILLAGE))])
        assert refused.exit_code != 0 and "--yes" in refused.output
        accepted = runner.invoke(main, ["node", "accept-loss", str(city.home(VILLAGE)), "--yes"])
        assert accepted.exit_code == 0, accepted.output
        assert "given up" in accepted.output
        take_in(city, VILLAGE, doc_no=ID_2)
        ok(city.sync(VILLAGE))
    assert chain(city.home(TOWN) / "node.db", VILLAGE) == chain(village_db(city), VILLAGE)


def test_central_put_back_to_an_older_copy_by_hand_signs_nothing(tmp_path: Path) -> None:
    """The runbook's old way (copy the newest backup over the store): central now refuses
    to sign, so it cannot fork the city's root; ``tongban central restore`` is the way."""
    city = build_delegated_city(tmp_path)
    store = city.home(CITY) / "central.db"
    copy = tmp_path / "central-copy.db"
    backup(store, copy)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        heartbeat.publish(central)
    backup(copy, store)
    before = chain(store, CITY)
    with (
        authority.open_central(city.net.central_dir, city.clock) as central,
        pytest.raises(RecordError) as refused,
    ):
        heartbeat.publish(central)
    assert refused.value.code is ErrorCode.CHAIN_BEHIND
    assert "tongban central rebuild" in refused.value.detail
    assert chain(store, CITY) == before
