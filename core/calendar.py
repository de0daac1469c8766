"""Chinese working days, for the time limits (办理时限) of cases.

This module owns the answer to "is this date a working day" and the deadline arithmetic
built on it. Government service time limits count working days: Monday to Friday, minus
the official holidays (法定节假日 and the days added around them), plus the weekend days
that are worked in exchange (调休). Each year's adjustments are announced by the State
Council, usually in November of the year before, so a node's calendar is data:

* a :class:`YearSchedule` per year: the weekday holidays and the worked weekend days,
  with the source it came from (:meth:`YearSchedule.to_body`, :meth:`YearSchedule.from_body`);
* a :class:`CalendarRelease`: one year's schedule as central signs it in a
  ``calendar.release`` record, numbered in one sequence for the whole network;
  :func:`schedule_from_data` reads the schedule from the operator's data file;
* a :class:`WorkCalendar`: the schedules a node holds. :meth:`WorkCalendar.builtin`
  reads the ``chinese_calendar`` package (2004–2026 in release 1.11.0);
  :meth:`WorkCalendar.with_overrides` lays published releases over it.

A year with no schedule is never refused: a village must be able to issue a receipt on 28
December for a deadline in a year whose holidays are not out yet. It is counted Monday to
Friday less the rest days the law fixes (元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆 and the
make-up day of one that falls on a weekend: :mod:`core.holidays`), without the worked
weekends that only the year's announcement says. Every result says which unknown years it
relied on (:attr:`Deadline.unknown_years`) so the receipt and the dashboard can mark the
date as an estimate.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from core.errors import ErrorCode, InputError
from core.holidays import statutory_rest_days

# Saturday and Sunday in date.weekday().
_WEEKEND = (5, 6)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BODY_KEYS = frozenset({"year", "holidays", "workdays", "source"})
# No real time limit comes near this; it bounds the day-by-day walk against bad input.
MAX_WORKING_DAYS = 3650
_MAX_SOURCE_LEN = 200
MIN_RELEASE_YEAR = 2020
"""The earliest year central may publish: the State Council's schedules before it are built in."""
_RELEASE_KEYS = _BODY_KEYS | {"version", "issued", "exp"}
_MAX_UINT = 2**63 - 1


def _invalid(detail: str) -> InputError:
    return InputError(ErrorCode.CALENDAR_INVALID, detail=detail)


@dataclass(frozen=True)
class YearSchedule:
    """One year's departures from the Monday-to-Friday week.

    ``holidays`` are days off; an entry on a weekend is allowed (it changes nothing).
    ``workdays`` are worked weekend days (调休) and must be Saturdays or Sundays. Every
    date lies in ``year`` and none is in both sets.
    """

    year: int
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    source: str

    def __post_init__(self) -> None:
        if type(self.year) is not int or not 1900 <= self.year <= 9998:
            raise _invalid(f"year must be an integer from 1900 to 9998, not {self.year!r}")
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        for name, days in (("holidays", self.holidays), ("workdays", self.workdays)):
            for d in sorted(days):
                if type(d) is not dt.date:
                    raise _invalid(f"{self.year} {name}: {d!r} is not a date")
                if d.year != self.year:
                    raise _invalid(f"{self.year} {name}: {d.isoformat()} is not in {self.year}")
        for d in sorted(self.workdays):
            if d.weekday() not in _WEEKEND:
                raise _invalid(
                    f"{self.year} workdays: {d.isoformat()} is a {d.strftime('%A')}; "
                    "only a Saturday or Sunday can be an adjusted working day"
                )
        both = sorted(self.holidays & self.workdays)
        if both:
            raise _invalid(f"{self.year}: {both[0].isoformat()} is both a holiday and a working day")
        if not isinstance(self.source, str) or not self.source.strip() or len(self.source) > _MAX_SOURCE_LEN:
            raise _invalid(
                f"{self.year}: source must be non-empty text of at most {_MAX_SOURCE_LEN} characters"
            )

    def to_body(self) -> dict[str, Any]:
        """The schedule as a record body: text keys, integers, ISO date strings, sorted."""
        return {
            "year": self.year,
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "workdays": [d.isoformat() for d in sorted(self.workdays)],
            "source": self.source,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> YearSchedule:
        """Parse a record body, strictly: exactly the four keys, dates ascending, no repeats.

        One schedule has exactly one body, so two releases that mean the same thing are
        byte-identical once signed.
        """
        if not isinstance(body, Mapping):
            raise _invalid(f"a calendar body is a map, not {type(body).__name__}")
        keys = set(body)
        if keys != _BODY_KEYS:
            unknown = sorted(str(k) for k in keys - _BODY_KEYS)
            missing = sorted(_BODY_KEYS - keys)
            raise _invalid(f"calendar body keys: unknown {unknown}, missing {missing}")
        year = body["year"]
        if type(year) is not int:
            raise _invalid(f"year must be an integer, not {year!r}")
        return cls(
            year=year,
            holidays=_parse_dates(year, "holidays", body["holidays"]),
            workdays=_parse_dates(year, "workdays", body["workdays"]),
            source=body["source"],
        )


def _parse_dates(year: int, name: str, values: Any) -> frozenset[dt.date]:
    if not isinstance(values, list | tuple):
        raise _invalid(f"{year} {name}: must be a list of ISO dates")
    days: list[dt.date] = []
    for text in values:
        if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
            raise _invalid(f"{year} {name}: {text!r} is not an ISO date (YYYY-MM-DD)")
        try:
            d = dt.date.fromisoformat(text)
        except ValueError:
            raise _invalid(f"{year} {name}: {text} is not a real date") from None
        if days and d <= days[-1]:
            raise _invalid(
                f"{year} {name}: {text} follows {days[-1].isoformat()}; dates must ascend, no repeats"
            )
        days.append(d)
    return frozenset(days)


@dataclass(frozen=True)
class CalendarRelease:
    """One year's schedule as central publishes it: the body of a ``calendar.release``.

    ``version`` numbers every calendar release of the network, whatever its year (1, 2,
    3 …): a store holds them all and refuses one that is not the next, as for catalog
    releases, so a relay can neither roll a node back to an older schedule nor skip a
    correction. A later release for a year replaces the earlier one, and a release for a
    year the built-in data covers replaces that year (a correction). ``issued`` is when
    central signed it and ``exp`` until when central expects the schedule to matter for
    open cases; a node keeps using a release after ``exp``, since a year's holidays do not
    change once it is over.
    """

    version: int
    schedule: YearSchedule
    issued: int
    exp: int

    def __post_init__(self) -> None:
        for name in ("version", "issued", "exp"):
            value = getattr(self, name)
            if type(value) is not int or not (1 if name == "version" else 0) <= value <= _MAX_UINT:
                raise _invalid(f"calendar release {name} must be a non-negative integer, not {value!r}")
        if not isinstance(self.schedule, YearSchedule):
            raise _invalid(f"{self.schedule!r} is not a YearSchedule")
        if self.schedule.year < MIN_RELEASE_YEAR:
            raise _invalid(f"a release is for {MIN_RELEASE_YEAR} or later, not {self.schedule.year}")
        if self.exp <= self.issued:
            raise _invalid("calendar release exp must be after issued")

    @property
    def year(self) -> int:
        return self.schedule.year

    def to_body(self) -> dict[str, Any]:
        """The record body: the schedule's four keys plus ``version``, ``issued``, ``exp``."""
        return {"version": self.version, **self.schedule.to_body(), "issued": self.issued, "exp": self.exp}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CalendarRelease:
        """Parse a ``calendar.release`` body, as strictly as :meth:`YearSchedule.from_body`."""
        if not isinstance(body, Mapping):
            raise _invalid(f"a calendar release is a map, not {type(body).__name__}")
        keys = set(body)
        if keys != _RELEASE_KEYS:
            unknown = sorted(str(k) for k in keys - _RELEASE_KEYS)
            missing = sorted(_RELEASE_KEYS - keys)
            raise _invalid(f"calendar release keys: unknown {unknown}, missing {missing}")
        schedule = YearSchedule.from_body({k: body[k] for k in _BODY_KEYS})
        return cls(version=body["version"], schedule=schedule, issued=body["issued"], exp=body["exp"])


def schedule_from_data(data: object) -> YearSchedule:
    """A schedule from an operator's data file (YAML): ``year``, ``source``, ``holidays``,
    ``workdays``.

    Lenient about spelling (a date may be ISO text or a date the YAML parser made, in any
    order), strict about content: a date twice, an unknown key or a missing one is refused.
    The shipped example carries an ``example`` key so that it cannot be published by
    mistake: its dates are not the State Council's.
    """
    if not isinstance(data, Mapping):
        raise _invalid("a calendar file is a map with year, source, holidays and workdays")
    if "example" in data:
        raise _invalid(
            "this is the example file: put in the dates of the State Council's announcement,"
            " name it in 'source', and delete the 'example' line"
        )
    keys = {str(k) for k in data}
    if keys != _BODY_KEYS:
        unknown = sorted(keys - _BODY_KEYS)
        missing = sorted(_BODY_KEYS - keys)
        raise _invalid(f"calendar file keys: unknown {unknown}, missing {missing}")
    year = data["year"]
    if type(year) is not int:
        raise _invalid(f"year must be an integer, not {year!r}")
    texts: dict[str, list[str]] = {}
    for name in ("holidays", "workdays"):
        values = data[name] if data[name] is not None else []
        if not isinstance(values, list):
            raise _invalid(f"{year} {name}: must be a list of dates")
        days = [v.isoformat() if type(v) is dt.date else v for v in values]
        repeated = sorted({str(d) for d in days if days.count(d) > 1})
        if repeated:
            raise _invalid(f"{year} {name}: {', '.join(repeated)} listed twice")
        texts[name] = sorted(days, key=str)
    return YearSchedule.from_body({"year": year, "source": data["source"], **texts})


@dataclass(frozen=True)
class Deadline:
    """A computed date, and the years without a published schedule that it relied on."""

    date: dt.date
    unknown_years: frozenset[int] = frozenset()

    @property
    def calendar_unknown(self) -> bool:
        """True when the date assumed Monday-to-Friday for some year: it may move."""
        return bool(self.unknown_years)


@dataclass(frozen=True)
class WorkCalendar:
    """The working-day schedules a node holds, by year; immutable."""

    schedules: Mapping[int, YearSchedule] = field(default_factory=dict)
    _off: frozenset[dt.date] = field(init=False, repr=False, compare=False)
    _on: frozenset[dt.date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = dict(sorted(self.schedules.items()))
        for year, schedule in table.items():
            if not isinstance(schedule, YearSchedule):
                raise _invalid(f"{year}: {schedule!r} is not a YearSchedule")
            if schedule.year != year:
                raise _invalid(f"schedule for {schedule.year} filed under {year}")
        object.__setattr__(self, "schedules", MappingProxyType(table))
        object.__setattr__(self, "_off", frozenset().union(*(s.holidays for s in table.values())))
        object.__setattr__(self, "_on", frozenset().union(*(s.workdays for s in table.values())))

    def __hash__(self) -> int:
        return hash(tuple(self.schedules.values()))

    @classmethod
    def builtin(cls) -> WorkCalendar:
        """Every year the installed ``chinese_calendar`` package covers."""
        return _builtin()

    def with_overrides(self, schedules: Iterable[YearSchedule] | Mapping[int, YearSchedule]) -> WorkCalendar:
        """A new calendar where each given schedule replaces (or adds) its year."""
        items = schedules.values() if isinstance(schedules, Mapping) else schedules
        table = dict(self.schedules)
        for schedule in items:
            if not isinstance(schedule, YearSchedule):
                raise _invalid(f"{schedule!r} is not a YearSchedule")
            table[schedule.year] = schedule
        return WorkCalendar(table)

    def year_known(self, year: int) -> bool:
        """Whether a schedule is held for ``year``."""
        return year in self.schedules

    @property
    def known_years(self) -> frozenset[int]:
        """The years with a schedule."""
        return frozenset(self.schedules)

    def is_working_day(self, d: dt.date) -> bool:
        """Whether ``d`` is a working day. For a year without a schedule: Monday to Friday
        less the rest days the law fixes (:func:`core.holidays.statutory_rest_days`)."""
        if d in self._on:
            return True
        if d in self._off:
            return False
        if d.year not in self.schedules and d in statutory_rest_days(d.year):
            return False
        return d.weekday() not in _WEEKEND

    def add_working_days(self, start: dt.date, n: int) -> Deadline:
        """The ``n``-th working day after ``start``; ``start`` itself never counts.

        ``n == 0`` gives ``start``. The result names every year, among the days walked,
        that had no schedule.
        """
        if type(n) is not int or not 0 <= n <= MAX_WORKING_DAYS:
            raise InputError(
                ErrorCode.FIELD_INVALID,
                detail=f"working days must be an integer from 0 to {MAX_WORKING_DAYS}, not {n!r}",
            )
        d = start
        unknown: set[int] = set()
        remaining = n
        while remaining:
            d = _next_day(d)
            if d.year not in self.schedules:
                unknown.add(d.year)
            if self.is_working_day(d):
                remaining -= 1
        return Deadline(d, frozenset(unknown))

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days after ``a`` up to and including ``b``; negative when ``b`` is before ``a``.

        ``working_days_between(start, add_working_days(start, n).date) == n``. Used for
        "overdue by N working days" (a = deadline, b = today) and "N left" (negated).
        """
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        d = a
        while d < b:
            d += dt.timedelta(days=1)
            if self.is_working_day(d):
                count += 1
        return count


def _next_day(d: dt.date) -> dt.date:
    try:
        return d + dt.timedelta(days=1)
    except OverflowError:
        raise InputError(
            ErrorCode.FIELD_INVALID, detail=f"no working day can follow {d.isoformat()}"
        ) from None


@cache
def _builtin() -> WorkCalendar:
    # Imported here so that a node that never asks for the built-in table does not pay for
    # loading it; the package is pure data (dicts of dates), no I/O.
    import chinese_calendar

    version = str(getattr(chinese_calendar, "__version__", "unknown"))
    holidays: Iterable[dt.date] = chinese_calendar.holidays
    workdays: Iterable[dt.date] = chinese_calendar.workdays
    off = sorted(holidays)
    on = sorted(workdays)
    if not off:
        return WorkCalendar({})
    # The package serves exactly the years from its first to its last holiday entry.
    years = range(off[0].year, off[-1].year + 1)
    schedules = {
        year: YearSchedule(
            year=year,
            # The package also lists weekend days of long holidays; only weekday entries
            # change the Monday-to-Friday default, so only those are kept.
            holidays=frozenset(d for d in off if d.year == year and d.weekday() not in _WEEKEND),
            workdays=frozenset(d for d in on if d.year == year),
            source=f"chinese-calendar {version}",
        )
        for year in years
    }
    return WorkCalendar(schedules)
