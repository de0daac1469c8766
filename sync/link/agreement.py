"""What a child and its parent agree on of each chain, by record id, and so what the parent lacks.

A seq alone says little: after a stolen key signed at the parent, or a fork, the parent's
head for an origin can be a record the child does not hold, at a seq the child has used
for another. So the child compares ids. For each origin of its subtree, the **last point
both agree on** is:

* the parent's head, when the child holds that very record (the usual case);
* for the child's own origin, when it does not: the highest seq the parent has *witnessed*
  with the child's id — the ``link.receipt`` records the parent handed over at the end of
  sessions name (seq, id) of the child's head as the parent held it (:func:`witnessed`);
* for another origin of its subtree (a town's village), when the child holds another record
  at the parent's head seq: the seq before it (the fork is at or below it); when the child
  does not hold that seq at all: the child's own head (the parent holds more; it sends
  them down, :meth:`sync.link.parent_link.ParentLink.down_batches`).

What waits to go up (the status line, a node's ``node.status`` backlog) is every record of
the subtree after that point, by origin, as of the parent's heads the last session left
(:func:`sync.link.store.parent_view`); before the first session, everything. Records a
revocation voids (a revoked key's past its cut-off) are not counted: no parent takes them.
"""

from __future__ import annotations

from sqlite_utils import Database

from core.admin import within
from sync.link import store
from sync.record import trust
from sync.record.log import decode_stored
from sync.record.outcome import Heads


def witnessed(db: Database, child: str, witness: str) -> int:
    """The highest seq of ``child``'s chain that a receipt of ``witness`` held here names
    with the id this store holds at that seq (0: none)."""
    for envelope in store.receipts_by(db, witness):
        body = decode_stored(envelope).body
        if body.get("child") == child and store.id_at(db, child, body["seq"]) == body["id"]:
            return int(body["seq"])
    return 0


def agreed(db: Database, own: str, origin: str, parent: str, heads: Heads) -> int:
    """The last seq of ``origin`` this store (of node ``own``) and ``parent`` (whose heads
    are ``heads``) agree on (see the module docstring)."""
    if origin not in heads:
        return 0
    seq, rid = heads[origin]
    mine = store.id_at(db, origin, seq)
    if mine == rid:
        return seq
    if origin == own:
        return witnessed(db, own, parent)
    return seq - 1 if mine is not None else store.head_seq(db, origin)


def disagrees(db: Database, origin: str, heads: Heads) -> bool:
    """Whether the parent's head for ``origin`` is not a record this store holds: a fork,
    a continuation signed by someone else, or a chain the parent holds more of."""
    return origin in heads and store.id_at(db, origin, heads[origin][0]) != heads[origin][1]


def waiting_up(db: Database, code: str, *, exclude: tuple[str, ...] = ()) -> int:
    """Records of ``code``'s subtree the parent lacks by id (kinds ``exclude`` left out)."""
    view = store.parent_view(db)
    total = 0
    for origin in sorted({code} | {c for c in trust.certified_codes(db) if within(c, code)}):
        after = agreed(db, code, origin, *view) if view is not None else 0
        void = tuple(
            (cert.kid, cert.last_good_seq)
            for cert in trust.certificates(db, origin)
            if cert.revoked and cert.last_good_seq is not None
        )
        total += store.count_after(db, origin, after, exclude=exclude, void=void)
    return total
