"""The child's side of its link: what a session takes from its store and gives it.

:class:`ChildLink` implements :class:`sync.link.session.ChildStore` over the link's reads
and writes (:class:`sync.link.store.LinkStore`, which runs every statement): the heads its
HELLO names, the up phase's batches, each down batch committed in one transaction with the
rejection counters it moves, and the link's status for the operator
(:func:`sync.link.store.link_state`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sync.link.flow import BARRIER, Batch, Committed, batches, scanned
from sync.link.protocol import Phase
from sync.link.session import Summary
from sync.link.store import LinkStore, set_state, waiting_up
from sync.record import kinds
from sync.record.db import transaction
from sync.record.log import RecordLog
from sync.record.outcome import Heads
from sync.record.verify import SERIAL, Verifier


class ChildLink(LinkStore):
    """The child's side of its link to its parent (or to central, directly or as fallback)."""

    def __init__(self, log: RecordLog, code: str, cert_id: bytes, verifier: Verifier = SERIAL) -> None:
        super().__init__(log, code, verifier)
        self.cert_id = cert_id
        self.mine = self.origins_within(code)

    def hello_heads(self) -> Heads:
        return self.heads_of(self.mine)

    def backlog(self) -> int:
        """Records of this node's subtree that wait to go up (status reports not counted)."""
        return waiting_up(self.db, self.code, exclude=(kinds.NODE_STATUS,))

    def up_batches(self, up_from: int, parent_heads: Heads) -> Iterator[Batch]:
        """Probes, then the arrival scan, then (after every ACK) what the heads still miss."""
        subtree = {o for o in self.mine if o != self.root}
        probes = self.probes(parent_heads, sorted(subtree))
        if probes:
            yield from batches(iter(probes))
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
            yield from batches(iter(self.chain_after(origin, have)))

    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed:
        with transaction(self.db):
            done = self.commit_batch(records, source)
            if done.codes:
                self.count_rejections(source, done.codes)
        return done

    def note(self, event: str, **values: Any) -> None:
        """Keep the link's status for the operator (and the clerk UI's sync line)."""
        now = self.log.clock.now()
        if event == "welcome":
            self.set_state(last_attempt=now, down_pending=values["pending"])
        elif event == "up acked":
            self.set_state(up_acked=values["upto"])
        elif event == "down done":
            self.set_state(down_pending=0)
        elif event == "done":
            summary: Summary = values["summary"]
            self.set_state(
                last_ok=now, last_error="", up_acked=self.arrivals_acked(), last_summary=_text(summary)
            )

    def arrivals_acked(self) -> int:
        return self.arrivals()

    def set_state(self, **values: Any) -> None:
        set_state(self.db, values)


def _text(summary: Summary) -> str:
    rejected = ",".join(f"{code}:{n}" for code, n in sorted(summary.rejected.items()))
    return f"up={summary.up} down={summary.down} rejected={rejected or '-'}"
