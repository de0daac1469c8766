"""One sync session between a child and its parent: the order both sides follow.

A session runs in fixed phases, the same on every link of the tree::

    hello → revocations → up (with news) → down → receipt → files up → files down → done

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
  record of its own log) and hands it over; before version 4 the child ends with BYE.
* **files up** (version 4): the parent names the files of the child's subtree's cases its
  records list and it lacks (with the offset of any part it kept), and which of them the
  root holds; the child sends those it holds in chunks (:mod:`sync.link.files_flow`).
* **files down** (version 4): the child names the files of its own cases it lacks; the
  parent sends those it holds; the child ends with BYE. Records never wait behind files:
  every record of the session is committed before the first chunk moves.

Every batch is committed by the receiver in one transaction before its ACK goes back, and
at most ``credit`` batches are unacknowledged. Checkpoints advance only with commits, so a
session killed anywhere resumes where it stopped.

The table :data:`TRANSITIONS` is the whole protocol order and drives both state machines,
:class:`sync.link.child_session.ChildSession` and
:class:`sync.link.parent_session.ParentSession`: each row names the method that runs, and
:meth:`Machine.fire` is the only place a state moves. Anything not in the table is
refused with ``E_SYNC_PROTOCOL``. ``docs/sync-protocol.md`` shows it (:func:`render_table`).
Both machines are pure: storage is behind :class:`ChildStore` / :class:`ParentStore`,
sockets are the driver's (:mod:`sync.link.transport`, :mod:`sync.link.endpoint`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from core.errors import ErrorCode, SyncError, error
from sync.link.files_flow import FilePeer
from sync.link.flow import Batch, Committed
from sync.link.protocol import VERSIONS, Message, Phase, Type, code_of, write_heads
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
    FILES_UP = "files-up"
    FILES_DOWN = "files-down"
    CLOSING = "closing"
    DONE = "done"
    FAILED = "failed"


# Events: a received message (``"WELCOME"``, ``"BATCH rev"`` …) or, in lower case, what a
# side decides itself (``"open"``, ``"up done"`` …).
OPEN, REV_DONE, UP_DONE, DOWN_DONE, NEWS = "open", "rev done", "up done", "down done", "news"
FILES, NO_FILES, FILES_UP_DONE, FILES_DOWN_DONE = "files", "no files", "files up done", "files down done"

C, P = Role.CHILD, Role.PARENT


@dataclass(frozen=True)
class Step:
    """One row of the table: the state that follows and the session's method that runs."""

    next: State
    action: str  # the name of the ChildSession or ParentSession method
    doc: str  # what the side does, as docs/sync-protocol.md draws it


TRANSITIONS: dict[tuple[Role, State, str], Step] = {
    (C, State.START, OPEN): Step(State.HELLO_SENT, "send_hello", "send HELLO"),
    (C, State.HELLO_SENT, "WELCOME"): Step(State.REVOCATIONS, "welcomed", "wait for revocations"),
    (C, State.REVOCATIONS, "BATCH rev"): Step(State.REVOCATIONS, "commit_batch", "commit, ACK"),
    (C, State.REVOCATIONS, "END rev"): Step(State.UP, "start_up", "send up batches within credit"),
    (C, State.UP, "ACK up"): Step(State.UP, "up_acked", "send the next batch"),
    (C, State.UP, "BATCH news"): Step(State.UP, "commit_news", "commit, ACK"),
    (C, State.UP, UP_DONE): Step(State.DOWN, "end_up", "all acknowledged: send END up"),
    (C, State.DOWN, "BATCH news"): Step(State.DOWN, "commit_news", "commit, ACK"),
    (C, State.DOWN, "BATCH down"): Step(State.DOWN, "commit_batch", "commit, ACK"),
    (C, State.DOWN, "END down"): Step(State.RECEIPT, "down_ended", "wait for the receipt"),
    (C, State.RECEIPT, "RECEIPT"): Step(
        State.FILES_UP, "store_receipt", "store the receipt; wait for the parent's WANT (v4)"
    ),
    (C, State.FILES_UP, NO_FILES): Step(State.DONE, "say_bye", "before v4: send BYE"),
    (C, State.FILES_UP, "WANT files-up"): Step(
        State.FILES_UP, "send_files", "mark what the root holds, send chunks within credit and the cap"
    ),
    (C, State.FILES_UP, "CACK files-up"): Step(
        State.FILES_UP, "chunk_acked", "send the next chunk (from the parent's offset after a refusal)"
    ),
    (C, State.FILES_UP, FILES_UP_DONE): Step(
        State.FILES_DOWN, "want_files", "all acknowledged: send WANT files-down"
    ),
    (C, State.FILES_DOWN, "CHUNK files-down"): Step(
        State.FILES_DOWN, "take_chunk", "check the chunk, keep it, CACK; a whole file checked and stored"
    ),
    (C, State.FILES_DOWN, "END files-down"): Step(State.DONE, "say_bye", "send BYE"),
    (P, State.START, "HELLO"): Step(
        State.REVOCATIONS, "welcome", "send WELCOME, revocation batches within credit"
    ),
    (P, State.REVOCATIONS, "ACK rev"): Step(State.REVOCATIONS, "rev_acked", "send the next batch"),
    (P, State.REVOCATIONS, REV_DONE): Step(State.UP, "end_rev", "all acknowledged: send END rev"),
    (P, State.UP, "BATCH up"): Step(State.UP, "commit_up", "commit with the checkpoint, ACK"),
    (P, State.UP, NEWS): Step(
        State.UP, "send_news", "the root moved on: send its new records as news within credit"
    ),
    (P, State.UP, "ACK news"): Step(State.UP, "news_acked", "send the next news batch"),
    (P, State.UP, "END up"): Step(State.DOWN, "start_down", "stop the news, send down batches within credit"),
    (P, State.DOWN, "ACK news"): Step(State.DOWN, "news_acked", "note the child's heads"),
    (P, State.DOWN, "ACK down"): Step(
        State.DOWN, "down_acked", "advance the checkpoint, send the next batch"
    ),
    (P, State.DOWN, DOWN_DONE): Step(
        State.RECEIPT, "end_down", "note the child's heads, send END down and the signed receipt"
    ),
    (P, State.RECEIPT, "ACK news"): Step(State.RECEIPT, "news_acked", "note the child's heads"),
    (P, State.RECEIPT, "BYE"): Step(State.DONE, "finish", "session complete (before v4)"),
    (P, State.RECEIPT, FILES): Step(
        State.FILES_UP, "want_files", "v4: send WANT files-up (what it lacks, what the root holds)"
    ),
    (P, State.FILES_UP, "ACK news"): Step(State.FILES_UP, "news_acked", "note the child's heads"),
    (P, State.FILES_UP, "CHUNK files-up"): Step(
        State.FILES_UP, "take_chunk", "check the chunk, keep it, CACK; a whole file checked and stored"
    ),
    (P, State.FILES_UP, "WANT files-down"): Step(
        State.FILES_DOWN, "send_files", "send the chunks of what it may have within credit"
    ),
    (P, State.FILES_DOWN, "CACK files-down"): Step(State.FILES_DOWN, "chunk_acked", "send the next chunk"),
    (P, State.FILES_DOWN, FILES_DOWN_DONE): Step(
        State.CLOSING, "end_files", "all acknowledged: send END files-down"
    ),
    (P, State.CLOSING, "BYE"): Step(State.DONE, "finish", "session complete"),
}
"""(role, state, event) → the next state and the method that runs (:meth:`Machine.fire`).
ERROR or a timeout in any state → FAILED; the checkpoints stay where the last commit left
them."""


def event_of(message: Message) -> str:
    phase = message.body.get("phase")
    return (
        f"{message.type.value} {phase}"
        if message.type in (Type.BATCH, Type.ACK, Type.END, Type.WANT, Type.CHUNK, Type.CACK)
        else message.type
    )


def render_table() -> str:
    """The transition table as Markdown (docs/sync-protocol.md embeds it; a test compares)."""
    lines = ["| side | state | event | next state | action |", "|---|---|---|---|---|"]
    for (role, state, event), step in TRANSITIONS.items():
        lines.append(f"| {role.value} | {state.value} | {event} | {step.next.value} | {step.doc} |")
    lines.append("| either | any | ERROR, timeout, bad message | failed | stop; checkpoints stay |")
    return "\n".join(lines) + "\n"


# -- what a session needs from storage -----------------------------------------------------


class ChildStore(Protocol):
    code: str
    cert_id: bytes

    def hello_heads(self) -> Heads: ...
    def arrivals(self) -> int: ...
    def up_batches(self, up_from: int, parent: str, parent_heads: Heads) -> Iterator[Batch]: ...
    def commit(self, phase: Phase, records: list[bytes], source: str) -> Committed: ...
    def note(self, event: str, **values: Any) -> None: ...
    def file_link(self, peer: str) -> FilePeer: ...


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
    def file_link(self, child: str) -> FilePeer: ...


@dataclass
class Summary:
    """What a session moved, for the operator and the status line."""

    up: int = 0
    down: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    forks: list[str] = field(default_factory=list)
    receipt: bool = False
    files_up: int = 0  # files the parent stored whole
    files_down: int = 0  # files the child stored whole
    file_bytes_sent: int = 0  # chunk bytes this side sent (what was sent twice included)
    file_bytes_received: int = 0

    def add(self, counts: dict[str, int], codes: dict[str, int], direction: str) -> None:
        if direction == "up":
            self.up += counts.get("appended", 0)
        else:
            self.down += counts.get("appended", 0)
        self.rejected.update(codes)


def ack_message(phase: Phase, n: int, upto: int, done: Committed, version: int) -> Message:
    body = {
        "phase": phase.value,
        "n": n,
        "upto": upto,
        "heads": write_heads(done.heads),
        "counts": done.counts,
        "codes": done.codes,
    }
    return Message(Type.ACK, body, version)


class Machine:
    """What both sides share: the table lookup, the version, the summary.

    :meth:`fire` is the only place the state moves. Every row of :data:`TRANSITIONS` for a
    side names one of its methods; a subclass missing one fails at import.
    """

    role: Role
    negotiating: State
    """The state whose message sets the session's version (the parent's HELLO, the child's
    WELCOME), so its frame 0 is not checked against the version this side started with."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = sorted(
            {step.action for (role, _, _), step in TRANSITIONS.items() if role is cls.role}
            - {name for name in dir(cls) if callable(getattr(cls, name))}
        )
        if missing:
            raise TypeError(f"{cls.__name__} lacks the table's actions {', '.join(missing)}")

    def __init__(self) -> None:
        self.state = State.START
        self.version = VERSIONS[0]
        self.summary = Summary()

    def on_message(self, message: Message) -> list[Message]:
        """The replies to ``message`` (its row of the table); ``SyncError`` fails the session."""
        if message.type is Type.ERROR:
            self._failed_by_peer(message)
        if self.state is not self.negotiating:
            self._check_version(message)
        return self.fire(event_of(message), message)

    def fire(self, event: str, *args: Any) -> list[Message]:
        """Look ``event`` up in the table, move to the state it names and run its action;
        the messages to send. An event the table lacks fails the session."""
        step = TRANSITIONS.get((self.role, self.state, event))
        if step is None:
            refused = SyncError(
                ErrorCode.SYNC_PROTOCOL, f"{event} is not expected by the {self.role} in {self.state}"
            )
            self.state = State.FAILED
            raise refused
        self.state = step.next
        action: Callable[..., list[Message]] = getattr(self, step.action)
        return action(*args)

    def _failed_by_peer(self, message: Message) -> None:
        self.state = State.FAILED
        raise error(code_of(message.body["code"]), f"the peer said: {message.body['detail']}")

    def _check_version(self, message: Message) -> None:
        if message.version != self.version:
            raise SyncError(
                ErrorCode.SYNC_PROTOCOL, f"version {message.version} in a v{self.version} session"
            )

    @property
    def done(self) -> bool:
        return self.state is State.DONE


def forks(mine: Heads, theirs: Heads) -> list[str]:
    """The origins where ``theirs`` names another record at ``mine``'s head seq: forks."""
    return [
        f"{origin} #{seq}"
        for origin, (seq, rid) in theirs.items()
        if origin in mine and mine[origin][0] == seq and mine[origin][1] != rid
    ]
