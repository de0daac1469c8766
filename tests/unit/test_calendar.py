"""Working days and deadlines (办理时限)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.calendar import MAX_WORKING_DAYS, Deadline, WorkCalendar, YearSchedule
from core.errors import ErrorCode, InputError

D = dt.date
CAL = WorkCalendar.builtin()

# A made-up 2027 release: New Year's Day Friday, and the following Monday off in
# exchange for Saturday 2027-01-09.
SCHEDULE_2027 = YearSchedule(
    year=2027,
    holidays=frozenset({D(2027, 1, 1), D(2027, 1, 4)}),
    workdays=frozenset({D(2027, 1, 9)}),
    source="central release 3",
)


def _calendar_error(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InputError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code is ErrorCode.CALENDAR_INVALID
    return exc.value.detail


# -- the built-in table ---------------------------------------------------------------


def test_builtin_covers_the_package_years() -> None:
    assert CAL.known_years == frozenset(range(2004, 2027))
    assert CAL.year_known(2026) and not CAL.year_known(2027) and not CAL.year_known(2003)
    assert WorkCalendar.builtin() is CAL  # built once


def test_builtin_2025_national_day() -> None:
    s = CAL.schedules[2025]
    assert s.source.startswith("chinese-calendar ")
    assert {D(2025, 9, 28), D(2025, 10, 11)} <= s.workdays
    # Oct 1–8 are off; the package lists the weekend days too, which change nothing.
    for day in range(1, 9):
        assert not CAL.is_working_day(D(2025, 10, day))
    assert D(2025, 10, 4) not in s.holidays  # a Saturday: kept out of the body
    assert CAL.is_working_day(D(2025, 9, 28))  # Sunday, worked
    assert CAL.is_working_day(D(2025, 10, 11))  # Saturday, worked
    assert CAL.is_working_day(D(2025, 10, 9))
    assert not CAL.is_working_day(D(2025, 10, 12))


def test_builtin_agrees_with_the_package_everywhere() -> None:
    import chinese_calendar

    day = D(2004, 1, 1)
    while day <= D(2026, 12, 31):
        assert CAL.is_working_day(day) is chinese_calendar.is_workday(day), day
        day += dt.timedelta(days=1)


def test_unknown_year_counts_the_rest_days_the_law_fixes() -> None:
    assert not CAL.is_working_day(D(2027, 1, 1))  # 元旦, a Friday
    assert not CAL.is_working_day(D(2027, 1, 2))
    assert CAL.is_working_day(D(2027, 1, 4))
    assert not CAL.is_working_day(D(1999, 10, 1))  # before the package's data: 国庆节
    assert CAL.is_working_day(D(1999, 9, 30))


# -- deadlines --------------------------------------------------------------------------


def test_across_national_day_2025() -> None:
    # Fri 26 Sep intake: Sun 28, Mon 29, Tue 30, then Oct 1–8 off, Thu 9, Fri 10.
    assert CAL.add_working_days(D(2025, 9, 26), 5) == Deadline(D(2025, 10, 10))
    assert CAL.add_working_days(D(2025, 9, 26), 1).date == D(2025, 9, 28)
    assert CAL.add_working_days(D(2025, 9, 30), 1).date == D(2025, 10, 9)
    assert CAL.add_working_days(D(2025, 9, 30), 3).date == D(2025, 10, 11)  # the worked Saturday
    assert CAL.add_working_days(D(2025, 10, 3), 1).date == D(2025, 10, 9)  # intake on a holiday


def test_intake_day_never_counts() -> None:
    monday = D(2025, 11, 24)
    assert CAL.add_working_days(monday, 1).date == D(2025, 11, 25)
    assert CAL.add_working_days(D(2025, 11, 22), 1).date == monday  # Saturday intake
    assert CAL.add_working_days(D(2025, 11, 21), 1).date == monday  # Friday intake


def test_zero_days_is_the_same_day() -> None:
    assert CAL.add_working_days(D(2025, 10, 4), 0) == Deadline(D(2025, 10, 4))
    assert CAL.add_working_days(D(2030, 1, 5), 0) == Deadline(D(2030, 1, 5))


def test_into_an_unknown_year_is_flagged() -> None:
    # Mon 28 Dec 2026 + 5: Tue 29, Wed 30, Thu 31, then 2027 estimated: Fri 1 is 元旦, Mon 4, Tue 5.
    deadline = CAL.add_working_days(D(2026, 12, 28), 5)
    assert deadline.date == D(2027, 1, 5)
    assert deadline.unknown_years == frozenset({2027})
    assert deadline.calendar_unknown
    # Staying inside 2026 is not flagged.
    inside = CAL.add_working_days(D(2026, 12, 28), 3)
    assert inside == Deadline(D(2026, 12, 31))
    assert not inside.calendar_unknown


def test_override_for_2027_changes_the_result_and_clears_the_flag() -> None:
    cal = CAL.with_overrides([SCHEDULE_2027])
    deadline = cal.add_working_days(D(2026, 12, 28), 5)
    # Tue 29, Wed 30, Thu 31; Jan 1 and Mon 4 off; Tue 5, Wed 6.
    assert deadline == Deadline(D(2027, 1, 6))
    assert not deadline.calendar_unknown
    assert cal.add_working_days(D(2027, 1, 8), 1).date == D(2027, 1, 9)  # the worked Saturday
    # The original calendar is untouched.
    assert CAL.add_working_days(D(2026, 12, 28), 5).date == D(2027, 1, 5)


def test_override_replaces_a_known_year() -> None:
    bare_2025 = YearSchedule(2025, frozenset(), frozenset(), "test: no holidays")
    cal = CAL.with_overrides({2025: bare_2025})
    assert cal.schedules[2025] is bare_2025
    assert cal.add_working_days(D(2025, 9, 26), 5).date == D(2025, 10, 3)
    assert cal.schedules[2024] is CAL.schedules[2024]


def test_several_unknown_years_are_all_named() -> None:
    deadline = WorkCalendar().add_working_days(D(2029, 12, 31), 300)
    assert deadline.unknown_years == frozenset({2030, 2031})


@pytest.mark.parametrize("n", [-1, MAX_WORKING_DAYS + 1, 1.0, True])
def test_bad_day_counts_are_refused(n: Any) -> None:
    with pytest.raises(InputError) as exc:
        CAL.add_working_days(D(2025, 1, 1), n)
    assert exc.value.code is ErrorCode.FIELD_INVALID


def test_end_of_the_calendar_is_an_input_error() -> None:
    with pytest.raises(InputError):
        WorkCalendar().add_working_days(dt.date.max, 1)


def test_working_days_between() -> None:
    assert CAL.working_days_between(D(2025, 9, 26), D(2025, 10, 10)) == 5
    assert CAL.working_days_between(D(2025, 10, 10), D(2025, 9, 26)) == -5
    assert CAL.working_days_between(D(2025, 10, 1), D(2025, 10, 8)) == 0
    assert CAL.working_days_between(D(2025, 10, 1), D(2025, 10, 1)) == 0
    assert CAL.working_days_between(D(2025, 10, 8), D(2025, 10, 11)) == 3


# -- schedules as record bodies ---------------------------------------------------------


def test_body_round_trip_uses_only_text_ints_and_iso_dates() -> None:
    body = SCHEDULE_2027.to_body()
    assert body == {
        "year": 2027,
        "holidays": ["2027-01-01", "2027-01-04"],
        "workdays": ["2027-01-09"],
        "source": "central release 3",
    }
    assert YearSchedule.from_body(body) == SCHEDULE_2027
    for year in CAL.known_years:
        assert YearSchedule.from_body(CAL.schedules[year].to_body()) == CAL.schedules[year]


def test_a_weekend_holiday_is_allowed() -> None:
    s = YearSchedule.from_body(
        {"year": 2027, "holidays": ["2027-01-02"], "workdays": [], "source": "central release 4"}
    )
    assert not WorkCalendar({2027: s}).is_working_day(D(2027, 1, 2))


def _body(**changes: Any) -> dict[str, Any]:
    body = SCHEDULE_2027.to_body()
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (_body(holidays=["2026-12-31"]), "not in 2027"),
        (_body(workdays=["2028-01-08"]), "not in 2027"),
        (_body(workdays=["2027-01-08"]), "Friday"),  # a working Friday changes nothing: refused
        (_body(holidays=["2027-01-09"]), "both"),
        (_body(holidays=["2027-1-4"]), "ISO date"),
        (_body(holidays=["2027-02-30"]), "not a real date"),
        (_body(holidays=[20270101]), "ISO date"),
        (_body(holidays=["2027-01-04", "2027-01-01"]), "ascend"),
        (_body(holidays=["2027-01-01", "2027-01-01"]), "ascend"),
        (_body(holidays="2027-01-01"), "list"),
        (_body(year="2027"), "integer"),
        (_body(year=True), "integer"),
        (_body(year=2027.0), "integer"),
        (_body(source=""), "source"),
        (_body(source=3), "source"),
        ({**_body(), "extra": 1}, "unknown ['extra']"),
        ({k: v for k, v in _body().items() if k != "workdays"}, "missing ['workdays']"),
    ],
)
def test_from_body_is_strict(body: dict[str, Any], needle: str) -> None:
    assert needle in _calendar_error(YearSchedule.from_body, body)


def test_from_body_needs_a_map() -> None:
    assert "map" in _calendar_error(YearSchedule.from_body, [2027])


def test_constructor_enforces_the_same_rules() -> None:
    _calendar_error(YearSchedule, 2027, frozenset({D(2026, 1, 1)}), frozenset(), "x")
    _calendar_error(YearSchedule, 2027, frozenset(), frozenset({D(2027, 1, 4)}), "x")
    _calendar_error(YearSchedule, 2027, frozenset(), frozenset(), "   ")
    _calendar_error(YearSchedule, 2027, frozenset({dt.datetime(2027, 1, 1)}), frozenset(), "x")


def test_calendar_rejects_misfiled_schedules() -> None:
    _calendar_error(WorkCalendar, {2026: SCHEDULE_2027})
    _calendar_error(CAL.with_overrides, ["not a schedule"])


def test_calendar_is_immutable_and_hashable() -> None:
    with pytest.raises(TypeError):
        CAL.schedules[2030] = SCHEDULE_2027  # type: ignore[index]
    assert hash(CAL.with_overrides([SCHEDULE_2027])) == hash(CAL.with_overrides([SCHEDULE_2027]))
    assert CAL.with_overrides([SCHEDULE_2027]) == CAL.with_overrides({2027: SCHEDULE_2027})


# -- properties -------------------------------------------------------------------------

_starts = st.dates(min_value=D(2003, 6, 1), max_value=D(2028, 6, 30))
_counts = st.integers(min_value=0, max_value=80)
_calendars = st.sampled_from([CAL, CAL.with_overrides([SCHEDULE_2027]), WorkCalendar()])


@given(_calendars, _starts, st.integers(min_value=1, max_value=80))
def test_deadline_is_a_later_working_day(cal: WorkCalendar, start: dt.date, n: int) -> None:
    deadline = cal.add_working_days(start, n)
    assert deadline.date > start
    assert cal.is_working_day(deadline.date)
    assert cal.working_days_between(start, deadline.date) == n
    # The flag names exactly the unknown years between the day after intake and the deadline.
    walked = set(range((start + dt.timedelta(days=1)).year, deadline.date.year + 1))
    assert deadline.unknown_years == frozenset(y for y in walked if not cal.year_known(y))


@given(_calendars, _starts, _counts)
def test_deadline_is_monotone_in_n(cal: WorkCalendar, start: dt.date, n: int) -> None:
    assert cal.add_working_days(start, n + 1).date > cal.add_working_days(start, n).date


@given(_calendars, _starts, _starts)
def test_working_days_between_is_antisymmetric(cal: WorkCalendar, a: dt.date, b: dt.date) -> None:
    assert cal.working_days_between(a, b) == -cal.working_days_between(b, a)
