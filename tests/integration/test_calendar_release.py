"""Calendar releases over the real loopback network: published at central, used by a village.

The city's clock is set to Monday 28 December 2026, when the built-in data (to 2026) no
longer covers a 5-working-day deadline. A test schedule for 2027 (New Year's Day, Monday
4 and Tuesday 5 January off, Saturday 9 January worked) moves that deadline from the
estimated Monday 4 January to Thursday 7 January.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from central import authority
from core.calendar import WorkCalendar
from core.catalog import Mode
from core.clock import CHINA
from core.errors import ErrorCode, RecordError
from core.intake import CALENDAR_ESTIMATED
from node.desk import Case, Desk, IntakeForm
from node.store import NodeStore
from sync.projection.calendars import StoreCalendar, held_years
from sync.record import kinds
from sync.record.envelope import Payload, Record, Signer, seal
from sync.record.keys import load_key_file
from sync.record.outcome import Status
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2, make_network, relay
from tests.integration import webnode
from tests.integration.syncnet import GOOD_ID, City, build_city, delegate
from tongban.cli import main

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "calendar-2027.example.yaml"
SCHEDULE_2027 = """\
year: 2027
source: test schedule, not the State Council's
holidays: [2027-01-05, 2027-01-04, 2027-01-01]
workdays: [2027-01-09]
"""
ANOTHER_ID = "110105198001010016"


def ok(result: object) -> None:
    assert getattr(result, "ok", False), getattr(result, "error", None)


def set_date(city: City, day: dt.datetime) -> None:
    city.clock.advance(int(day.timestamp()) - city.clock.now())


def write_schedule(tmp_path: Path, text: str = SCHEDULE_2027) -> Path:
    path = tmp_path / "calendar-2027.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def publish(city: City, schedule: Path) -> Record:
    with authority.open_central(city.net.central_dir, city.clock) as central:
        record, _ = authority.publish_calendar(central, schedule, actor="test")
    assert record.kind == kinds.CALENDAR_RELEASE
    return record


def five_day_form(desk: Desk, doc_no: str) -> IntakeForm:
    """A walk-in for a proxy item with a 5-working-day limit."""
    auth = next(a for a in desk.items() if a.mode is Mode.PROXY and a.item.time_limit_days == 5)
    return IntakeForm(
        item=auth.item.code,
        name="王秀英",
        doc_type="resident_id",
        doc_no=doc_no,
        phone="13800138000",
        materials=tuple(m.code for m in auth.item.materials if m.required),
    )


def take_in(city: City, doc_no: str) -> Case:
    desk = city.desk(VILLAGE)
    try:
        return desk.intake(five_day_form(desk, doc_no), actor="wangli")
    finally:
        desk.store.close()


@pytest.fixture
def city(tmp_path: Path) -> City:
    city = build_city(tmp_path / "city")
    set_date(city, dt.datetime(2026, 12, 28, 9, 30, tzinfo=CHINA))
    return city


def test_a_release_reaches_the_village_and_moves_its_deadlines(city: City, tmp_path: Path) -> None:
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        assert delegate(city, VILLAGE) > 0
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))

        before = take_in(city, GOOD_ID)
        assert before.deadline == "2027-01-05"  # 2027 estimated: 元旦 on Friday the 1st, then Mon 4, Tue 5
        assert CALENDAR_ESTIMATED in before.flags

        record = publish(city, write_schedule(tmp_path))
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))
        ok(city.sync(VILLAGE_2))  # straight from central
        for code in (CITY, TOWN, VILLAGE, VILLAGE_2):
            assert (
                city.count(code, "SELECT year FROM calendar_releases WHERE record_id = ?", record.id) == 2027
            )

        after = take_in(city, ANOTHER_ID)
        assert after.deadline == "2027-01-07"  # Dec 29, 30, 31, then Jan 6, 7
        assert CALENDAR_ESTIMATED not in after.flags
        # A case taken in before keeps the deadline its signed intake record states.
        desk = city.desk(VILLAGE)
        try:
            assert desk.case(before.case_no).deadline == "2027-01-05"
            years = desk.calendar_years()
            assert (years.builtin_first, years.builtin_last) == (2004, 2026)
            assert [(r.year, r.version) for r in years.releases] == [(2027, 1)]
        finally:
            desk.store.close()
        # The case went up, and the town (its decider) holds the same deadline.
        ok(city.sync(VILLAGE))
        ok(city.sync(TOWN))
        assert city.count(TOWN, "SELECT deadline FROM cases WHERE case_no = ?", after.case_no) == "2027-01-07"
    city.verify_all()


def test_a_later_release_for_the_same_year_replaces_the_earlier(city: City, tmp_path: Path) -> None:
    publish(city, write_schedule(tmp_path))
    corrected = SCHEDULE_2027.replace("2027-01-05, ", "")  # Tuesday 5 January is worked after all
    publish(city, write_schedule(tmp_path, corrected))
    with authority.open_central(city.net.central_dir, city.clock) as central:
        db = central.store.db
        assert [r.version for r in held_years(db).releases] == [2]
        assert db.conn.execute("SELECT count(*) FROM calendar_releases").fetchone()[0] == 2  # both kept
        calendars = StoreCalendar()
        calendar = calendars.get(db)
        assert calendars.get(db) is calendar  # cached while no newer release is held
        assert calendar.is_working_day(dt.date(2027, 1, 5))
        assert not calendar.is_working_day(dt.date(2027, 1, 4))
        assert calendar.schedules[2026] is WorkCalendar.builtin().schedules[2026]


def _forge(city: City, signer: Signer, origin: str, seq: int, prev: bytes, body: dict[str, Any]) -> bytes:
    """A calendar.release envelope signed outside any log (what a stolen key could make)."""
    payload = Payload(
        net=f"cn-{CITY}",
        kind=kinds.CALENDAR_RELEASE,
        origin=origin,
        kid=signer.kid,
        seq=seq,
        prev=prev,
        ts=city.clock.now(),
        body=body,
        actor="forger",
    )
    return seal(payload, signer).envelope


def _town_state(store: NodeStore) -> tuple[Any, ...]:
    conn = store.db.conn
    return (
        store.log.count(),
        conn.execute("SELECT group_concat(version) FROM calendar_releases").fetchone()[0],
    )


def test_rollback_and_gap_are_refused_and_change_nothing(city: City, tmp_path: Path) -> None:
    first = publish(city, write_schedule(tmp_path))
    with city.serving(CITY):
        ok(city.sync(TOWN))
    with (
        NodeStore.open(city.home(TOWN) / "node.db", city.clock) as store,
        authority.open_central(city.net.central_dir, city.clock) as central,
    ):
        body = dict(first.body)
        for version, code in ((1, ErrorCode.CALENDAR_ROLLBACK), (3, ErrorCode.CALENDAR_VERSION_GAP)):
            # Central itself refuses to sign a release that is not the next version.
            before = central.store.log.head(CITY)
            with pytest.raises(RecordError) as exc:
                central.append(kinds.CALENDAR_RELEASE, {**body, "version": version}, actor="test")
            assert exc.value.code is code
            assert central.store.log.head(CITY) == before
        assert central.store.db.conn.execute("SELECT max(version) FROM calendar_releases").fetchone()[0] == 1
        # What a stolen signing key could still make: central's next record at the town,
        # with a wrong version. The town refuses it, keeps it as rejected, changes nothing.
        head = store.log.head(CITY)
        assert head is not None
        signer = central.keys.signer_for(kinds.CALENDAR_RELEASE)
        held = _town_state(store)
        assert held[1] == "1"
        for version, code in ((1, ErrorCode.CALENDAR_ROLLBACK), (3, ErrorCode.CALENDAR_VERSION_GAP)):
            forged = _forge(city, signer, CITY, head.seq + 1, head.id, {**body, "version": version})
            outcome = store.log.ingest(forged, "test")
            assert (outcome.status, outcome.code) == (Status.REJECTED, code)
            assert _town_state(store) == held
        codes = {c for (c,) in store.db.conn.execute("SELECT code FROM rejected").fetchall()}
        assert {ErrorCode.CALENDAR_ROLLBACK.value, ErrorCode.CALENDAR_VERSION_GAP.value} <= codes


class _Impostor:
    """Signs with one key while claiming the id of another."""

    def __init__(self, key: Signer, kid: bytes) -> None:
        self.key = key
        self.kid = kid

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)


def test_a_calendar_signed_by_a_node_is_refused(city: City, tmp_path: Path) -> None:
    with city.serving(CITY, TOWN):
        ok(city.sync(TOWN))
        ok(city.sync(VILLAGE))
    village_key = load_key_file(city.home(VILLAGE) / "keys" / "node.key")
    body = {
        "version": 1,
        "year": 2027,
        "holidays": ["2027-01-04"],
        "workdays": [],
        "source": "forged",
        "issued": city.clock.now(),
        "exp": city.clock.now() + 86_400,
    }
    with NodeStore.open(city.home(VILLAGE) / "node.db", city.clock) as village:
        # The village's own software refuses to author one.
        with pytest.raises(RecordError) as exc:
            village.log.append_local(village_key, VILLAGE, kinds.CALENDAR_RELEASE, body, actor="x")
        assert exc.value.code is ErrorCode.AUTHORITY
        head = village.log.head(VILLAGE)
        assert head is not None
    own_name = _forge(city, village_key, VILLAGE, head.seq + 1, head.id, body)
    with NodeStore.open(city.home(TOWN) / "node.db", city.clock) as store:
        central_head = store.log.head(CITY)
        assert central_head is not None
        central_kid = store.db.conn.execute("SELECT kid FROM certs WHERE code = ?", (CITY,)).fetchone()[0]
        as_central = _forge(
            city,
            _Impostor(village_key, bytes(central_kid)),
            CITY,
            central_head.seq + 1,
            central_head.id,
            body,
        )
        held = _town_state(store)
        outcome = store.log.ingest(own_name, "test")
        assert (outcome.status, outcome.code) == (Status.REJECTED, ErrorCode.AUTHORITY)
        outcome = store.log.ingest(as_central, "test")
        assert (outcome.status, outcome.code) == (Status.REJECTED, ErrorCode.SIGNATURE_INVALID)
        assert _town_state(store) == held
        assert held[1] is None


def test_cli_publishes_a_file_and_refuses_the_example(tmp_path: Path) -> None:
    net = make_network(tmp_path / "city")
    runner = CliRunner()
    refused = runner.invoke(main, ["central", "publish-calendar", str(net.central_dir), str(EXAMPLE)])
    assert refused.exit_code == 3, refused.output
    assert ErrorCode.CALENDAR_INVALID.value in refused.output and "example" in refused.output
    done = runner.invoke(
        main, ["central", "publish-calendar", str(net.central_dir), str(write_schedule(tmp_path))]
    )
    assert done.exit_code == 0, done.output
    assert "published calendar v1 for 2027: 3 holidays, 1 adjusted working days" in done.output
    listing = runner.invoke(main, ["log", str(net.central_dir), "--kind", kinds.CALENDAR_RELEASE])
    assert "calendar release v1 for 2027" in listing.output


@pytest.mark.slow
def test_the_catalog_page_names_the_calendar_years_held(tmp_path: Path) -> None:
    net = webnode.build_city(tmp_path / "city")
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.publish_calendar(central, write_schedule(tmp_path), actor="test")
    relay(net.central_dir, net.node_dir(TOWN), net.clock)
    relay(net.central_dir, net.node_dir(VILLAGE), net.clock)
    with webnode.serve(net.node_dir(VILLAGE)) as web:
        _, _, page = web.request("GET", "/login")
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page)
        assert login_csrf
        fields = {"user": "wangli", "password": webnode.PASSWORD, "login_csrf": login_csrf[1], "next": "/"}
        status, _, _ = web.request("POST", "/login", data=urllib.parse.urlencode(fields).encode())
        assert status in (302, 303)
        status, _, html = web.request("GET", "/catalog")
    assert status == 200
    assert "工作日历" in html and "2004–2026" in html
    assert "2027 市中心发布第1版" in html
