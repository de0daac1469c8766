"""Calendar releases: the signed body, its strictness, and the operator's data file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.calendar import CalendarRelease, YearSchedule, schedule_from_data
from core.errors import ErrorCode, InputError, RecordError
from sync.record import codec, kinds

D = dt.date
EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "calendar-2027.example.yaml"

SCHEDULE = YearSchedule(
    year=2027,
    holidays=frozenset({D(2027, 1, 1), D(2027, 1, 4)}),
    workdays=frozenset({D(2027, 1, 9)}),
    source="test schedule",
)
RELEASE = CalendarRelease(version=2, schedule=SCHEDULE, issued=1_800_000_000, exp=1_830_000_000)


def _refused(fn: Any, *args: Any) -> str:
    with pytest.raises(InputError) as exc:
        fn(*args)
    assert exc.value.code is ErrorCode.CALENDAR_INVALID
    return exc.value.detail


def test_body_is_the_schedule_plus_version_issued_exp() -> None:
    assert RELEASE.to_body() == {
        "version": 2,
        "year": 2027,
        "holidays": ["2027-01-01", "2027-01-04"],
        "workdays": ["2027-01-09"],
        "source": "test schedule",
        "issued": 1_800_000_000,
        "exp": 1_830_000_000,
    }
    assert CalendarRelease.from_body(RELEASE.to_body()) == RELEASE
    assert RELEASE.year == 2027


@st.composite
def releases(draw: st.DrawFn) -> CalendarRelease:
    year = draw(st.integers(min_value=2020, max_value=2100))
    days = [D(year, 1, 1) + dt.timedelta(days=i) for i in range(366)]
    days = [d for d in days if d.year == year]
    weekdays = [d for d in days if d.weekday() < 5]
    weekends = [d for d in days if d.weekday() >= 5]
    workdays = draw(st.sets(st.sampled_from(weekends), max_size=12))
    holidays = draw(
        st.sets(st.sampled_from(weekdays + [d for d in weekends if d not in workdays]), max_size=40)
    )
    issued = draw(st.integers(min_value=0, max_value=2**40))
    return CalendarRelease(
        version=draw(st.integers(min_value=1, max_value=2**63 - 1)),
        schedule=YearSchedule(
            year,
            frozenset(holidays),
            frozenset(workdays),
            draw(st.text(min_size=1, max_size=200).filter(str.strip)),
        ),
        issued=issued,
        exp=issued + draw(st.integers(min_value=1, max_value=2**40)),
    )


@given(releases())
def test_round_trip_through_the_canonical_codec(release: CalendarRelease) -> None:
    body = release.to_body()
    encoded = codec.encode(body)
    decoded = codec.decode(encoded)
    assert CalendarRelease.from_body(decoded) == release
    assert codec.encode(CalendarRelease.from_body(decoded).to_body()) == encoded  # one encoding
    kind, checked = kinds.check(kinds.CALENDAR_RELEASE, decoded)
    assert kind.author is kinds.Author.ROOT and checked == release


def _body(**changes: Any) -> dict[str, Any]:
    body = RELEASE.to_body()
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (_body(version=0), "version"),
        (_body(version=True), "version"),
        (_body(version=-1), "version"),
        (_body(version="2"), "version"),
        (_body(issued=1.5), "issued"),
        (_body(exp=2**63), "exp"),
        (_body(exp=1_800_000_000), "after issued"),
        (_body(year=2019, holidays=["2019-01-01"], workdays=[]), "2020 or later"),
        (_body(version=None), "missing ['version']"),
        (_body(exp=None), "missing ['exp']"),
        ({**_body(), "names": {"2027-01-01": "元旦"}}, "unknown ['names']"),
        (_body(holidays=["2027-01-04", "2027-01-01"]), "ascend"),
        (_body(holidays=["2027-01-01", "2027-01-01"]), "ascend"),
        (_body(holidays=["2026-12-31"]), "not in 2027"),
        (_body(workdays=["2027-01-08"]), "Friday"),
        (_body(holidays=["2027-01-09"]), "both"),
        (_body(source=""), "source"),
    ],
)
def test_from_body_is_strict(body: dict[str, Any], needle: str) -> None:
    assert needle in _refused(CalendarRelease.from_body, body)


def test_a_bad_body_is_a_schema_error_at_ingest() -> None:
    with pytest.raises(RecordError) as exc:
        kinds.check(kinds.CALENDAR_RELEASE, _body(version=0))
    assert exc.value.code is ErrorCode.SCHEMA
    assert "calendar.release" in exc.value.detail


def test_releases_go_to_every_node() -> None:
    assert kinds.scope_of(kinds.CALENDAR_RELEASE, "330481", RELEASE.to_body()) is None
    assert kinds.KINDS[kinds.CALENDAR_RELEASE].author is kinds.Author.ROOT


def test_constructor_refuses_what_from_body_refuses() -> None:
    _refused(CalendarRelease, 1, SCHEDULE.to_body(), 0, 1)
    _refused(CalendarRelease, 1, SCHEDULE, 5, 5)
    _refused(CalendarRelease, 1, YearSchedule(2004, frozenset(), frozenset(), "old"), 0, 1)


# -- the operator's file -------------------------------------------------------------------


def test_data_file_may_list_dates_in_any_order_and_spelling() -> None:
    data = yaml.safe_load(
        "year: 2027\nsource: 国办发明电（测试）\n"
        "holidays: [2027-01-04, '2027-01-01']\nworkdays: [2027-01-09]\n"
    )
    assert schedule_from_data(data) == YearSchedule(
        2027, SCHEDULE.holidays, SCHEDULE.workdays, "国办发明电（测试）"
    )
    data["workdays"] = None  # "workdays:" with nothing under it
    assert schedule_from_data(data).workdays == frozenset()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"year": 2027, "source": "s", "holidays": [D(2027, 1, 1), "2027-01-01"], "workdays": []}, "twice"),
        ({"year": 2027, "source": "s", "holidays": [], "workdays": [], "names": {}}, "unknown ['names']"),
        ({"year": 2027, "holidays": [], "workdays": []}, "missing ['source']"),
        ({"year": "2027", "source": "s", "holidays": [], "workdays": []}, "integer"),
        ({"year": 2027, "source": "s", "holidays": "2027-01-01", "workdays": []}, "list"),
        ({"year": 2027, "source": "s", "holidays": [], "workdays": [D(2027, 1, 8)]}, "Friday"),
        ([2027], "a map"),
    ],
)
def test_data_file_is_strict_about_content(data: Any, needle: str) -> None:
    assert needle in _refused(schedule_from_data, data)


def test_the_shipped_example_cannot_be_published_as_it_is() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert "example" in _refused(schedule_from_data, data)
    del data["example"]
    schedule = schedule_from_data(data)  # otherwise the format is right
    assert schedule.year == 2027 and "example" in schedule.source
