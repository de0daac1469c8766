"""The parent's side of one child's sync session.

The order it follows is :data:`sync.link.session.TRANSITIONS`; each of the parent's rows
names one of the methods under "the table's actions". Storage is behind
:class:`sync.link.session.ParentStore`; sockets, ZAP and the tick that passes news are the
driver's (:class:`sync.link.endpoint.ParentCore`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ErrorCode, SyncError
from sync.link.files_flow import FilePeer, FileReceiver, FileSender, read_wants, want_message
from sync.link.flow import Committed, Receiver, Sender
from sync.link.protocol import (
    CREDIT,
    FILES_FROM,
    Message,
    Phase,
    Type,
    choose_version,
    read_heads,
    write_heads,
)
from sync.link.session import (
    DOWN_DONE,
    FILES,
    FILES_DOWN_DONE,
    NEWS,
    REV_DONE,
    Machine,
    ParentStore,
    Role,
    State,
    ack_message,
    forks,
)
from sync.record.outcome import Heads, Status

FLOOD_REFUSALS = 256
"""Records a child's session may have refused in all; one more ends it (``E_SYNC_FLOOD``)."""


@dataclass(frozen=True)
class Peer:
    """An authenticated child: what its certificate says."""

    code: str
    cert_id: bytes
    curve_pk: bytes


class ParentSession(Machine):
    """The parent's side of one child's session."""

    role = Role.PARENT
    negotiating = State.START

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
        self.refused = 0
        self.frozen = 0  # of those, records of an origin frozen by a fork (E_CHAIN_FORK)
        self.taken = 0
        self.files: FilePeer | None = None
        self.file_in: FileReceiver | None = None
        self.file_out: FileSender | None = None

    def news(self, root_seq: int) -> list[Message]:
        """News for a child still uploading, now that this parent holds the root's chain
        through ``root_seq``: the root's records the child lacks, unless the child has them,
        was sent them already or has news in flight. The driver calls this on its tick; a v1
        session never gets news."""
        if self.version < 2 or self.state is not State.UP:
            return []
        if self.news_out is not None and not self.news_out.finished:
            return []
        if root_seq <= max(self.child_heads.get(self.store.root, (0, b""))[0], self.news_through):
            return []
        return self.fire(NEWS, root_seq)

    # -- the table's actions ----------------------------------------------------------------

    def welcome(self, message: Message) -> list[Message]:
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
        self.summary.forks.extend(forks(heads, self.child_heads))
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

    def rev_acked(self, message: Message) -> list[Message]:
        self._acked(message)
        return self._pump()

    def end_rev(self) -> list[Message]:
        return [Message(Type.END, {"phase": Phase.REV.value, "upto": 0}, self.version)]

    def commit_up(self, message: Message) -> list[Message]:
        body = message.body
        self.inbound.check(body)
        done = self.store.commit_up(self.peer.code, self.peer.cert_id, body["records"], body["upto"])
        self.summary.add(done.counts, done.codes, "up")
        for origin, head in done.held.items():  # what the child sent, it holds
            if head[0] > self.child_heads.get(origin, (0, b""))[0]:
                self.child_heads[origin] = head
        self._flood_check(body["n"], done)
        return [ack_message(Phase.UP, body["n"], body["upto"], done, self.version)]

    def _flood_check(self, batch: int, done: Committed) -> None:
        """End a session that sends mostly what is refused: more than :data:`FLOOD_REFUSALS`
        in all, or, past its first batch, more refused than taken (appended, held, known).
        What was refused before (a child sending again what it holds and the parent does
        not take) counts for neither: it is not new garbage, and it is kept no more. Records
        of an origin a fork has frozen are refused whatever they are (the real node's next
        records after a thief's): they count towards the cap, not against what was taken."""
        rejected = done.counts.get(Status.REJECTED.value, 0)
        self.refused += rejected - done.again
        self.frozen += min(rejected - done.again, done.codes.get(ErrorCode.CHAIN_FORK.value, 0))
        self.taken += sum(done.counts.values()) - rejected
        if self.refused > FLOOD_REFUSALS or (batch > 1 and self.refused - self.frozen > self.taken):
            raise SyncError(
                ErrorCode.SYNC_FLOOD,
                f"{self.refused} records refused in this session, {self.taken} taken",
            )

    def send_news(self, root_seq: int) -> list[Message]:
        self.news_through = root_seq
        source = self.store.rev_batches(self.peer.code, self.child_heads)
        if self.news_out is None:
            self.news_out = Sender(Phase.NEWS, source, self.child_credit, self.version)
        else:  # one numbering for the session's news
            self.news_out.source, self.news_out.exhausted = source, False
        return self.news_out.fill()

    def news_acked(self, message: Message) -> list[Message]:
        if self.news_out is None:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, "ACK news when no news was sent")
        body = message.body
        self.news_out.on_ack(body)
        self.summary.add(body["counts"], body["codes"], "down")
        self.child_heads.update(read_heads(body["heads"]))
        return self.news_out.fill()  # nothing once the up phase has ended

    def start_down(self, message: Message) -> list[Message]:
        if self.news_out is not None:
            self.news_out.exhausted = True  # the down phase carries what news did not
        # The heads as the hello told them, too: the revocations phase moves the root's.
        source = self.store.down_batches(
            self.peer.code, self.peer.cert_id, self.child_heads, self.hello_heads
        )
        self.out = Sender(Phase.DOWN, source, self.child_credit, self.version)
        return self._pump()

    def down_acked(self, message: Message) -> list[Message]:
        upto = self._acked(message)
        self.store.down_acked(self.peer.code, self.peer.cert_id, upto)
        return self._pump()

    def end_down(self) -> list[Message]:
        assert self.out is not None
        # Every batch is acknowledged: what the scan skipped as not concerning the child
        # is behind the checkpoint too.
        self.store.down_acked(self.peer.code, self.peer.cert_id, self.out.scanned)
        # The session's work is done: noted now, not at BYE (a child closing at once may
        # lose it), so that a central rebuilt from the network knows who has synced.
        self.store.seen(self.peer.code, self.peer.cert_id, self.child_heads)
        receipt = self.store.receipt(self.peer.code, self.peer.cert_id)
        self.summary.receipt = receipt is not None
        end = Message(Type.END, {"phase": Phase.DOWN.value, "upto": self.out.scanned}, self.version)
        out = [end, Message(Type.RECEIPT, {"record": receipt}, self.version)]
        if self.version >= FILES_FROM:
            out.extend(self.fire(FILES))
        return out

    def want_files(self) -> list[Message]:
        """Every record of the session is in: the files they list of the child's subtree's
        cases this store lacks, and those of them the root holds."""
        self.files = self.store.file_link(self.peer.code)
        wants = self.files.wants()
        self.file_in = FileReceiver(Phase.FILES_UP, wants, self.files, self.version)
        at_root = self.files.at_root(self.store.code == self.store.root)
        return [want_message(Phase.FILES_UP, wants, at_root, self.version)]

    def take_chunk(self, message: Message) -> list[Message]:
        assert self.file_in is not None
        reply = self.file_in.take(message.body)
        self.summary.files_up = self.file_in.stored
        self.summary.file_bytes_received = self.file_in.bytes_received
        return [reply]

    def send_files(self, message: Message) -> list[Message]:
        assert self.files is not None and self.file_in is not None
        self.summary.rejected.update(self.file_in.refusals)
        wants = self.files.servable(read_wants(message.body["files"]))
        self.file_out = FileSender(Phase.FILES_DOWN, wants, self.files, self.version)
        return self._pump_files()

    def chunk_acked(self, message: Message) -> list[Message]:
        assert self.file_out is not None
        self.file_out.on_ack(message.body)
        return self._pump_files()

    def end_files(self) -> list[Message]:
        assert self.file_out is not None
        self.summary.files_down = self.file_out.stored
        self.summary.file_bytes_sent = self.file_out.bytes_sent
        return [Message(Type.END, {"phase": Phase.FILES_DOWN.value, "upto": 0}, self.version)]

    def _pump_files(self) -> list[Message]:
        assert self.file_out is not None
        out = self.file_out.fill()
        if self.file_out.finished:
            out.extend(self.fire(FILES_DOWN_DONE))
        return out

    def finish(self, message: Message) -> list[Message]:
        if self.news_out is not None and not self.news_out.finished:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, "BYE before every news batch was acknowledged")
        self.store.seen(self.peer.code, self.peer.cert_id, self.child_heads)
        return []

    # -- shared by the actions -----------------------------------------------------------

    def _acked(self, message: Message) -> int:
        """Check an ACK of the revocations or down phase; the ``upto`` it acknowledges."""
        assert self.out is not None
        body = message.body
        upto = self.out.on_ack(body)
        self.summary.add(body["counts"], body["codes"], "down")
        self.child_heads.update(read_heads(body["heads"]))
        return upto

    def _pump(self) -> list[Message]:
        """The batches the credit allows; once every one is acknowledged, the phase's end."""
        assert self.out is not None
        out = self.out.fill()
        if self.out.finished:
            out.extend(self.fire(REV_DONE if self.out.phase is Phase.REV else DOWN_DONE))
        return out
