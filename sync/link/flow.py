"""Credit-based flow of batches on a link, shared by both sides of a session.

A sender streams batches from a source under credit — at most ``credit`` batches
unacknowledged (the ZeroMQ Guide's credit-based flow control) — and a receiver checks that
batches come in order and within the credit. A batch source is an iterator of
:class:`Batch`: a batch of records with the arrival index it was scanned up to,
:data:`BARRIER` (wait for every ACK before asking for more), or :func:`scanned` (the scan
went through an arrival, nothing to send). Records sent apart from the scan go in batches
of :func:`apart`, which move no checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from core.errors import ErrorCode, SyncError
from sync.link.protocol import BATCH_BYTES, BATCH_RECORDS, Message, Phase, Type
from sync.record.outcome import Heads


@dataclass(frozen=True)
class Committed:
    """What a receiver did with one batch: its counts and codes, its heads after (what an
    ACK reports), and the newest record of each origin in the batch it now holds (the
    sender holds it too: what the sender holds at least, by origin)."""

    counts: dict[str, int]
    codes: dict[str, int]
    heads: Heads
    again: int = 0  # of the refused, those refused before (the same bytes, the same code)
    held: Heads = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    records: list[bytes]
    upto: int


BARRIER = Batch([], -1)
"""Yielded by a batch source: wait for every ACK before asking for more."""


def scanned(upto: int) -> Batch:
    """Yielded last by a batch source: the scan went through arrival ``upto``."""
    return Batch([], upto)


class Sender:
    """Batches from a source under credit: what is in flight, what was acknowledged."""

    def __init__(self, phase: Phase, source: Iterator[Batch], credit: int, version: int) -> None:
        self.phase = phase
        self.source = source
        self.credit = credit
        self.version = version
        self.sent = 0
        self.acked = 0
        self.uptos: dict[int, int] = {}
        self.scanned = 0
        self.exhausted = False
        self._waiting = False

    def fill(self) -> list[Message]:
        out: list[Message] = []
        while not self.exhausted and self.sent - self.acked < self.credit:
            if self._waiting:
                if self.sent > self.acked:
                    break
                self._waiting = False
            batch = next(self.source, None)
            if batch is None:
                self.exhausted = True
                break
            if batch is BARRIER:
                self._waiting = True
                continue
            if not batch.records:
                self.scanned = max(self.scanned, batch.upto)
                continue
            self.sent += 1
            self.uptos[self.sent] = batch.upto
            body = {
                "phase": self.phase.value,
                "n": self.sent,
                "acked": self.acked,
                "records": batch.records,
                "upto": batch.upto,
            }
            out.append(Message(Type.BATCH, body, self.version))
        return out

    def on_ack(self, body: dict[str, Any]) -> int:
        """Check an ACK against what is in flight; the ``upto`` it acknowledges."""
        if body["n"] != self.acked + 1 or body["n"] > self.sent:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"ACK {body['n']} after {self.acked} of {self.sent}")
        self.acked += 1
        return self.uptos.pop(self.acked)

    @property
    def finished(self) -> bool:
        return self.exhausted and self.acked == self.sent


class Receiver:
    """Checks incoming batches: order, phase and credit."""

    def __init__(self, credit: int) -> None:
        self.credit = credit
        self.received = 0

    def check(self, body: dict[str, Any]) -> None:
        n, acked = body["n"], body["acked"]
        if n != self.received + 1:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"batch {n} after {self.received}")
        if acked > self.received or n - acked > self.credit:
            raise SyncError(
                ErrorCode.SYNC_CREDIT, f"batch {n} with {acked} acknowledged, credit {self.credit}"
            )
        self.received = n


def apart(rows: Iterator[tuple[int, bytes]]) -> Iterator[Batch]:
    """:func:`batches` of records sent apart from the arrival scan (probes, chains sent
    whole): their ``upto`` is 0, so that acknowledging them moves no checkpoint past
    arrivals the scan has not sent yet."""
    for batch in batches(rows):
        yield Batch(batch.records, 0)


def batches(rows: Iterator[tuple[int, bytes]]) -> Iterator[Batch]:
    """Group (arrival, envelope) rows into batches by count and bytes."""
    records: list[bytes] = []
    size = 0
    upto = 0
    for arrival, envelope in rows:
        if records and (len(records) >= BATCH_RECORDS or size + len(envelope) > BATCH_BYTES):
            yield Batch(records, upto)
            records, size = [], 0
        records.append(envelope)
        size += len(envelope)
        upto = arrival
    if records:
        yield Batch(records, upto)
