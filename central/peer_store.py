"""Central's table of peer proposals: an agreement proposed, not yet confirmed.

``peer_proposals``: one row per peer city (its net): the name and root key the operator
entered, the scope and validity proposed, when. ``tongban central peer confirm`` turns a
row into central's first cross-certification of that city and removes it
(:mod:`central.peers`); until then nothing of the peer is a record, and no node knows of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlite_utils import Database

from core.federation import Scope


@dataclass(frozen=True)
class Proposal:
    """A row of ``peer_proposals``."""

    peer: str
    name: str
    root_pk: bytes
    scope: Scope
    valid_days: int
    proposed_at: int


def propose(db: Database, proposal: Proposal) -> None:
    """Keep ``proposal``, replacing an earlier one for the same peer."""
    db.conn.execute(
        "INSERT OR REPLACE INTO peer_proposals (peer, name, root_pk, scope, valid_days, proposed_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            proposal.peer,
            proposal.name,
            proposal.root_pk,
            json.dumps(proposal.scope.to_body(), sort_keys=True, ensure_ascii=False),
            proposal.valid_days,
            proposal.proposed_at,
        ),
    )


def proposal_of(db: Database, peer: str) -> Proposal | None:
    row = db.conn.execute(
        "SELECT peer, name, root_pk, scope, valid_days, proposed_at FROM peer_proposals WHERE peer = ?",
        (peer,),
    ).fetchone()
    if row is None:
        return None
    net, name, root_pk, scope, valid_days, at = row
    return Proposal(
        str(net), str(name), bytes(root_pk), Scope.from_body(json.loads(scope)), int(valid_days), int(at)
    )


def proposals(db: Database) -> list[Proposal]:
    rows = db.conn.execute("SELECT peer FROM peer_proposals ORDER BY peer").fetchall()
    return [p for (peer,) in rows if (p := proposal_of(db, str(peer))) is not None]


def drop(db: Database, peer: str) -> None:
    db.conn.execute("DELETE FROM peer_proposals WHERE peer = ?", (peer,))


PROPOSAL_TABLES = (
    """
    CREATE TABLE peer_proposals (
        peer TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        root_pk BLOB NOT NULL,
        scope TEXT NOT NULL,
        valid_days INTEGER NOT NULL,
        proposed_at INTEGER NOT NULL
    )
    """,
)
"""Migration ``central/0008_peer_proposals``."""
