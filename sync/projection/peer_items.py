"""Other cities' items a store holds: our central's ``peer.items`` mirrors (异地代收).

Tables:

``peer_mirrors``
    one row per peer city: its newest mirror (the record, the peer's name, the version of
    the peer's catalog mirrored, that release's id there, its seq in central's chain).
``peer_items``
    one row per (peer, item) of that newest mirror: the version, the item's body as the
    peer's release defines it (canonical CBOR), the city's name, the mirror's seq.
``peer_item_versions``
    every (peer, item, version) any mirror held has listed, with the item's body: a case
    taken in under an older mirror still names an item the store knows (the cases
    projection asks :func:`mirrored_item` before it takes an intake of another city's item).

The records are central's, so they reach every node with central's chain, and a village
offers the items offline. A mirror of a city the store holds no cross-certification of is
refused (``E_PEER_UNKNOWN``): nothing is written, and the record is kept among the rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from core.catalog import Item, Mode
from core.errors import AuthorityError, ErrorCode, RecordError, TongbanError
from core.intake import Intake
from core.peer_items import PeerItems
from sync.projection.peers import peer_state
from sync.record import codec, kinds
from sync.record.envelope import Record
from sync.record.log import anchor_of, stored_record


@dataclass(frozen=True)
class Mirrored:
    """One item of a peer's newest mirror, as a window offers it."""

    peer: str
    name: str  # the peer city's name, 上海市青浦区
    cat: int
    item: Item
    seq: int


class PeerItemsProjector:
    """``peer_mirrors``, ``peer_items`` and ``peer_item_versions`` (see the module docstring)."""

    kinds = frozenset({kinds.PEER_ITEMS})
    tables: tuple[str, ...] = ("peer_mirrors", "peer_items", "peer_item_versions")

    def apply(self, db: Database, record: Record, checked: object = None) -> None:
        try:
            mirror = checked if isinstance(checked, PeerItems) else PeerItems.from_body(record.body)
        except TongbanError as exc:
            raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc
        if peer_state(db, mirror.peer) is None:
            raise AuthorityError(ErrorCode.PEER_UNKNOWN, f"peer.items of {mirror.peer}")
        conn = db.conn
        conn.execute(
            "INSERT INTO peer_mirrors (peer, name, cat, release, record_id, seq) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (peer) DO UPDATE SET name = excluded.name, cat = excluded.cat,"
            " release = excluded.release, record_id = excluded.record_id, seq = excluded.seq",
            (mirror.peer, mirror.name, mirror.cat, mirror.release, record.id, record.seq),
        )
        conn.execute("DELETE FROM peer_items WHERE peer = ?", (mirror.peer,))
        rows = [(mirror.peer, i.code, mirror.cat, codec.encode(i.to_body())) for i in mirror.items]
        conn.executemany(
            "INSERT INTO peer_items (peer, item, cat, body, name, seq) VALUES (?, ?, ?, ?, ?, ?)",
            [(*row, mirror.name, record.seq) for row in rows],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO peer_item_versions (peer, item, cat, body) VALUES (?, ?, ?, ?)", rows
        )


def _item(body: Any) -> Item:
    return Item.from_body(codec.decode(bytes(body)))


def newest_mirror(db: Database, peer: str) -> PeerItems | None:
    """The newest mirror of ``peer`` held (None: never mirrored)."""
    row = db.conn.execute("SELECT record_id FROM peer_mirrors WHERE peer = ?", (peer,)).fetchone()
    record = stored_record(db, bytes(row[0])) if row else None
    return PeerItems.from_body(record.body) if record else None


def mirrored(db: Database) -> list[Mirrored]:
    """Every item of every peer's newest mirror, by peer, then code."""
    rows = db.conn.execute("SELECT peer, name, cat, body, seq FROM peer_items ORDER BY peer, item")
    return [Mirrored(str(p), str(n), int(c), _item(b), int(s)) for p, n, c, b, s in rows]


def mirrored_versions(db: Database) -> list[Mirrored]:
    """Every (peer, item, version) any mirror held has listed, by peer, code, then version;
    ``seq`` is the newest mirror's of that peer. A window offers those the scope in force
    pins (one version per item), so items a scope pins to several of the peer's versions
    are each offered from their own release."""
    rows = db.conn.execute(
        "SELECT v.peer, m.name, v.cat, v.body, m.seq FROM peer_item_versions v"
        " JOIN peer_mirrors m ON m.peer = v.peer ORDER BY v.peer, v.item, v.cat"
    )
    return [Mirrored(str(p), str(n), int(c), _item(b), int(s)) for p, n, c, b, s in rows]


def mirrored_item(db: Database, peer: str, code: str, cat: int) -> Item | None:
    """The peer's item ``code`` of its catalog ``cat``, if any mirror held has listed it."""
    row = db.conn.execute(
        "SELECT body FROM peer_item_versions WHERE peer = ? AND item = ? AND cat = ?", (peer, code, cat)
    ).fetchone()
    return _item(row[0]) if row else None


def check_peer_intake(db: Database, intake: Intake) -> None:
    """Refuse an intake of another city's item (``owner`` set) that no mirror held lists at
    its version, or that is not a 代收代办 case our central carries (``E_PEER_SCOPE``)."""
    anchor = anchor_of(db)
    central = anchor.origin if anchor else ""
    owner = intake.owner or ""
    if intake.mode is not Mode.PROXY or intake.decider != central or intake.grant is not None:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE, f"{intake.case}: another city's item is a proxy case {central} carries"
        )
    if mirrored_item(db, owner, intake.item, intake.cat) is None:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE, f"{intake.case}: {intake.item}:{intake.cat} of {owner} is not mirrored here"
        )


def peer_names(db: Database) -> dict[str, str]:
    """The name of every peer city mirrored, by net (screens show 上海市青浦区, not cn-310118)."""
    return {str(p): str(n) for p, n in db.conn.execute("SELECT peer, name FROM peer_mirrors")}


PEER_ITEM_TABLES = (
    """
    CREATE TABLE peer_mirrors (
        peer TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        cat INTEGER NOT NULL,
        release BLOB NOT NULL,
        record_id BLOB NOT NULL,
        seq INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE peer_items (
        peer TEXT NOT NULL,
        item TEXT NOT NULL,
        cat INTEGER NOT NULL,
        body BLOB NOT NULL,
        name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (peer, item)
    )
    """,
    """
    CREATE TABLE peer_item_versions (
        peer TEXT NOT NULL,
        item TEXT NOT NULL,
        cat INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (peer, item, cat)
    )
    """,
)
"""Migration ``log/0015_peer_items``."""
