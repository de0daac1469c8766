"""One sync session between a child and its parent, as two explicit state machines.

A session runs in fixed phases, the same on every link of the tree::

    hello → revocations → up (with news) → down → receipt → done

* **hello**: the child names itself, its certificate, the versions it speaks and the heads
  of every origin it holds whole (the root's and its subtree's); the parent answers with
  its own heads for the same origins. A head that differs at the same seq is a fork, and
  the record at that seq is sent across so the receiver keeps it as evidence.
* **revocations**: the parent sends the root's chain from the child's head through the
  root's head as the parent holds it — every revocation, catalog release, key and root
  grant central signed — so the child refuses a revoked node or grant, and takes walk-ins
  under the newest catalog, before anything else moves (an up phase after a long time
  offline can take minutes).
* **news** (version 2): while the child is still uploading, the parent passes it the
  root's records that reached the parent since the revocations phase (a town that hears of
  a release from central while its villages upload a month of cases), within a second of
  their arrival instead of after the upload. News stop when the up phase ends; the down
  phase carries the rest.
* **up**: the child sends what its subtree authored that the parent lacks: its arrivals
  after the parent's checkpoint, skipping what the parent's heads show it holds, then any
  seq still missing by heads (so a checkpoint that is wrong for any reason costs time,
  never records).
* **down**: the parent sends its arrivals after the child's checkpoint that concern the
  child (``sync.record.kinds.concerns``), skipping what the child's heads show it holds.
* **receipt**: the parent signs the child's head as it now holds it (a ``link.receipt``
  record of its own log) and hands it over; the child ends with BYE.

Every batch is committed by the receiver in one transaction before its ACK goes back, and
at most ``credit`` batches are unacknowledged. Checkpoints advance only with commits, so a
session killed anywhere resumes where it stopped. Both machines are pure: storage is
behind :class:`ChildStore` / :class:`ParentStore`, sockets are the driver's
(:mod:`sync.link.transport`, :mod:`sync.link.endpoint`).

The table :data:`TRANSITIONS` is the whole protocol order; anything not in it is refused
with ``E_SYNC_PROTOCOL``. ``docs/sync-protocol.md`` shows it (:func:`render_table`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from core.errors import ErrorCode
from sync.link.flow import Batch, Committed, Receiver, Sender
from sync.link.protocol import (
    CREDIT,
    SESSION_ID_SIZE,
    VERSIONS,
    Message,
    Phase,
    SyncError,
    Type,
    choose_version,
    code_of,
    read_heads,
    write_heads,
)
from sync.record.outcome import Heads


class Role(StrEnum):
    CHILD = "child"
    PARENT = "parent"


class State(StrEnum):
    START = "start"
    HELLO_SENT = "hello-sent"
    REVOCATIONS = "revocations"
    UP = "up"
    DOWN = "down"
    RECEIPT = "receipt"
    DONE = "done"
    FAILED = "failed"


# Events: a received message (``"WELCOME"``, ``"BATCH rev"`` …) or, in lower case, what a
# side decides itself (``"open"``, ``"up done"`` …).
OPEN, REV_DONE, UP_DONE, DOWN_DONE, NEWS = "open", "rev done", "up done", "down done", "news"

C, P = Role.CHILD, Role.PARENT
TRANSITIONS: dict[tuple[Role, State, str], tuple[State, str]] = {
    (C, State.START, OPEN): (State.HELLO_SENT, "send HELLO"),
    (C, State.HELLO_SENT, "WELCOME"): (State.REVOCATIONS, "wait for revocations"),
    (C, State.REVOCATIONS, "BATCH rev"): (State.REVOCATIONS, "commit, ACK"),
    (C, State.REVOCATIONS, "END rev"): (State.UP, "send up batches within credit"),
    (C, State.UP, "ACK up"): (State.UP, "send the next batch"),
    (C, State.UP, "BATCH news"): (State.UP, "commit, ACK"),
    (C, State.UP, UP_DONE): (State.DOWN, "all acknowledged: send END up"),
    (C, State.DOWN, "BATCH news"): (State.DOWN, "commit, ACK"),
    (C, State.DOWN, "BATCH down"): (State.DOWN, "commit, ACK"),
    (C, State.DOWN, "END down"): (State.RECEIPT, "wait for the receipt"),
    (C, State.RECEIPT, "RECEIPT"): (State.DONE, "store the receipt, send BYE"),
    (P, State.START, "HELLO"): (State.REVOCATIONS, "send WELCOME, revocation batches within credit"),
    (P, State.REVOCATIONS, "ACK rev"): (State.REVOCATIONS, "send the next batch"),
    (P, State.REVOCATIONS, REV_DONE): (State.UP, "all acknowledged: send END rev"),
    (P, State.UP, "BATCH up"): (State.UP, "commit with the checkpoint, ACK"),
    (P, State.UP, NEWS): (State.UP, "the root moved on: send its new records as news within credit"),
    (P, State.UP, "ACK news"): (State.UP, "send the next news batch"),
    (P, State.UP, "END up"): (State.DOWN, "stop the news, send down batches within credit"),
    (P, State.DOWN, "ACK news"): (State.DOWN, "note the child's heads"),
    (P, State.DOWN, "ACK down"): (State.DOWN, "advance the checkpoint, send the next batch"),
    (P, State.DOWN, DOWN_DONE): (State.RECEIPT, "send END down and the signed receipt"),
    (P, State.RECEIPT, "ACK news"): (State.RECEIPT, "note the child's heads"),
    (P, State.RECEIPT, "BYE"): (State.DONE, "session complete"),
}
"""(role, state, event) → (next state, what the side does). ERROR or a timeout in any
state → FAILED; the checkpoints stay where the last commit left them."""


def event_of(message: Message) -> str:
    phase = message.body.get("phase")
    return (
        f"{message.type.value} {phase}" if message.type in (Type.BATCH, Type.ACK, Type.END) else message.type
    )


def render_table() -> str:
    """The transition table as Markdown (docs/sync-protocol.md embeds it; a test compares)."""
    lines = ["| side | state | event | next state | action |", "|---|---|---|---|---|"]
    for (role, state, event), (target, action) in TRANSITIONS.items():
        lines.append(f"| {role.value} | {state.value} | {event} | {target.value} | {action} |")
    lines.append("| either | any | ERROR, timeout, bad message | failed | stop; checkpoints stay |")
    return "\n".join(lines) + "\n"


# -- what a session needs from storage -----------------------------------------------------


class ChildStore(Protocol):
    code: str
    cert_id: bytes

    def hello_heads(self) -> Heads: ...
    def arrivals(self) -> int: ...
    def up_batches(self, up_from: int, parent_heads: Heads) -> Iterator[Batch]: ...
    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed: ...
    def note(self, event: str, **values: Any) -> None: ...


class ParentStore(Protocol):
    code: str
    root: str

    def welcome_heads(self, child: str) -> Heads: ...
    def up_checkpoint(self, child: str, cert: bytes, arrivals: int) -> int: ...
    def pending(self, child: str, cert: bytes) -> int: ...
    def rev_batches(self, child: str, child_heads: Heads) -> Iterator[Batch]: ...
    def down_batches(
        self, child: str, cert: bytes, child_heads: Heads, hello_heads: Heads
    ) -> Iterator[Batch]: ...
    def commit_up(self, child: str, cert: bytes, records: list[bytes], upto: int) -> Committed: ...
    def down_acked(self, child: str, cert: bytes, upto: int) -> None: ...
    def receipt(self, child: str, cert: bytes) -> bytes | None: ...
    def seen(self, child: str, cert: bytes, heads: Heads) -> None: ...


@dataclass
class Summary:
    """What a session moved, for the operator and the status line."""

    up: int = 0
    down: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    forks: list[str] = field(default_factory=list)
    receipt: bool = False

    def add(self, counts: dict[str, int], codes: dict[str, int], direction: str) -> None:
        if direction == "up":
            self.up += counts.get("appended", 0)
        else:
            self.down += counts.get("appended", 0)
        self.rejected.update(codes)


def _ack(phase: Phase, n: int, upto: int, done: Committed, version: int) -> Message:
    body = {
        "phase": phase.value,
        "n": n,
        "upto": upto,
        "heads": write_heads(done.heads),
        "counts": done.counts,
        "codes": done.codes,
    }
    return Message(Type.ACK, body, version)


class _Machine:
    role: Role

    def __init__(self) -> None:
        self.state = State.START
        self.version = VERSIONS[0]
        self.summary = Summary()

    def fire(self, event: str) -> str:
        step = TRANSITIONS.get((self.role, self.state, event))
        if step is None:
            self.state = State.FAILED
            raise SyncError(
                ErrorCode.SYNC_PROTOCOL, f"{event} is not expected by the {self.role} in {self.state}"
            )
        self.state = step[0]
        return step[1]

    def _failed_by_peer(self, message: Message) -> None:
        self.state = State.FAILED
        raise SyncError(code_of(message.body["code"]), f"the peer said: {message.body['detail']}")

    def _check_version(self, message: Message) -> None:
        if message.version != self.version:
            raise SyncError(
                ErrorCode.SYNC_PROTOCOL, f"version {message.version} in a v{self.version} session"
            )


# -- the child -----------------------------------------------------------------------------


class ChildSession(_Machine):
    """The child's side: drives a session from HELLO to BYE."""

    role = Role.CHILD

    def __init__(self, store: ChildStore, credit: int = CREDIT, session_id: bytes | None = None) -> None:
        super().__init__()
        self.store = store
        self.credit = credit
        self.session_id = session_id or os.urandom(SESSION_ID_SIZE)
        self.parent = ""
        self.heads: Heads = {}
        self.parent_heads: Heads = {}
        self.up: Sender | None = None
        self.inbound = Receiver(credit)
        self.news_in = Receiver(credit)

    def start(self) -> list[Message]:
        self.fire(OPEN)
        self.heads = self.store.hello_heads()
        body = {
            "versions": list(VERSIONS),
            "node": self.store.code,
            "cert": self.store.cert_id,
            "session": self.session_id,
            "heads": write_heads(self.heads),
            "credit": self.credit,
            "arrivals": self.store.arrivals(),
        }
        return [Message(Type.HELLO, body, VERSIONS[0])]

    def on_message(self, message: Message) -> list[Message]:
        if message.type is Type.ERROR:
            self._failed_by_peer(message)
        if self.state is not State.HELLO_SENT:
            self._check_version(message)
        self.fire(event_of(message))
        body = message.body
        if message.type is Type.WELCOME:
            return self._welcome(message)
        if message.type is Type.BATCH:
            phase = Phase(body["phase"])
            if phase is Phase.NEWS:
                if self.version < 2:
                    raise SyncError(ErrorCode.SYNC_PROTOCOL, f"news in a v{self.version} session")
                self.news_in.check(body)
            else:
                self.inbound.check(body)
            done = self.store.commit(phase, body["records"], self.parent)
            self.summary.add(done.counts, done.codes, "down")
            return [_ack(phase, body["n"], body["upto"], done, self.version)]
        if message.type is Type.END and body["phase"] == Phase.REV:
            self.inbound = Receiver(self.credit)
            assert self.up is not None
            return self._pump()
        if message.type is Type.ACK:
            assert self.up is not None
            upto = self.up.on_ack(body)
            self.parent_heads.update(read_heads(body["heads"]))
            self.summary.add(body["counts"], body["codes"], "up")
            self.store.note("up acked", upto=upto)
            return self._pump()
        if message.type is Type.END:  # down
            self.store.note("down done")
            return []
        # RECEIPT
        if body["record"] is not None:
            done = self.store.commit(Phase.DOWN, [body["record"]], self.parent)
            self.summary.receipt = done.counts.get("appended", 0) + done.counts.get("duplicate", 0) > 0
        self.store.note("done", summary=self.summary)
        return [Message(Type.BYE, {}, self.version)]

    def _welcome(self, message: Message) -> list[Message]:
        self.version = message.version
        if self.version not in VERSIONS:
            raise SyncError(ErrorCode.SYNC_VERSION, f"the parent chose v{self.version}")
        body = message.body
        self.parent = body["node"]
        self.parent_heads = read_heads(body["heads"])
        self.summary.forks.extend(_forks(self.heads, self.parent_heads))
        self.store.note("welcome", pending=body["pending"])
        source = self.store.up_batches(body["up_from"], self.parent_heads)
        self.up = Sender(Phase.UP, source, body["credit"], self.version)
        return []

    def _pump(self) -> list[Message]:
        assert self.up is not None
        out = self.up.fill()
        if self.up.finished:
            self.fire(UP_DONE)
            end = {"phase": Phase.UP.value, "upto": self.up.scanned}
            out.append(Message(Type.END, end, self.version))
        return out

    @property
    def done(self) -> bool:
        return self.state is State.DONE


def _forks(mine: Heads, theirs: Heads) -> list[str]:
    return [
        f"{origin} #{seq}"
        for origin, (seq, rid) in theirs.items()
        if origin in mine and mine[origin][0] == seq and mine[origin][1] != rid
    ]


# -- the parent ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """An authenticated child: what its certificate says."""

    code: str
    cert_id: bytes
    curve_pk: bytes


class ParentSession(_Machine):
    """The parent's side of one child's session."""

    role = Role.PARENT

    def __init__(self, store: ParentStore, peer: Peer, credit: int = CREDIT) -> None:
        super().__init__()
        self.store = store
        self.peer = peer
        self.credit = credit
        self.child_heads: Heads = {}
        self.hello_heads: Heads = {}
        self.out: Sender | None = None
        self.news_out: Sender | None = None
        self.news_through = 0
        self.inbound = Receiver(credit)
        self.session_id = b""
        self.child_credit = CREDIT

    def on_message(self, message: Message) -> list[Message]:
        if message.type is Type.ERROR:
            self._failed_by_peer(message)
        if self.state is not State.START:
            self._check_version(message)
        self.fire(event_of(message))
        body = message.body
        if message.type is Type.HELLO:
            return self._hello(message)
        if message.type is Type.ACK and body["phase"] == Phase.NEWS:
            if self.news_out is None:
                raise SyncError(ErrorCode.SYNC_PROTOCOL, "ACK news when no news was sent")
            self.news_out.on_ack(body)
            self.summary.add(body["counts"], body["codes"], "down")
            self.child_heads.update(read_heads(body["heads"]))
            return self.news_out.fill()
        if message.type is Type.ACK:
            assert self.out is not None
            upto = self.out.on_ack(body)
            self.summary.add(body["counts"], body["codes"], "down")
            if body["phase"] == Phase.DOWN:
                self.store.down_acked(self.peer.code, self.peer.cert_id, upto)
            self.child_heads.update(read_heads(body["heads"]))
            return self._pump()
        if message.type is Type.BATCH:
            self.inbound.check(body)
            done = self.store.commit_up(self.peer.code, self.peer.cert_id, body["records"], body["upto"])
            self.summary.add(done.counts, done.codes, "up")
            return [_ack(Phase.UP, body["n"], body["upto"], done, self.version)]
        if message.type is Type.END:  # up
            if self.news_out is not None:
                self.news_out.exhausted = True  # the down phase carries what news did not
            # The heads as the hello told them, too: the revocations phase moves the root's.
            source = self.store.down_batches(
                self.peer.code, self.peer.cert_id, self.child_heads, self.hello_heads
            )
            self.out = Sender(Phase.DOWN, source, self.child_credit, self.version)
            return self._pump()
        # BYE
        if self.news_out is not None and not self.news_out.finished:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, "BYE before every news batch was acknowledged")
        self.store.seen(self.peer.code, self.peer.cert_id, self.child_heads)
        return []

    def _hello(self, message: Message) -> list[Message]:
        body = message.body
        self.version = choose_version(body["versions"])
        if body["node"] != self.peer.code or body["cert"] != self.peer.cert_id:
            raise SyncError(
                ErrorCode.SYNC_PEER_UNKNOWN,
                f"HELLO names {body['node']}, the transport key is {self.peer.code}'s",
            )
        self.session_id = body["session"]
        self.child_credit = body["credit"]
        self.child_heads = read_heads(body["heads"])
        self.hello_heads = dict(self.child_heads)
        heads = self.store.welcome_heads(self.peer.code)
        self.summary.forks.extend(_forks(heads, self.child_heads))
        welcome = {
            "node": self.store.code,
            "session": self.session_id,
            "heads": write_heads(heads),
            "credit": self.credit,
            "up_from": self.store.up_checkpoint(self.peer.code, self.peer.cert_id, body["arrivals"]),
            "pending": self.store.pending(self.peer.code, self.peer.cert_id),
        }
        self.out = Sender(
            Phase.REV,
            self.store.rev_batches(self.peer.code, self.child_heads),
            self.child_credit,
            self.version,
        )
        return [Message(Type.WELCOME, welcome, self.version), *self._pump()]

    def news(self, root_seq: int) -> list[Message]:
        """News for a child still uploading, now that this parent holds the root's chain
        through ``root_seq``: the root's records the child lacks, unless the child has them,
        was sent them already or has news in flight. The driver calls this on its tick; a v1
        session never gets news."""
        if self.version < 2 or self.state is not State.UP:
            return []
        if self.news_out is not None and not self.news_out.finished:
            return []
        root = self.store.root
        if root_seq <= max(self.child_heads.get(root, (0, b""))[0], self.news_through):
            return []
        self.fire(NEWS)
        self.news_through = root_seq
        source = self.store.rev_batches(self.peer.code, self.child_heads)
        if self.news_out is None:
            self.news_out = Sender(Phase.NEWS, source, self.child_credit, self.version)
        else:  # one numbering for the session's news
            self.news_out.source, self.news_out.exhausted = source, False
        return self.news_out.fill()

    def _pump(self) -> list[Message]:
        assert self.out is not None
        out = self.out.fill()
        if not self.out.finished:
            return out
        if self.state is State.REVOCATIONS:
            self.fire(REV_DONE)
            return [*out, Message(Type.END, {"phase": Phase.REV.value, "upto": 0}, self.version)]
        self.fire(DOWN_DONE)
        # Every batch is acknowledged: what the scan skipped as not concerning the child
        # is behind the checkpoint too.
        self.store.down_acked(self.peer.code, self.peer.cert_id, self.out.scanned)
        receipt = self.store.receipt(self.peer.code, self.peer.cert_id)
        self.summary.receipt = receipt is not None
        end = Message(Type.END, {"phase": Phase.DOWN.value, "upto": self.out.scanned}, self.version)
        return [*out, end, Message(Type.RECEIPT, {"record": receipt}, self.version)]

    @property
    def done(self) -> bool:
        return self.state is State.DONE
