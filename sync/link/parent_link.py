"""The parent's side of its links: what it tells and sends each child, and what it keeps.

:class:`ParentLink` implements :class:`sync.link.session.ParentStore` over the link's reads
and writes (:class:`sync.link.store.LinkStore`, which runs every statement): the heads of
its WELCOME, the revocations phase (the root's chain), the down phase (what concerns the
child, :class:`sync.link.scopes.Concerns`), the checkpoints of both directions (why they
are the parent's: :mod:`sync.link.store`), the receipts it signs and what each child last
reported.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator

from core.admin import within
from core.errors import ErrorCode, TongbanError
from sync.link.file_link import FileLink
from sync.link.flow import Batch, Committed, apart, batches, scanned
from sync.link.protocol import BATCH_RECORDS
from sync.link.scopes import Concerns
from sync.link.store import LinkStore
from sync.record import kinds
from sync.record.db import transaction
from sync.record.envelope import Signer
from sync.record.filestore import FileStore
from sync.record.log import RecordLog, dense_for
from sync.record.outcome import Heads
from sync.record.verify import SERIAL, Verifier

log = logging.getLogger(__name__)

UNSIGNED = frozenset({ErrorCode.CENTRAL_REBUILDING, ErrorCode.CHAIN_BEHIND, ErrorCode.CHAIN_FORK})
"""Why a parent may sign no receipt now; the session goes on without one."""


class ParentLink(LinkStore):
    """The parent's side: what it tells and sends a child, and what it keeps of the link."""

    def __init__(
        self,
        log: RecordLog,
        code: str,
        signer: Signer | None = None,
        verifier: Verifier = SERIAL,
        files: FileStore | None = None,
        files_budget: int = 0,
    ) -> None:
        super().__init__(log, code, verifier)
        self.signer = signer
        self.files = files
        self.files_budget = files_budget
        self._concerns = Concerns(self.root, self.envelope_at)

    def welcome_heads(self, child: str) -> Heads:
        return self.heads_of(self.origins_within(child))

    def up_checkpoint(self, child: str, cert: bytes, arrivals: int) -> int:
        stored = self.checkpoint(child, cert, "up")
        return stored if stored <= arrivals else 0

    def pending(self, child: str, cert: bytes) -> int:
        return max(0, self.arrivals() - self.checkpoint(child, cert, "down"))

    def rev_batches(self, child: str, child_heads: Heads) -> Iterator[Batch]:
        """The root's chain the child lacks, whole: every revocation, catalog release, key
        and root grant central signed reaches the child before anything else moves.

        First, when this store holds another record of the root at the child's root head
        seq, that record: a fork of the root, which the child keeps as evidence (and then
        takes nothing more of the root from there on). When the child holds more of the
        root's chain than this store, this store's head, for the child to compare (the
        child's up phase sends the rest up, or its own record there as evidence)."""
        probes = self.probes(child_heads, [self.root])
        have = child_heads.get(self.root, (0, b""))[0]
        if have > self.root_seq():
            head = self.record_at(self.root, self.root_seq())
            probes += [(head[0], head[2])] if head is not None else []
        if probes:
            yield from apart(iter(probes))
        while True:
            rows = self.chain_page(self.root, have)
            if not rows:
                return
            have = rows[-1][0]
            yield from batches((a, bytes(e)) for _, a, e in rows)

    def down_batches(
        self, child: str, cert: bytes, child_heads: Heads, hello_heads: Heads
    ) -> Iterator[Batch]:
        """Fork probes; the chains of the child's subtree this store holds further than the
        child (:meth:`_chains_back`); then the arrivals after the checkpoint that concern
        ``child`` (``child_heads`` as they are now; ``hello_heads`` as the hello told them)."""
        last = self.checkpoint(child, cert, "down")
        origins = self.origins_within(child)
        probes = self.probes(child_heads, origins)
        if probes:
            yield from apart(iter(probes))
        sent: dict[str, int] = {}
        for origin, through, back in self._chains_back(child_heads, origins):
            sent[origin] = through
            yield from apart(iter(back))
        if last > self.arrivals() or self._regressed(child, cert, hello_heads):
            # Not to be trusted: a checkpoint from a longer log than this one (a store
            # restored from a copy), or a child that held less at its hello than it did
            # (the revocations phase has moved its root since). Scan from the start and
            # let the ACKs set it anew; kept, it would skip what arrives below it.
            last = 0
            with transaction(self.db):
                self.advance(child, cert, "down", 0, rewind=True)
        child_dense = functools.cache(dense_for(child, self.root))
        while True:
            # The scan reads no envelopes: a parent serves many children at once, and each
            # session's scan waits on its child's ACKs. Only what is sent is read, a batch
            # at a time.
            rows = self.columns_after(last)
            if not rows:
                break
            last = rows[-1][0]
            wanted = [
                arrival
                for arrival, origin, seq, kind in rows
                if not (
                    child_dense(origin)
                    and seq <= max(child_heads.get(origin, (0, b""))[0], sent.get(origin, 0))
                )
                and self._concerns(origin, kind, arrival, child)
            ]
            yield from batches(self._envelopes(wanted))
            yield scanned(last)

    def _chains_back(
        self, child_heads: Heads, origins: list[str]
    ) -> Iterator[tuple[str, int, list[tuple[int, bytes]]]]:
        """For each origin of the child's subtree whose chain this store holds further than
        the child, agreeing with the child's head: (origin, the seq sent through, the records
        after the child's head, in seq order). The child's own among them: a store restored
        from an older copy gets back what it signed since."""
        heads = self.heads_of([o for o in origins if o != self.root])
        for origin, (seq, _) in heads.items():
            have, rid = child_heads.get(origin, (0, b""))
            if seq <= have:
                continue
            if have:
                held = self.record_at(origin, have)
                if held is None or held[1] != rid:
                    continue  # another record at the child's head: a fork, not a chain to give back
            yield origin, seq, self.chain_after(origin, have)

    def _envelopes(self, arrivals: list[int]) -> Iterator[tuple[int, bytes]]:
        """(arrival, envelope) of ``arrivals`` (ascending), read a batch's worth at a time."""
        for start in range(0, len(arrivals), BATCH_RECORDS):
            yield from self.envelopes_at(arrivals[start : start + BATCH_RECORDS])

    def _regressed(self, child: str, cert: bytes, child_heads: Heads) -> bool:
        """Whether the child now holds less of the root than it once reported (a store
        restored from a copy): then the down checkpoint is not to be trusted."""
        before = self.reported_heads(child, cert)
        if before is None:
            return False
        return child_heads.get(self.root, (0, b""))[0] < before.get(self.root, 0)

    def commit_up(self, child: str, cert: bytes, records: list[bytes], upto: int) -> Committed:
        with transaction(self.db):
            # A child sends up what its subtree authored, and the root's records this store
            # lacks (central's own, checked with central's keys: a central rebuilt from the
            # network gets them so), and nothing else.
            def admit(origin: str) -> bool:
                return origin == self.root or within(origin, child)

            done = self.commit_batch(records, child, admit=admit)
            self.advance(child, cert, "up", upto)
            if done.codes:
                self.count_rejections(child, done.codes)
        return done

    def down_acked(self, child: str, cert: bytes, upto: int) -> None:
        with transaction(self.db):
            self.advance(child, cert, "down", upto)

    def receipt(self, child: str, cert: bytes) -> bytes | None:
        """Sign the child's head as this store now holds it, if it moved since the last receipt."""
        if self.signer is None:
            return None
        head = self.log.head(child)
        if head is None:
            return None
        covered = self.receipt_seq(child)
        if covered is not None and covered >= head.seq:
            return None
        try:
            with transaction(self.db):
                record = self.log.append_local(
                    self.signer,
                    self.code,
                    kinds.LINK_RECEIPT,
                    {"child": child, "seq": head.seq, "id": head.id, "at": self.log.clock.now()},
                    actor="sys:sync",
                )
                self.note_receipt(child, cert, head.seq)
        except TongbanError as exc:
            if exc.code not in UNSIGNED:
                raise
            # This store signs nothing now (a central rebuilding, a store behind what it
            # signed, its own chain frozen): the session ends without a witness.
            log.info("no receipt for %s: %s", child, exc.render("en"))
            return None
        return record.envelope

    def seen(self, child: str, cert: bytes, heads: Heads) -> None:
        """Remember what the child reported at the end of a session (see :meth:`_regressed`)."""
        self.note_reported(child, cert, {origin: seq for origin, (seq, _) in heads.items()})

    def file_link(self, child: str) -> FileLink:
        """The files phase's view of this store for ``child``: its subtree's cases' files."""
        return FileLink(self.log, self.files, child, child, self.count_rejections, self.files_budget)

    def count_protocol_error(self, peer: str, code: ErrorCode) -> None:
        with transaction(self.db):
            self.count_rejections(peer, {code.value: 1})
