"""Forks that are seen and followed: a stolen key at the town, the real village after it,
the freeze, the evidence carried to central, and a fork of the root.

A thief holds a copy of the village's directory — its keys and its store — and signs with
the village's key. Whatever the thief and the real village then sign with the same seqs is
a fork: the town keeps the other record as evidence and takes nothing more of the village
from there on (``E_CHAIN_FORK``, kept in ``rejected``) until central revokes the key with a
cut-off below the fork; the evidence goes up to central; every screen of the real village
says its key may be stolen, and its waiting count says what the town lacks of its chain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from central import authority, heartbeat, registry, report_store
from central.admins import admins
from central.dashboard import snapshot
from core.errors import ErrorCode
from sync.record.forks import open_forks
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.forknet import ID_2, ID_3, backup, chain, ok, rows, steal, sync_at, take_in_at
from tests.integration.syncnet import GOOD_ID, City, build_delegated_city, take_in
from tests.integration.webcentral import login
from tests.integration.webnode import PASSWORD, device_token, serve
from tongban.cli import main
from web.accounts import hash_password


def town_db(city: City) -> Path:
    return city.home(TOWN) / "node.db"


def village_db(city: City) -> Path:
    return city.home(VILLAGE) / "node.db"


def central_db(city: City) -> Path:
    return city.home(CITY) / "central.db"


def forked_city(tmp_path: Path, prepare: Callable[[City], None] | None = None) -> tuple[City, Path, int]:
    """The town holds the thief's records at the village's next seqs; the real village has
    signed its own there and synced. The city, the thief's directory and the village's
    last seq before the theft (``prepare`` runs on the city before the theft)."""
    city = build_delegated_city(tmp_path / "city")
    if prepare is not None:
        prepare(city)
    thief = steal(city, VILLAGE, tmp_path / "thief")
    before = chain(village_db(city), VILLAGE)[-1][0]
    with city.serving(CITY, TOWN):
        take_in_at(thief, city.clock, TOWN, GOOD_ID)
        ok(sync_at(city, thief, TOWN))
        take_in(city, VILLAGE, doc_no=ID_2)  # the real village signs the same seqs
        city.last_result = city.sync(VILLAGE)  # type: ignore[attr-defined]
    return city, thief, before


def test_the_real_village_after_a_stolen_key_uploads_its_records_and_is_told(tmp_path: Path) -> None:
    """Break 3: the village's next records fork its chain at the town. It used to skip every
    seq below the town's head and show 'last sync OK · waiting up: 0'."""
    city, _, before = forked_city(tmp_path)
    result = city.last_result  # type: ignore[attr-defined]
    ok(result)
    assert result.summary.rejected[ErrorCode.CHAIN_FORK.value] >= 1  # the town said so
    # The town keeps the real records as evidence; the chain it holds is the thief's.
    thiefs = chain(town_db(city), VILLAGE)
    mine = chain(village_db(city), VILLAGE)
    assert thiefs[:before] == mine[:before] and thiefs[before] != mine[before]
    evidence = rows(town_db(city), "SELECT origin, seq, other_id FROM forks ORDER BY seq")
    assert (VILLAGE, before + 1, mine[before][1]) in [(o, s, bytes(i)) for o, s, i in evidence]
    # Every screen of the village says so: the banner every page shows (and the API's
    # status, which lists the same banners), and tongban node show.
    with city.desk(VILLAGE) as desk:
        banners = [(b.code, b.key) for b in desk.banners()]
        assert (ErrorCode.CHAIN_FORK.value, "fork.own") in banners, banners
        # What the town lacks of the village's chain, by id: its intake and its forward.
        assert desk.sync_status().waiting_up == 2
    shown = CliRunner().invoke(main, ["node", "show", str(city.home(VILLAGE))])
    assert shown.exit_code == 0, shown.output
    assert ErrorCode.CHAIN_FORK.value in shown.output and "stolen" in shown.output


def test_a_forked_village_is_frozen_at_its_town_and_the_fork_reaches_central(tmp_path: Path) -> None:
    """Break 4: the town went on taking the forked origin's records; central's forks stayed
    empty. Now it refuses them from the fork on, and carries both records up."""
    city, thief, before = forked_city(tmp_path)
    fork_seq = before + 1
    with city.serving(CITY, TOWN):
        town_chain = chain(town_db(city), VILLAGE)
        cases = rows(town_db(city), "SELECT case_no, state FROM cases ORDER BY case_no")
        take_in_at(thief, city.clock, TOWN, ID_3)  # the thief goes on
        result = ok(sync_at(city, thief, TOWN))
        assert set(result.summary.rejected) == {ErrorCode.CHAIN_FORK.value}
        assert chain(town_db(city), VILLAGE) == town_chain  # nothing of it stored
        assert rows(town_db(city), "SELECT case_no, state FROM cases ORDER BY case_no") == cases
        refused = rows(town_db(city), "SELECT code, seq FROM rejected WHERE origin = ?", VILLAGE)
        assert refused and all(
            code == ErrorCode.CHAIN_FORK.value and seq >= fork_seq for code, seq in refused
        )

        with city.desk(TOWN) as desk:  # the town's screens: a child's chain has forked
            assert (ErrorCode.CHAIN_FORK.value, "fork.child") in [(b.code, b.key) for b in desk.banners()]
        ok(city.sync(TOWN))  # the evidence goes up
        at_central = rows(central_db(city), "SELECT origin, seq, source FROM forks")
        assert at_central == [(VILLAGE, fork_seq, TOWN)]
        with authority.open_central(city.net.central_dir, city.clock) as central:
            (shown,) = registry.forks(central.store.db)
            board = snapshot(central.store.db, now=city.clock.now())
        assert (shown.origin, shown.name, shown.seq, shown.source, shown.open) == (
            VILLAGE,
            "新阳村便民服务中心",
            fork_seq,
            TOWN,
            True,
        )
        assert {shown.held_id, shown.other_id} == {
            town_chain[before][1],
            chain(village_db(city), VILLAGE)[before][1],
        }
        assert board.forks == [shown]
        # Central holds both records: the one as a record, the other as evidence.
        held = rows(
            central_db(city), "SELECT id FROM records WHERE origin = ? AND seq = ?", VILLAGE, fork_seq
        )
        assert [bytes(r[0]) for r in held] == [shown.held_id]

        # Central decides: the village's key is revoked with a cut-off below the fork.
        with authority.open_central(city.net.central_dir, city.clock) as central:
            authority.revoke_node(central, VILLAGE, reason="签名密钥被盗", last_good_seq=before)
            assert open_forks(central.store.db) == []
        ok(city.sync(TOWN))
    with city.desk(TOWN) as desk:
        assert open_forks(desk.db) == []  # settled: records past the cut-off are refused as revoked
        assert all(b.code != ErrorCode.CHAIN_FORK.value for b in desk.banners())


def test_records_signed_with_the_villages_key_beyond_what_it_signed_are_refused(tmp_path: Path) -> None:
    """The thief signs after the village's head while the real village signs nothing: the
    town holds them as the village's next records and would hand them back as the village's
    own. The village knows how far it signed (its watermark) and refuses them."""
    city = build_delegated_city(tmp_path / "city")
    thief = steal(city, VILLAGE, tmp_path / "thief")
    mine = chain(village_db(city), VILLAGE)
    with city.serving(CITY, TOWN):
        take_in_at(thief, city.clock, TOWN, GOOD_ID)
        ok(sync_at(city, thief, TOWN))
        result = ok(city.sync(VILLAGE))
    assert result.summary.rejected[ErrorCode.CHAIN_FORK.value] >= 1
    assert chain(village_db(city), VILLAGE) == mine  # nothing of the thief's taken in
    with city.desk(VILLAGE) as desk:
        assert (ErrorCode.CHAIN_FORK.value, "fork.own") in [(b.code, b.key) for b in desk.banners()]
        assert desk.sync_status().waiting_up == 0


def test_a_fork_of_the_root_is_an_alarm_at_the_town_and_at_central(tmp_path: Path) -> None:
    """Central's store put back by hand to a copy, with its key directory from an offline copy
    (no watermark): it signs another record at a seq the town holds. The town keeps it as
    evidence, takes nothing more from central past it, shows the alarm and reports it; the
    record it holds goes up, and central shows the fork too."""
    city = build_delegated_city(tmp_path)
    copy = tmp_path / "central-copy.db"
    backup(central_db(city), copy)
    with authority.open_central(city.net.central_dir, city.clock) as central:
        first = heartbeat.publish(central)
    with city.serving(CITY):
        ok(city.sync(TOWN))  # the town holds central's #n
    backup(copy, central_db(city))
    (city.net.central_dir / "keys" / "watermark").unlink()
    with authority.open_central(city.net.central_dir, city.clock) as central:
        second = heartbeat.publish(central)
    assert (second.seq, second.id) != (first.seq, first.id) and second.seq == first.seq
    root_at_town = chain(town_db(city), CITY)
    with city.serving(CITY):
        result = ok(city.sync(TOWN))
        assert result.summary.rejected.get(ErrorCode.CHAIN_FORK.value, 0) >= 1
        with authority.open_central(city.net.central_dir, city.clock) as central:
            later = heartbeat.publish(central)  # central goes on: the town takes none of it
        ok(city.sync(TOWN))
    assert chain(town_db(city), CITY) == root_at_town
    assert later.id not in {rid for _, rid in chain(town_db(city), CITY)}
    assert rows(town_db(city), "SELECT origin, seq FROM forks") == [(CITY, first.seq)]
    with city.desk(TOWN) as desk:
        assert (ErrorCode.CHAIN_FORK.value, "fork.root") in [(b.code, b.key) for b in desk.banners()]
    with authority.open_central(city.net.central_dir, city.clock) as central:
        assert report_store.status_reports(central.store.db)[TOWN].forks == 1
    assert rows(central_db(city), "SELECT origin, seq, source FROM forks") == [(CITY, first.seq, TOWN)]
    with authority.open_central(city.net.central_dir, city.clock) as central:
        (shown,) = registry.forks(central.store.db)
    assert (shown.origin, shown.seq, shown.open) == (CITY, first.seq, True)
    assert {shown.held_id, shown.other_id} == {first.id, second.id}


def test_every_screen_says_so_the_villages_and_centrals(tmp_path: Path) -> None:
    """The real services: the village's API status and page banner, central's dashboard and
    audit page with the fork and the command that settles it."""

    def accounts(city: City) -> None:
        digest = hash_password(PASSWORD)
        with city.desk(VILLAGE) as desk:
            desk.clerks.add(desk.keys, "wangli", "王丽", ["clerk"], digest, actor="sys:test")
        with authority.open_central(city.net.central_dir, city.clock) as central:
            admins(central).add(central, "shenji", "沈审计", ["auditor"], digest, actor="sys:test")
        with city.serving(CITY, TOWN):
            ok(city.sync(TOWN))
            ok(city.sync(VILLAGE))

    city, _, before = forked_city(tmp_path, accounts)
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))  # the evidence reaches central
    token = device_token(city.home(VILLAGE))
    with serve(city.home(VILLAGE)) as village:
        status, body = village.api("GET", "/api/v1/status", token)
        assert status == 200
        shown = [(b["code"], b["key"]) for b in body["banners"]]
        assert (ErrorCode.CHAIN_FORK.value, "fork.own") in shown, shown
        assert login(village, "wangli")[0] == 303
        _, _, page = village.request("GET", "/")
        assert "签名密钥可能已被盗用" in page and ErrorCode.CHAIN_FORK.value in page
    with serve(city.home(CITY), probe="/login") as web:
        assert login(web, "shenji")[0] == 303
        for path in ("/", "/audit"):
            _, _, page = web.request("GET", path)
            assert 'id="fork-alarm"' in page and "新阳村便民服务中心" in page, path
            assert f"revoke-node DIR {VILLAGE} --last-good-seq {before}" in page, path
