"""The node's own tables for the window's paperwork and news (not records: nothing here is
signed or travels).

``papers``
    the numbered papers a clerk gives a resident when no case exists to carry them: the
    one-time notice of missing materials (一次性告知书, kind ``notice``) and the notice of
    refusal to accept (不予受理通知书, kind ``refusal``). Numbered per node, kind and year
    (``330481104201-GZ-2026-0007``), with what the paper said, so the center can show
    which notice a resident was given.
``sms_outbox``
    the messages for residents (a decision or a supplement came back for their case),
    one per case event, waiting for the gateway or sent (:mod:`node.sms`).
``clerk_looks``
    per clerk, the arrival index of the newest record she had seen on her home page: what
    came back since is listed as new (:meth:`node.desk.Desk.news`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from sync.record.db import transaction

WINDOW_TABLES = (
    """
    CREATE TABLE papers (
        number TEXT PRIMARY KEY, kind TEXT NOT NULL, year INTEGER NOT NULL, serial INTEGER NOT NULL,
        issued_at INTEGER NOT NULL, actor TEXT NOT NULL, item TEXT NOT NULL, name TEXT NOT NULL,
        doc_no TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (kind, year, serial)
    )
    """,
    """
    CREATE TABLE sms_outbox (
        event_id BLOB PRIMARY KEY, case_no TEXT NOT NULL, phone TEXT NOT NULL, text TEXT NOT NULL,
        queued_at INTEGER NOT NULL, sent_at INTEGER, tries INTEGER NOT NULL DEFAULT 0, error TEXT
    )
    """,
    "CREATE INDEX sms_outbox_waiting ON sms_outbox (sent_at, queued_at)",
    "CREATE TABLE clerk_looks (user TEXT PRIMARY KEY, arrival INTEGER NOT NULL, at INTEGER NOT NULL)",
)
"""Migration ``node/0004_window`` (:mod:`node.store`)."""

PAPER_PREFIX = {"notice": "GZ", "refusal": "BSL"}
"""The letters of each kind's number: 告知, 不受理."""


@dataclass(frozen=True)
class Paper:
    number: str
    kind: str
    issued_at: int
    actor: str
    item: str
    name: str
    doc_no: str
    body: dict[str, Any]


def issue_paper(
    db: Database, node: str, kind: str, year: int, now: int, actor: str, item: str, name: str, doc_no: str,
    body: dict[str, Any],
) -> Paper:  # fmt: skip
    """Number and keep a paper of ``kind`` issued at ``now`` (in ``year``, local)."""
    with transaction(db):
        row = db.conn.execute(
            "SELECT coalesce(max(serial), 0) + 1 FROM papers WHERE kind = ? AND year = ?", (kind, year)
        ).fetchone()
        serial = int(row[0])
        number = f"{node}-{PAPER_PREFIX[kind]}-{year}-{serial:04d}"
        db.conn.execute(
            "INSERT INTO papers (number, kind, year, serial, issued_at, actor, item, name, doc_no, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                kind,
                year,
                serial,
                now,
                actor,
                item,
                name,
                doc_no,
                json.dumps(body, ensure_ascii=False),
            ),
        )
    return Paper(number, kind, now, actor, item, name, doc_no, body)


def paper(db: Database, number: str) -> Paper | None:
    row = db.conn.execute(
        "SELECT number, kind, issued_at, actor, item, name, doc_no, body FROM papers WHERE number = ?",
        (number,),
    ).fetchone()
    return _paper(row) if row is not None else None


def papers_of(db: Database, doc_no: str) -> list[Paper]:
    """The papers given to the holder of ``doc_no``, newest first."""
    rows = db.conn.execute(
        "SELECT number, kind, issued_at, actor, item, name, doc_no, body FROM papers WHERE doc_no = ?"
        " ORDER BY issued_at DESC",
        (doc_no,),
    ).fetchall()
    return [_paper(r) for r in rows]


def _paper(row: tuple[Any, ...]) -> Paper:
    number, kind, issued_at, actor, item, name, doc_no, body = row
    return Paper(number, kind, issued_at, actor, item, name, doc_no, json.loads(body))


# -- the SMS outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    event_id: bytes
    case_no: str
    phone: str
    text: str
    queued_at: int
    sent_at: int | None
    tries: int
    error: str | None


def queue_message(db: Database, event_id: bytes, case_no: str, phone: str, text: str, now: int) -> bool:
    """Put the message for one case event in the outbox (once: False if it was there)."""
    with transaction(db):
        cur = db.conn.execute(
            "INSERT OR IGNORE INTO sms_outbox (event_id, case_no, phone, text, queued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (event_id, case_no, phone, text, now),
        )
        return cur.rowcount > 0


def queued(db: Database, event_ids: list[bytes]) -> set[bytes]:
    """Which of ``event_ids`` have a message in the outbox already."""
    if not event_ids:
        return set()
    marks = ",".join("?" * len(event_ids))
    rows = db.conn.execute(f"SELECT event_id FROM sms_outbox WHERE event_id IN ({marks})", event_ids)
    return {bytes(r[0]) for r in rows}


def waiting_messages(db: Database, limit: int = 50) -> list[Message]:
    """Messages not sent yet, oldest first."""
    rows = db.conn.execute(
        "SELECT event_id, case_no, phone, text, queued_at, sent_at, tries, error FROM sms_outbox"
        " WHERE sent_at IS NULL ORDER BY queued_at LIMIT ?",
        (limit,),
    ).fetchall()
    return [Message(bytes(r[0]), *r[1:]) for r in rows]


def messages_of(db: Database, case_no: str) -> list[Message]:
    rows = db.conn.execute(
        "SELECT event_id, case_no, phone, text, queued_at, sent_at, tries, error FROM sms_outbox"
        " WHERE case_no = ? ORDER BY queued_at",
        (case_no,),
    ).fetchall()
    return [Message(bytes(r[0]), *r[1:]) for r in rows]


def mark_sent(db: Database, event_id: bytes, now: int, error: str | None) -> None:
    """One try of a message: sent at ``now``, or failed with ``error`` (it stays waiting)."""
    with transaction(db):
        db.conn.execute(
            "UPDATE sms_outbox SET tries = tries + 1, error = ?, sent_at = ? WHERE event_id = ?",
            (error, None if error else now, event_id),
        )


# -- what a clerk has seen ----------------------------------------------------------------------


def last_look(db: Database, user: str) -> int | None:
    """The arrival index ``user`` had seen up to on her home page, if she ever looked."""
    row = db.conn.execute("SELECT arrival FROM clerk_looks WHERE user = ?", (user,)).fetchone()
    return int(row[0]) if row else None


def note_look(db: Database, user: str, arrival: int, now: int) -> None:
    with transaction(db):
        db.conn.execute(
            "INSERT INTO clerk_looks (user, arrival, at) VALUES (?, ?, ?)"
            " ON CONFLICT (user) DO UPDATE SET arrival = max(arrival, excluded.arrival), at = excluded.at",
            (user, arrival, now),
        )
