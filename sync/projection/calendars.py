"""Calendar releases as stored, and the working-day calendar a store's deadlines use.

Central publishes a year's holidays and adjusted working days (调休) as a signed
``calendar.release`` (:class:`core.calendar.CalendarRelease`). Every store keeps every
release it accepts, in the ``calendar_releases`` table, and refuses one whose version is
not exactly the next (``E_CALENDAR_ROLLBACK``, ``E_CALENDAR_VERSION_GAP``): versions run
across years, so the newest version held names the whole set a store holds.

:class:`StoreCalendar` is what computes deadlines: the built-in years overlaid with the
newest release for each year held. Intake is a hot path, so it rebuilds the calendar only
when the newest version held changed — one lookup of an integer primary key per use,
which also sees releases that another process (the sync agent) ingested.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.calendar import CalendarRelease, WorkCalendar
from core.errors import ErrorCode, RecordError
from sync.record import codec, kinds
from sync.record.envelope import Record


class CalendarProjector:
    """Calendar releases, strictly version = previous + 1."""

    kinds = frozenset({kinds.CALENDAR_RELEASE})
    tables: tuple[str, ...] = ("calendar_releases",)
    contained = kinds  # every refusal comes before the one INSERT

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        release = checked if isinstance(checked, CalendarRelease) else CalendarRelease.from_body(record.body)
        current = newest_version(db)
        if release.version <= current:
            raise RecordError(
                ErrorCode.CALENDAR_ROLLBACK, f"release {release.version} offered, {current} already held"
            )
        if release.version != current + 1:
            raise RecordError(ErrorCode.CALENDAR_VERSION_GAP, f"release {release.version} after {current}")
        db.conn.execute(
            "INSERT INTO calendar_releases (version, year, record_id, issued, exp, source, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                release.version,
                release.year,
                record.id,
                release.issued,
                release.exp,
                release.schedule.source,
                codec.encode(release.to_body()),
            ),
        )


def newest_version(db: Database) -> int:
    """The highest calendar release version held; 0 when none is."""
    return int(db.conn.execute("SELECT max(version) FROM calendar_releases").fetchone()[0] or 0)


def current_releases(db: Database) -> list[CalendarRelease]:
    """The newest release held for each year, by year."""
    rows = db.conn.execute(
        "SELECT body FROM calendar_releases c"
        " WHERE version = (SELECT max(version) FROM calendar_releases WHERE year = c.year) ORDER BY year"
    ).fetchall()
    return [CalendarRelease.from_body(codec.decode(bytes(body))) for (body,) in rows]


def store_calendar(db: Database) -> WorkCalendar:
    """The built-in years, each year a release covers replaced by its newest release."""
    return WorkCalendar.builtin().with_overrides(r.schedule for r in current_releases(db))


class StoreCalendar:
    """The calendar of one store, rebuilt only when the store holds a newer release.

    One instance per store connection (a desk, a case projector): the version it was built
    at is only meaningful for the store it was read from.
    """

    def __init__(self) -> None:
        self._version = 0
        self._calendar = WorkCalendar.builtin()

    def get(self, db: Database) -> WorkCalendar:
        version = newest_version(db)
        if version != self._version:
            # Also when the version went down: a rebuild replays the log from empty.
            self._calendar = store_calendar(db)
            self._version = version
        return self._calendar


@dataclass(frozen=True)
class HeldYears:
    """Which years a store counts working days for, and from where (for the clerk's pages)."""

    builtin_first: int | None
    builtin_last: int | None
    builtin_source: str
    releases: tuple[CalendarRelease, ...]


def held_years(db: Database) -> HeldYears:
    """The built-in range and the releases in force, one per year."""
    builtin = WorkCalendar.builtin()
    years = sorted(builtin.known_years)
    source = builtin.schedules[years[-1]].source if years else ""
    return HeldYears(
        builtin_first=years[0] if years else None,
        builtin_last=years[-1] if years else None,
        builtin_source=source,
        releases=tuple(current_releases(db)),
    )


CALENDAR_TABLES = (
    """
    CREATE TABLE calendar_releases (
        version INTEGER PRIMARY KEY,
        year INTEGER NOT NULL,
        record_id BLOB NOT NULL UNIQUE,
        issued INTEGER NOT NULL,
        exp INTEGER NOT NULL,
        source TEXT NOT NULL,
        body BLOB NOT NULL
    )
    """,
    "CREATE INDEX calendar_releases_year ON calendar_releases (year, version)",
)
"""Migration ``log/0005_calendar_releases``."""
