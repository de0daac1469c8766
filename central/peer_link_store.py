"""The store of the links with other cities' centrals: what central owes and has received.

Tables (migration ``central/0009_peer_link``):

``peer_links``
    where each peer central is reached: its endpoint and its CURVE key (its genesis
    ``curve_pk``), as the operator entered them at ``tongban central peer propose``; the
    key is pinned: the receiving side admits no other, the pushing side trusts no other.
``peer_out``
    the outbox: per peer, numbered by one sequence, the messages (opaque bytes) and the
    held files (by hex SHA-256) not yet acknowledged by the peer.
``peer_contacts``
    per peer: the last seq given out, the inbox's high-water mark (``in_seq``: the highest
    seq received from the peer, advanced in the transaction that delivers), when the peer
    last delivered to us and we to it, and the last error (a code, or "").
``peer_expected``
    the files a delivered message said will come from a peer (the receiving side takes
    no other file).
``peer_refusals``
    the messages the deliver hook refused (and files refused), with the code, bounded per
    peer.

:func:`enqueue`, :func:`enqueue_file` and :func:`expect_file` run in the caller's
transaction; they and :func:`contacts` are the interface the crossing case uses, through
:mod:`central.peer_outbox`. The link (:mod:`central.peer_link`) does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.errors import ErrorCode, InputError, SyncError
from sync.link.peer_protocol import MAX_DATA
from sync.record.filestore import check_sha

REFUSALS_KEPT = 100
"""Refused messages kept per peer (the oldest go first)."""


@dataclass(frozen=True)
class PeerContact:
    """One linked peer as the link sees it (:func:`contacts`)."""

    net: str
    last_in: int  # when it last delivered to us (0: never)
    last_out: int  # when we last delivered to it (0: never)
    waiting_out: int  # messages and files not yet acknowledged
    last_error: str  # the last failure's code, "" after a good session
    in_seq: int  # the highest seq received from it


@dataclass(frozen=True)
class PeerLink:
    """A row of ``peer_links``."""

    peer: str
    endpoint: str
    curve_pk: bytes


@dataclass(frozen=True)
class OutItem:
    """A row of ``peer_out``: a message (``data``) or a held file (``sha``, ``size``)."""

    seq: int
    data: bytes | None
    sha: str | None
    size: int


@dataclass(frozen=True)
class Refusal:
    peer: str
    seq: int
    code: str
    detail: str
    at: int


# -- the sending side's interface -----------------------------------------------------------


def _next_seq(db: Database, peer: str) -> int:
    if not peer.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "a peer's net is required")
    db.conn.execute("INSERT INTO peer_contacts (peer) VALUES (?) ON CONFLICT (peer) DO NOTHING", (peer,))
    row = db.conn.execute(
        "UPDATE peer_contacts SET out_seq = out_seq + 1 WHERE peer = ? RETURNING out_seq", (peer,)
    ).fetchone()
    return int(row[0])


def enqueue(db: Database, peer: str, data: bytes) -> int:
    """Queue ``data`` for ``peer`` (its net), in the caller's transaction; its seq."""
    if not isinstance(data, bytes) or len(data) > MAX_DATA:
        raise SyncError(ErrorCode.SYNC_TOO_LARGE, f"a message to a peer is at most {MAX_DATA} bytes")
    seq = _next_seq(db, peer)
    db.conn.execute(
        "INSERT INTO peer_out (peer, seq, data, sha, size) VALUES (?, ?, ?, NULL, ?)",
        (peer, seq, data, len(data)),
    )
    return seq


def enqueue_file(db: Database, peer: str, sha: str, size: int) -> int:
    """Queue the held file ``sha`` (hex SHA-256, ``size`` bytes) for ``peer``; its seq."""
    check_sha(sha)
    if size < 0:
        raise InputError(ErrorCode.FIELD_INVALID, "a file's size is 0 or more")
    seq = _next_seq(db, peer)
    db.conn.execute(
        "INSERT INTO peer_out (peer, seq, data, sha, size) VALUES (?, ?, NULL, ?, ?)", (peer, seq, sha, size)
    )
    return seq


def waiting(db: Database, peer: str, after: int, limit: int) -> list[OutItem]:
    """Up to ``limit`` items owed to ``peer`` with a seq above ``after``, in order."""
    rows = db.conn.execute(
        "SELECT seq, data, sha, size FROM peer_out WHERE peer = ? AND seq > ? ORDER BY seq LIMIT ?",
        (peer, after, limit),
    ).fetchall()
    return [OutItem(int(s), None if d is None else bytes(d), sha, int(size)) for s, d, sha, size in rows]


def void_waiting(db: Database, peer: str, data: bytes) -> int:
    """Replace every item still owed to ``peer`` by the message ``data`` (an agreement ended:
    nothing more of its cases goes; the seqs stay, so the peer's mark runs on); how many."""
    cur = db.conn.execute(
        "UPDATE peer_out SET data = ?, sha = NULL, size = ? WHERE peer = ?", (data, len(data), peer)
    )
    return int(cur.rowcount)


def waiting_count(db: Database, peer: str) -> int:
    row = db.conn.execute("SELECT count(*) FROM peer_out WHERE peer = ?", (peer,)).fetchone()
    return int(row[0])


def owed(db: Database) -> set[str]:
    """The peers something is owed to (one read for every link)."""
    return {str(r[0]) for r in db.conn.execute("SELECT DISTINCT peer FROM peer_out")}


def last_seq(db: Database, peer: str) -> int:
    """The highest seq owed to ``peer`` (0: nothing owed)."""
    row = db.conn.execute("SELECT max(seq) FROM peer_out WHERE peer = ?", (peer,)).fetchone()
    return int(row[0] or 0)


def acked(db: Database, peer: str, have: int, now: int | None) -> None:
    """The peer holds everything up to ``have``: forget it; ``now`` (unless None) is when
    it acknowledged a delivery."""
    db.conn.execute("DELETE FROM peer_out WHERE peer = ? AND seq <= ?", (peer, have))
    if now is not None:
        _contact(db, peer, "last_out = ?, last_error = ''", (now,))


# -- the receiving side's interface --------------------------------------------------------


def expect_file(db: Database, peer: str, sha: str, size: int) -> None:
    """A message delivered from ``peer`` says the file ``sha`` (``size`` bytes) will come."""
    check_sha(sha)
    if size < 0:
        raise InputError(ErrorCode.FIELD_INVALID, "a file's size is 0 or more")
    db.conn.execute(
        "INSERT INTO peer_expected (peer, sha, size) VALUES (?, ?, ?)"
        " ON CONFLICT (peer, sha) DO UPDATE SET size = excluded.size",
        (peer, sha, size),
    )


def expected_size(db: Database, peer: str, sha: str) -> int | None:
    row = db.conn.execute("SELECT size FROM peer_expected WHERE peer = ? AND sha = ?", (peer, sha)).fetchone()
    return None if row is None else int(row[0])


def expected(db: Database, peer: str, limit: int) -> list[tuple[str, int]]:
    """Up to ``limit`` files expected from ``peer``: (sha, size)."""
    rows = db.conn.execute(
        "SELECT sha, size FROM peer_expected WHERE peer = ? ORDER BY sha LIMIT ?", (peer, limit)
    ).fetchall()
    return [(str(sha), int(size)) for sha, size in rows]


def arrived(db: Database, peer: str, sha: str) -> None:
    """The file ``sha`` from ``peer`` is whole: no longer expected."""
    db.conn.execute("DELETE FROM peer_expected WHERE peer = ? AND sha = ?", (peer, sha))


def in_seq(db: Database, peer: str) -> int:
    row = db.conn.execute("SELECT in_seq FROM peer_contacts WHERE peer = ?", (peer,)).fetchone()
    return 0 if row is None else int(row[0])


def received(db: Database, peer: str, seq: int, now: int) -> None:
    """Advance the inbox's high-water mark of ``peer`` to ``seq`` (in the delivering transaction)."""
    _contact(db, peer, "in_seq = max(in_seq, ?), last_in = ?", (seq, now))


def refuse(
    db: Database, peer: str, seq: int, code: ErrorCode, detail: str, now: int, data: bytes | None = None
) -> None:
    """Keep the refusal of ``peer``'s item ``seq``, with the message refused (the oldest
    beyond :data:`REFUSALS_KEPT` go)."""
    db.conn.execute(
        "INSERT INTO peer_refusals (peer, seq, code, detail, at, data) VALUES (?, ?, ?, ?, ?, ?)",
        (peer, seq, code.value, detail[:500], now, data),
    )
    db.conn.execute(
        "DELETE FROM peer_refusals WHERE peer = ? AND id NOT IN"
        " (SELECT id FROM peer_refusals WHERE peer = ? ORDER BY id DESC LIMIT ?)",
        (peer, peer, REFUSALS_KEPT),
    )


def refusals(db: Database, peer: str | None = None) -> list[Refusal]:
    """The refusals kept, oldest first (of one peer, or of all)."""
    rows = db.conn.execute(
        "SELECT peer, seq, code, detail, at FROM peer_refusals WHERE ? IS NULL OR peer = ? ORDER BY id",
        (peer, peer),
    ).fetchall()
    return [Refusal(str(p), int(s), str(c), str(d), int(a)) for p, s, c, d, a in rows]


def refusal_counts(db: Database) -> dict[str, int]:
    """Refused messages kept per peer: what the link's dashboard counts."""
    rows = db.conn.execute("SELECT peer, count(*) FROM peer_refusals GROUP BY peer").fetchall()
    return {str(peer): int(n) for peer, n in rows}


# -- both sides ---------------------------------------------------------------------------


def note_error(db: Database, peer: str, code: ErrorCode) -> None:
    """The last session with ``peer`` failed with ``code``."""
    _contact(db, peer, "last_error = ?", (code.value,))


def clear_error(db: Database, peer: str) -> None:
    """A session with ``peer`` began well."""
    _contact(db, peer, "last_error = ''", ())


def _contact(db: Database, peer: str, assignments: str, values: tuple[object, ...]) -> None:
    db.conn.execute("INSERT INTO peer_contacts (peer) VALUES (?) ON CONFLICT (peer) DO NOTHING", (peer,))
    db.conn.execute(f"UPDATE peer_contacts SET {assignments} WHERE peer = ?", (*values, peer))


def contacts(db: Database) -> list[PeerContact]:
    """Per linked peer (or peer with anything queued or received): its contact."""
    rows = db.conn.execute(
        "SELECT n.peer, coalesce(c.last_in, 0), coalesce(c.last_out, 0),"
        " (SELECT count(*) FROM peer_out o WHERE o.peer = n.peer), coalesce(c.last_error, ''),"
        " coalesce(c.in_seq, 0)"
        " FROM (SELECT peer FROM peer_links UNION SELECT peer FROM peer_contacts) n"
        " LEFT JOIN peer_contacts c ON c.peer = n.peer ORDER BY n.peer"
    ).fetchall()
    return [PeerContact(str(p), int(i), int(o), int(w), str(e), int(s)) for p, i, o, w, e, s in rows]


def set_link(db: Database, peer: str, endpoint: str, curve_pk: bytes) -> None:
    """Where ``peer``'s central is reached, and its pinned CURVE key."""
    if not endpoint.startswith("tcp://") or len(curve_pk) != 32:
        raise InputError(ErrorCode.FIELD_INVALID, "a link is tcp://HOST:PORT and a 32-byte CURVE key")
    db.conn.execute(
        "INSERT OR REPLACE INTO peer_links (peer, endpoint, curve_pk) VALUES (?, ?, ?)",
        (peer, endpoint, curve_pk),
    )


def link_of(db: Database, peer: str) -> PeerLink | None:
    row = db.conn.execute(
        "SELECT peer, endpoint, curve_pk FROM peer_links WHERE peer = ?", (peer,)
    ).fetchone()
    return None if row is None else PeerLink(str(row[0]), str(row[1]), bytes(row[2]))


def links(db: Database) -> list[PeerLink]:
    rows = db.conn.execute("SELECT peer, endpoint, curve_pk FROM peer_links ORDER BY peer").fetchall()
    return [PeerLink(str(p), str(e), bytes(k)) for p, e, k in rows]


def peer_of_key(db: Database, curve_pk: bytes) -> str | None:
    """The linked peer whose pinned CURVE key is ``curve_pk``."""
    row = db.conn.execute("SELECT peer FROM peer_links WHERE curve_pk = ?", (curve_pk,)).fetchone()
    return None if row is None else str(row[0])


PEER_LINK_TABLES = (
    "CREATE TABLE peer_links (peer TEXT PRIMARY KEY, endpoint TEXT NOT NULL, curve_pk BLOB NOT NULL)",
    """
    CREATE TABLE peer_out (
        peer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        data BLOB,
        sha TEXT,
        size INTEGER NOT NULL,
        PRIMARY KEY (peer, seq)
    )
    """,
    """
    CREATE TABLE peer_contacts (
        peer TEXT PRIMARY KEY,
        out_seq INTEGER NOT NULL DEFAULT 0,
        in_seq INTEGER NOT NULL DEFAULT 0,
        last_in INTEGER NOT NULL DEFAULT 0,
        last_out INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TABLE peer_expected (
        peer TEXT NOT NULL,
        sha TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (peer, sha)
    )
    """,
    """
    CREATE TABLE peer_refusals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        peer TEXT NOT NULL,
        seq INTEGER NOT NULL,
        code TEXT NOT NULL,
        detail TEXT NOT NULL,
        at INTEGER NOT NULL,
        data BLOB
    )
    """,
    "CREATE INDEX peer_refusals_peer ON peer_refusals (peer, id)",
)
"""Migration ``central/0009_peer_link``."""
