"""The child's side of a sync session: drives it from HELLO to BYE.

The order it follows is :data:`sync.link.session.TRANSITIONS`; each of the child's rows
names one of the methods under "the table's actions". Storage is behind
:class:`sync.link.session.ChildStore`, the socket is the driver's
(:func:`sync.link.transport.sync_once`).
"""

from __future__ import annotations

import os

from core.errors import ErrorCode, SyncError
from sync.link.files_flow import FilePeer, FileReceiver, FileSender, read_wants, want_message
from sync.link.flow import Receiver, Sender
from sync.link.protocol import (
    CREDIT,
    FILES_FROM,
    SESSION_ID_SIZE,
    VERSIONS,
    Message,
    Phase,
    Type,
    read_heads,
    write_heads,
)
from sync.link.session import (
    FILES_UP_DONE,
    NO_FILES,
    OPEN,
    UP_DONE,
    ChildStore,
    Machine,
    Role,
    State,
    ack_message,
    forks,
)
from sync.record.outcome import Heads


class ChildSession(Machine):
    """The child's side: drives a session from HELLO to BYE."""

    role = Role.CHILD
    negotiating = State.HELLO_SENT

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
        self.files: FilePeer | None = None
        self.file_out: FileSender | None = None
        self.file_in: FileReceiver | None = None

    def start(self) -> list[Message]:
        """The session's first message."""
        return self.fire(OPEN)

    # -- the table's actions ----------------------------------------------------------------

    def send_hello(self) -> list[Message]:
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

    def welcomed(self, message: Message) -> list[Message]:
        self.version = message.version
        if self.version not in VERSIONS:
            raise SyncError(ErrorCode.SYNC_VERSION, f"the parent chose v{self.version}")
        body = message.body
        self.parent = body["node"]
        self.parent_heads = read_heads(body["heads"])
        self.summary.forks.extend(forks(self.heads, self.parent_heads))
        self.store.note("welcome", pending=body["pending"], parent=self.parent, heads=self.parent_heads)
        source = self.store.up_batches(body["up_from"], self.parent, self.parent_heads)
        self.up = Sender(Phase.UP, source, body["credit"], self.version)
        return []

    def commit_batch(self, message: Message) -> list[Message]:
        """A revocations or down batch."""
        self.inbound.check(message.body)
        return self._commit(message)

    def commit_news(self, message: Message) -> list[Message]:
        if self.version < 2:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"news in a v{self.version} session")
        self.news_in.check(message.body)
        return self._commit(message)

    def start_up(self, message: Message) -> list[Message]:
        self.inbound = Receiver(self.credit)  # the down phase numbers its batches afresh
        return self._pump()

    def up_acked(self, message: Message) -> list[Message]:
        assert self.up is not None
        body = message.body
        upto = self.up.on_ack(body)
        self.parent_heads.update(read_heads(body["heads"]))
        self.summary.add(body["counts"], body["codes"], "up")
        self.store.note("up acked", upto=upto, parent=self.parent, heads=self.parent_heads)
        return self._pump()

    def end_up(self) -> list[Message]:
        assert self.up is not None
        end = {"phase": Phase.UP.value, "upto": self.up.scanned}
        return [Message(Type.END, end, self.version)]

    def down_ended(self, message: Message) -> list[Message]:
        self.store.note("down done")
        return []

    def store_receipt(self, message: Message) -> list[Message]:
        record = message.body["record"]
        if record is not None:
            done = self.store.commit(Phase.DOWN, [record], self.parent)
            self.summary.receipt = done.counts.get("appended", 0) + done.counts.get("duplicate", 0) > 0
        if self.version < FILES_FROM:
            return self.fire(NO_FILES)
        return []

    def send_files(self, message: Message) -> list[Message]:
        """The parent's WANT: mark the files the root holds, send the chunks of those wanted."""
        self.files = self.store.file_link(self.parent)
        self.files.mark_at_root([bytes(sha).hex() for sha in message.body["at_root"]])
        self.file_out = FileSender(
            Phase.FILES_UP, read_wants(message.body["files"]), self.files, self.version
        )
        return self._pump_files()

    def chunk_acked(self, message: Message) -> list[Message]:
        assert self.file_out is not None
        self.file_out.on_ack(message.body)
        self.summary.files_up = self.file_out.stored
        return self._pump_files()

    def want_files(self) -> list[Message]:
        assert self.files is not None and self.file_out is not None
        self.summary.files_up = self.file_out.stored
        self.summary.file_bytes_sent = self.file_out.bytes_sent
        wants = self.files.wants()
        self.file_in = FileReceiver(Phase.FILES_DOWN, wants, self.files, self.version)
        return [want_message(Phase.FILES_DOWN, wants, [], self.version)]

    def take_chunk(self, message: Message) -> list[Message]:
        assert self.file_in is not None
        reply = self.file_in.take(message.body)
        self.summary.files_down = self.file_in.stored
        self.summary.file_bytes_received = self.file_in.bytes_received
        return [reply]

    def say_bye(self, message: Message | None = None) -> list[Message]:
        if self.file_in is not None:
            self.summary.rejected.update(self.file_in.refusals)
        self.store.note("done", summary=self.summary, parent=self.parent, heads=self.parent_heads)
        return [Message(Type.BYE, {}, self.version)]

    # -- shared by the actions -----------------------------------------------------------

    def _commit(self, message: Message) -> list[Message]:
        body = message.body
        phase = Phase(body["phase"])
        done = self.store.commit(phase, body["records"], self.parent)
        self.summary.add(done.counts, done.codes, "down")
        return [ack_message(phase, body["n"], body["upto"], done, self.version)]

    def _pump_files(self) -> list[Message]:
        """The chunks the credit allows; WANT files-down once every one is acknowledged."""
        assert self.file_out is not None
        out = self.file_out.fill()
        self.summary.file_bytes_sent = self.file_out.bytes_sent
        if self.file_out.finished:
            out.extend(self.fire(FILES_UP_DONE))
        return out

    def _pump(self) -> list[Message]:
        """The up batches the credit allows; END up once every one is acknowledged."""
        assert self.up is not None
        out = self.up.fill()
        if self.up.finished:
            out.extend(self.fire(UP_DONE))
        return out
