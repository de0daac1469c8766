"""When records reached this store: the ``records`` table's arrival index, read.

The arrival index orders a store's records as they came in (a record signed offline days
ago arrives now). A clerk's "new since I last looked" is measured in it, not in signing
times.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlite_utils import Database


def arrivals(db: Database, ids: Sequence[bytes]) -> dict[bytes, int]:
    """The arrival index of each of the records ``ids`` held, by id."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.conn.execute(f"SELECT id, arrival FROM records WHERE id IN ({marks})", tuple(ids))
    return {bytes(rid): int(arrival) for rid, arrival in rows}


def newest_arrival(db: Database) -> int:
    """The arrival index of the newest record held (0: none)."""
    row = db.conn.execute("SELECT coalesce(max(arrival), 0) FROM records").fetchone()
    return int(row[0])
