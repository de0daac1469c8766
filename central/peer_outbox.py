"""What central owes each peer city over the link between centrals, and what it expects.

``peer_outbox``: one row per message or file queued for a peer, numbered in the order
queued. ``peer_expected``: the files a delivered message listed, which the peer may send.
"""

from __future__ import annotations

from sqlite_utils import Database


def enqueue(db: Database, peer: str, data: bytes) -> int:
    cur = db.conn.execute(
        "INSERT INTO peer_outbox (peer, data, sha, size) VALUES (?, ?, NULL, 0)", (peer, data)
    )
    return int(cur.lastrowid or 0)


def enqueue_file(db: Database, peer: str, sha: str, size: int) -> int:
    cur = db.conn.execute(
        "INSERT INTO peer_outbox (peer, data, sha, size) VALUES (?, NULL, ?, ?)", (peer, sha, size)
    )
    return int(cur.lastrowid or 0)


def expect_file(db: Database, peer: str, sha: str, size: int) -> None:
    db.conn.execute(
        "INSERT OR IGNORE INTO peer_expected (peer, sha, size) VALUES (?, ?, ?)", (peer, sha, size)
    )


def pending(db: Database, peer: str, after: int = 0) -> list[tuple[int, bytes | None, str | None, int]]:
    rows = db.conn.execute(
        "SELECT seq, data, sha, size FROM peer_outbox WHERE peer = ? AND seq > ? ORDER BY seq", (peer, after)
    ).fetchall()
    return [(int(s), None if d is None else bytes(d), sha, int(n)) for s, d, sha, n in rows]


PEER_LINK_TABLES = (
    "CREATE TABLE peer_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, data BLOB,"
    " sha TEXT, size INTEGER NOT NULL)",
    "CREATE TABLE peer_expected (peer TEXT NOT NULL, sha TEXT NOT NULL, size INTEGER NOT NULL,"
    " PRIMARY KEY (peer, sha))",
)
