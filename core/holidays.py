"""The rest days fixed by law, for a year whose schedule the State Council has not announced.

《全国年节及纪念日放假办法》 (as amended by State Council decree 795, in force from 2025)
fixes the days every citizen has off:

========  ==========================================  =====
holiday   when                                        days
========  ==========================================  =====
元旦       1 January                                    1
春节       the last day of the lunar year (除夕) to 初三      4
清明       the day of the solar term 清明                 1
劳动节     1–2 May                                        2
端午       the 5th of the 5th lunar month                 1
中秋       the 15th of the 8th lunar month                1
国庆节     1–3 October                                    3
========  ==========================================  =====

and (article 6) a holiday of all citizens that falls on a Saturday or Sunday is made up on
a working day (补假): here the first weekday after it that is no rest day itself. What the
law leaves to each year's announcement — the worked weekends (调休) that join a holiday
to its weekend — cannot be known in advance, so a deadline counted with these days is
still an estimate (:attr:`core.calendar.Deadline.unknown_years`); it is only nearer the
truth than Monday to Friday, by the 13 days a year the law fixes.

The lunar dates come from ``lunardate`` (its tables cover 1900–2099), the solar term from
``chinese_calendar``'s formula; a year outside those tables gets the fixed-date holidays
only. Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

_WEEKEND = (5, 6)
_DAY = dt.timedelta(days=1)


def _lunar(year: int, month: int, day: int) -> dt.date | None:
    """The Gregorian date of a lunar ``month``/``day`` of the lunar year that begins in ``year``."""
    from lunardate import LunarDate

    try:
        solar = LunarDate(year, month, day).to_solar_date()
    except ValueError:  # outside lunardate's table
        return None
    return solar if isinstance(solar, dt.date) else None


def _qingming(year: int) -> dt.date | None:
    import chinese_calendar

    try:
        terms = chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 10))
    except (ValueError, KeyError, IndexError, NotImplementedError):  # outside its 1900–2100
        return None
    return next((day for day, name in terms if name == "清明"), None)


@cache
def statutory_holidays(year: int) -> dict[dt.date, str]:
    """Every holiday of all citizens in ``year``, by date, with its name."""
    days: dict[dt.date, str] = {dt.date(year, 1, 1): "元旦"}
    new_year = _lunar(year, 1, 1)
    if new_year is not None:
        for offset in range(-1, 3):  # 除夕 to 初三
            days[new_year + offset * _DAY] = "春节"
    qingming = _qingming(year)
    if qingming is not None:
        days[qingming] = "清明节"
    for d in (1, 2):
        days[dt.date(year, 5, d)] = "劳动节"
    for month, day, name in ((5, 5, "端午节"), (8, 15, "中秋节")):
        found = _lunar(year, month, day)
        if found is not None:
            days[found] = name
    for d in (1, 2, 3):
        days[dt.date(year, 10, d)] = "国庆节"
    # 除夕 of the next lunar year can fall in this year's late January/February only when
    # it belongs to this year's 春节, already counted; other years' days are left out.
    return {d: n for d, n in sorted(days.items()) if d.year == year}


@cache
def statutory_rest_days(year: int) -> frozenset[dt.date]:
    """The days off the law fixes in ``year``: its holidays, and for each one that falls on
    a weekend the first later weekday that is no rest day (补假)."""
    holidays = statutory_holidays(year)
    off = set(holidays)
    for day in sorted(holidays):
        if day.weekday() in _WEEKEND:
            makeup = day + _DAY
            while makeup.weekday() in _WEEKEND or makeup in off:
                makeup += _DAY
            if makeup.year == year:
                off.add(makeup)
    return frozenset(off)
