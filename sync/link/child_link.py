"""The child's side of its link: what a session takes from its store and gives it.

:class:`ChildLink` implements :class:`sync.link.session.ChildStore` over the link's reads
and writes (:class:`sync.link.store.LinkStore`, which runs every statement): the heads its
HELLO names, the up phase's batches, each down batch committed in one transaction with the
rejection counters it moves, and the link's status for the operator
(:func:`sync.link.store.link_state`).

The up phase sends what the parent lacks **by id** (:mod:`sync.link.agreement`), in this
order:

1. the root's records after the parent's root head, when the child holds more of the root's
   chain than the parent and agrees with it (a central rebuilt from the network, a relay
   behind): central's own records, checked with central's keys;
2. probes: the child's record at each seq where the parent's head names another id (fork
   evidence for the parent);
3. the arrivals after the parent's up checkpoint, skipping what the parent's heads show it
   holds;
4. after every ACK: any seq the parent's heads still lack; and for the child's own origin,
   when the parent's head is not one of its records (a stolen key signed there, or a fork),
   its records after the last seq the parent witnessed in a receipt — so the parent sees
   the conflicting records and keeps them as evidence;
5. the fork evidence this store holds for the root's chain and its subtree's, both records
   of each fork, until this parent has acknowledged them in a session that ended well: so
   every fork in the city reaches central.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sync.link import agreement
from sync.link.file_link import FileLink
from sync.link.flow import BARRIER, Batch, Committed, apart, batches, scanned
from sync.link.protocol import Phase
from sync.link.session import Summary
from sync.link.store import (
    LinkStore,
    evidence_delivered,
    note_evidence,
    parent_view_values,
    set_state,
)
from sync.record import kinds
from sync.record.db import transaction
from sync.record.filestore import FileStore
from sync.record.forks import forks
from sync.record.log import RecordLog
from sync.record.outcome import Heads
from sync.record.verify import SERIAL, Verifier


class ChildLink(LinkStore):
    """The child's side of its link to its parent (or to central, directly or as fallback).

    ``signed`` says how far this store has signed its own chain (its watermark, 0: not
    known): a record of its own origin beyond that, coming down, is someone else's.
    """

    def __init__(
        self,
        log: RecordLog,
        code: str,
        cert_id: bytes,
        verifier: Verifier = SERIAL,
        signed: Callable[[], int] | None = None,
        files: FileStore | None = None,
        files_budget: int = 0,
    ) -> None:
        super().__init__(log, code, verifier)
        self.cert_id = cert_id
        self.files = files
        self.files_budget = files_budget
        self.mine = self.origins_within(code)
        self.signed = signed
        self.parent = ""
        self.evidence_sent: list[bytes] = []

    def hello_heads(self) -> Heads:
        return self.heads_of(self.mine)

    def backlog(self) -> int:
        """Records of this node's subtree the parent lacks by id (status reports not counted)."""
        return agreement.waiting_up(self.db, self.code, exclude=(kinds.NODE_STATUS,))

    def up_batches(self, up_from: int, parent: str, parent_heads: Heads) -> Iterator[Batch]:
        """What the parent lacks, in the order of the module docstring."""
        self.parent = parent
        subtree = {o for o in self.mine if o != self.root}
        root_from = self._root_behind(parent_heads)
        if root_from is not None:
            yield from apart(iter(self.chain_after(self.root, root_from)))
        probes = self.probes(parent_heads, sorted(subtree | {self.root}))
        if probes:
            yield from apart(iter(probes))
        if up_from > self.arrivals():
            up_from = 0  # a checkpoint from a longer log than this one: not ours
        last = up_from
        while True:
            rows = self.arrived_after(last)
            if not rows:
                break
            last = rows[-1][0]
            wanted = [
                (arrival, bytes(envelope))
                for arrival, origin, seq, envelope in rows
                if origin in subtree and seq > parent_heads.get(origin, (0, b""))[0]
            ]
            yield from batches(iter(wanted))
            yield scanned(last)
        yield BARRIER
        for origin in sorted(subtree):
            have = parent_heads.get(origin, (0, b""))[0]
            if origin == self.code and agreement.disagrees(self.db, origin, parent_heads):
                have = min(have, agreement.witnessed(self.db, origin, parent))
            yield from batches(iter(self.chain_after(origin, have)))
        yield from apart(iter(self._evidence(parent, subtree | {self.root})))

    def _root_behind(self, parent_heads: Heads) -> int | None:
        """The parent's root head seq when this store holds more of the root's chain and
        the parent's head is in it; else None (nothing of the root to send)."""
        if self.root not in parent_heads:
            return None
        seq = parent_heads[self.root][0]
        if seq >= self.root_seq() or agreement.disagrees(self.db, self.root, parent_heads):
            return None
        return seq

    def _evidence(self, parent: str, origins: set[str]) -> list[tuple[int, bytes]]:
        """Both records of each fork of ``origins`` this store holds evidence of, not yet
        acknowledged by ``parent``, lowest seq first (the parent freezes from the first)."""
        delivered = evidence_delivered(self.db, parent)
        out: list[tuple[int, bytes]] = []
        for fork in forks(self.db):
            if fork.origin not in origins or fork.other_id in delivered:
                continue
            if fork.held_envelope is not None:
                out.append((0, fork.held_envelope))
            out.append((0, fork.other_envelope))
            self.evidence_sent.append(fork.other_id)
        return out

    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed:
        through = self.signed() if self.signed is not None else 0
        signed = (self.code, through) if through else None
        with transaction(self.db):
            done = self.commit_batch(records, source, signed=signed)
            if done.codes:
                self.count_rejections(source, done.codes)
        return done

    def note(self, event: str, **values: Any) -> None:
        """Keep the link's status for the operator (and the clerk UI's sync line), and the
        parent's heads as the session leaves them (what the parent lacks is counted from
        them, :func:`sync.link.agreement.waiting_up`)."""
        now = self.log.clock.now()
        view = parent_view_values(values["parent"], values["heads"]) if "heads" in values else {}
        if event == "welcome":
            self.set_state(last_attempt=now, down_pending=values["pending"], **view)
        elif event == "up acked":
            self.set_state(up_acked=values["upto"], **view)
        elif event == "down done":
            self.set_state(down_pending=0)
        elif event == "done":
            summary: Summary = values["summary"]
            self.set_state(
                last_ok=now,
                last_error="",
                up_acked=self.arrivals_acked(),
                last_summary=_text(summary),
                **view,
            )
            if self.evidence_sent and self.parent:
                note_evidence(self.db, self.parent, self.evidence_sent, now)

    def file_link(self, peer: str) -> FileLink:
        """The files phase's view of this store: its own subtree's cases' files."""
        return FileLink(self.log, self.files, self.code, peer, self.count_rejections, self.files_budget)

    def arrivals_acked(self) -> int:
        return self.arrivals()

    def set_state(self, **values: Any) -> None:
        set_state(self.db, values)


def _text(summary: Summary) -> str:
    rejected = ",".join(f"{code}:{n}" for code, n in sorted(summary.rejected.items()))
    return (
        f"up={summary.up} down={summary.down} rejected={rejected or '-'}"
        f" files_up={summary.files_up} files_down={summary.files_down}"
        f" file_bytes_sent={summary.file_bytes_sent} file_bytes_received={summary.file_bytes_received}"
    )
