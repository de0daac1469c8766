"""The parent's side of its links, over its store: what it tells and sends each child,
and what it keeps of the link.

:class:`ParentLink` implements :class:`sync.link.session.ParentStore`. The checkpoints of
both directions are kept here, in ``link_checkpoints`` (why: :mod:`sync.link.store`); what
a child last reported and the receipts signed for it in ``link_peers``. The down scan sends
what concerns the child (:class:`sync.link.scopes.Concerns`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from core.admin import within
from core.errors import ErrorCode
from sync.link.flow import Batch, Committed, batches, scanned
from sync.link.protocol import BATCH_RECORDS
from sync.link.scopes import Concerns
from sync.link.store import SCAN_ROWS, LinkStore
from sync.record import codec, kinds
from sync.record.db import transaction
from sync.record.envelope import Signer
from sync.record.log import RecordLog, dense_for
from sync.record.outcome import Heads
from sync.record.verify import SERIAL, Verifier


class ParentLink(LinkStore):
    """The parent's side: what it tells and sends a child, and what it keeps of the link."""

    def __init__(
        self, log: RecordLog, code: str, signer: Signer | None = None, verifier: Verifier = SERIAL
    ) -> None:
        super().__init__(log, code, verifier)
        self.signer = signer
        self._concerns = Concerns(self.root, self.envelope_at)

    def welcome_heads(self, child: str) -> Heads:
        return self.heads_of(self.origins_within(child))

    def _checkpoint(self, child: str, cert: bytes, direction: str) -> int:
        row = self.conn.execute(
            "SELECT arrival FROM link_checkpoints WHERE peer = ? AND cert = ? AND direction = ?",
            (child, cert, direction),
        ).fetchone()
        return int(row[0]) if row else 0

    def _advance(
        self, child: str, cert: bytes, direction: str, arrival: int, *, rewind: bool = False
    ) -> None:
        keep = "excluded.arrival" if rewind else "max(arrival, excluded.arrival)"
        self.conn.execute(
            "INSERT INTO link_checkpoints (peer, cert, direction, arrival, updated_at) VALUES (?, ?, ?, ?, ?)"
            f" ON CONFLICT (peer, cert, direction) DO UPDATE SET arrival = {keep},"
            " updated_at = excluded.updated_at",
            (child, cert, direction, arrival, self.log.clock.now()),
        )

    def up_checkpoint(self, child: str, cert: bytes, arrivals: int) -> int:
        stored = self._checkpoint(child, cert, "up")
        return stored if stored <= arrivals else 0

    def pending(self, child: str, cert: bytes) -> int:
        return max(0, self.arrivals() - self._checkpoint(child, cert, "down"))

    def rev_batches(self, child: str, child_heads: Heads) -> Iterator[Batch]:
        """The root's chain the child lacks, whole: every revocation, catalog release, key
        and root grant central signed reaches the child before anything else moves."""
        have = child_heads.get(self.root, (0, b""))[0]
        while True:
            rows = self.conn.execute(
                "SELECT seq, arrival, envelope FROM records WHERE origin = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (self.root, have, SCAN_ROWS),
            ).fetchall()
            if not rows:
                return
            have = rows[-1][0]
            yield from batches((a, bytes(e)) for _, a, e in rows)

    def down_batches(
        self, child: str, cert: bytes, child_heads: Heads, hello_heads: Heads
    ) -> Iterator[Batch]:
        """Fork probes, then the arrivals after the checkpoint that concern ``child``
        (``child_heads`` as they are now; ``hello_heads`` as the hello told them)."""
        probes = self.probes(child_heads, self.origins_within(child))
        if probes:
            yield from batches(iter(probes))
        last = self._checkpoint(child, cert, "down")
        if last > self.arrivals() or self._regressed(child, cert, hello_heads):
            # Not to be trusted: a checkpoint from a longer log than this one (a store
            # restored from a copy), or a child that held less at its hello than it did
            # (the revocations phase has moved its root since). Scan from the start and
            # let the ACKs set it anew; kept, it would skip what arrives below it.
            last = 0
            with transaction(self.db):
                self._advance(child, cert, "down", 0, rewind=True)
        child_dense = functools.cache(dense_for(child, self.root))
        while True:
            # The scan reads no envelopes: a parent serves many children at once, and each
            # session's scan waits on its child's ACKs. Only what is sent is read, a batch
            # at a time.
            rows = self.conn.execute(
                "SELECT arrival, origin, seq, kind FROM records WHERE arrival > ? ORDER BY arrival LIMIT ?",
                (last, SCAN_ROWS),
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            wanted = [
                arrival
                for arrival, origin, seq, kind in rows
                if not (child_dense(origin) and seq <= child_heads.get(origin, (0, b""))[0])
                and self._concerns(origin, kind, arrival, child)
            ]
            yield from batches(self._envelopes(wanted))
            yield scanned(last)

    def _envelopes(self, arrivals: list[int]) -> Iterator[tuple[int, bytes]]:
        """(arrival, envelope) of ``arrivals`` (ascending), read a batch's worth at a time."""
        for start in range(0, len(arrivals), BATCH_RECORDS):
            part = arrivals[start : start + BATCH_RECORDS]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT arrival, envelope FROM records WHERE arrival IN ({marks}) ORDER BY arrival", part
            ).fetchall()
            yield from ((arrival, bytes(envelope)) for arrival, envelope in rows)

    def _regressed(self, child: str, cert: bytes, child_heads: Heads) -> bool:
        """Whether the child now holds less of the root than it once reported (a store
        restored from a copy): then the down checkpoint is not to be trusted."""
        row = self.conn.execute(
            "SELECT heads FROM link_peers WHERE peer = ? AND cert = ?", (child, cert)
        ).fetchone()
        if row is None:
            return False
        before = codec.decode(bytes(row[0]))
        root_before = before.get(self.root, 0)
        return bool(child_heads.get(self.root, (0, b""))[0] < root_before)

    def commit_up(self, child: str, cert: bytes, records: list[bytes], upto: int) -> Committed:
        with transaction(self.db):
            # A child sends up what its subtree authored, and nothing else.
            done = self.commit_batch(records, child, admit=lambda origin: within(origin, child))
            self._advance(child, cert, "up", upto)
            if done.codes:
                self.count_rejections(child, done.codes)
        return done

    def down_acked(self, child: str, cert: bytes, upto: int) -> None:
        with transaction(self.db):
            self._advance(child, cert, "down", upto)

    def receipt(self, child: str, cert: bytes) -> bytes | None:
        """Sign the child's head as this store now holds it, if it moved since the last receipt."""
        if self.signer is None:
            return None
        head = self.log.head(child)
        if head is None:
            return None
        row = self.conn.execute("SELECT max(receipt_seq) FROM link_peers WHERE peer = ?", (child,)).fetchone()
        if row[0] is not None and row[0] >= head.seq:
            return None
        with transaction(self.db):
            record = self.log.append_local(
                self.signer,
                self.code,
                kinds.LINK_RECEIPT,
                {"child": child, "seq": head.seq, "id": head.id, "at": self.log.clock.now()},
                actor="sys:sync",
            )
            self.conn.execute(
                "INSERT INTO link_peers (peer, cert, heads, last_seen, receipt_seq) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (peer, cert) DO UPDATE SET receipt_seq = excluded.receipt_seq",
                (child, cert, codec.encode({}), self.log.clock.now(), head.seq),
            )
        return record.envelope

    def seen(self, child: str, cert: bytes, heads: Heads) -> None:
        """Remember what the child reported at the end of a session (see :meth:`_regressed`)."""
        compact = {origin: seq for origin, (seq, _) in heads.items()}
        with transaction(self.db):
            self.conn.execute(
                "INSERT INTO link_peers (peer, cert, heads, last_seen) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (peer, cert) DO UPDATE SET heads = excluded.heads,"
                " last_seen = excluded.last_seen",
                (child, cert, codec.encode(compact), self.log.clock.now()),
            )

    def count_protocol_error(self, peer: str, code: ErrorCode) -> None:
        with transaction(self.db):
            self.count_rejections(peer, {code.value: 1})
