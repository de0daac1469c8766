"""The rest days the law fixes, computed for a year without a published schedule, held
against the State Council's real schedules that chinese_calendar carries."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest

from core.calendar import WorkCalendar
from core.holidays import statutory_holidays, statutory_rest_days

D = dt.date
REAL_YEARS = range(2004, 2027)


@pytest.mark.parametrize("year", REAL_YEARS)
def test_the_computed_lunar_and_solar_term_days_are_real_holidays(year: int) -> None:
    # 春节's 初一, 清明, 端午 and 中秋 moved with the lunar calendar and the solar term every
    # year: each computed date is a day off in that year's real schedule (清明 and the
    # three lunar festivals have been holidays since 2008).
    named = {name: [d for d, n in statutory_holidays(year).items() if n == name] for name in ("春节",)}
    new_year = named["春节"][1]  # 除夕, then 初一
    assert chinese_calendar.is_holiday(new_year), new_year
    if year >= 2008:
        for day, name in statutory_holidays(year).items():
            if name in ("清明节", "端午节", "中秋节"):
                assert chinese_calendar.is_holiday(day), (name, day)


@pytest.mark.parametrize("year", [2025, 2026])
def test_under_the_2025_rules_every_fixed_holiday_is_a_real_day_off(year: int) -> None:
    holidays = statutory_holidays(year)
    assert len(holidays) == 13  # 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3
    for day in holidays:
        assert chinese_calendar.is_holiday(day), day


def test_a_holiday_on_a_weekend_is_made_up_on_the_next_free_weekday() -> None:
    # 2027: 春节 is Fri 5 – Mon 8 February; Saturday and Sunday are made up Tue 9 and Wed 10
    rest = statutory_rest_days(2027)
    assert {D(2027, 2, d) for d in (5, 6, 7, 8, 9, 10)} <= rest
    assert D(2027, 2, 11) not in rest
    # 国庆 Fri 1 – Sun 3 October: made up Mon 4 and Tue 5
    assert {D(2027, 10, 4), D(2027, 10, 5)} <= rest and D(2027, 10, 6) not in rest


def test_a_deadline_into_2027_skips_its_spring_festival_and_stays_an_estimate() -> None:
    calendar = WorkCalendar.builtin()
    # Thu 4 Feb 2027 + 2 working days: Fri 5 to Wed 10 are rest days, so Thu 11, Fri 12
    deadline = calendar.add_working_days(D(2027, 2, 4), 2)
    assert deadline.date == D(2027, 2, 12)
    assert deadline.unknown_years == frozenset({2027})


def test_a_year_beyond_the_lunar_tables_keeps_its_fixed_date_holidays() -> None:
    assert set(statutory_holidays(2150).values()) == {"元旦", "劳动节", "国庆节"}
