"""The link between two cities' centrals: store-and-forward of opaque messages and files.

Each central pushes what it owes a peer (:mod:`central.peer_outbox`) to the peer's
endpoint, one session per push, and receives what the peer owes it at its own endpoint
(``[peers] listen``). A session (docs/federation.md, "The link between centrals";
frames in :mod:`sync.link.peer_protocol`)::

    pusher                                   receiver
    HELLO {v, net, to, serial}     ──►       ZAP let in only a linked peer's pinned key;
                                             net is that key's peer, to is us, our newest
                                             cross-certification of it in force, unrevoked
                                   ◄──       WELCOME {have, credit, partials} | REFUSE {code}
    BATCH {n, acked, items}        ──►       one transaction: each item with seq have+1 is
                                             delivered (a message) or written (a chunk)
                                   ◄──       ACK {n, have, codes}   after the commit
    BYE                            ──►

Exactly once: the receiver's high-water mark (``in_seq``) advances in the transaction that
runs the deliver hook, so a message is delivered once and in order whatever side dies
when; the pusher forgets an item only once an ACK or a WELCOME says the peer holds it, and
resumes at ``have`` + 1 (a file at the receiver's partial offset). A hook's refusal (a
``TongbanError`` that is no ``StoreError``) is kept with its code under a savepoint and the
mark moves on; a ``StoreError`` rolls the batch back and ends the session. A file is taken
only when a delivered message said it will come (:func:`central.peer_link_store.expect_file`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from central import config as central_config
from central import peer_link_store
from central.authority import Central, open_central
from central.crossing import Crossing
from core.clock import Clock
from core.errors import (
    AuthorityError,
    ConfigError,
    ErrorCode,
    InternalError,
    StoreError,
    SyncError,
    TongbanError,
    error,
)  # fmt: skip
from core.federation import admit_link
from sync.link.peer_protocol import (
    BATCH_BYTES,
    BATCH_ITEMS,
    CHUNK_BYTES,
    CREDIT,
    MAX_PARTIALS,
    VERSION,
    Message,
    Type,
    code_of,
    decode,
    encode,
    refuse_message,
)
from sync.link.peer_transport import (
    Frames,
    PeerServer,
    await_handshake,
    dial,
    receive_within,
    zap_key,
    zap_reply,
)
from sync.link.zmq_boundary import send
from sync.projection.peers import peer_state
from sync.record.db import transaction
from sync.record.filestore import FileStore

log = logging.getLogger(__name__)

Deliver = Callable[[Database, str, bytes], None]
"""The receiving side's hook: ``deliver(db, peer, data)``, inside the delivering transaction."""

MAX_UNREFERENCED = 3
"""Files nobody expects that one session may offer before it is ended."""
SESSION_IDLE = 120.0
"""The receiver forgets a session that said nothing for this long (seconds)."""


# -- the receiving side -------------------------------------------------------------------


@dataclass
class _Session:
    peer: str
    last: float
    n: int = 0  # the last batch handled
    unreferenced: int = 0


class PeerReceiver:
    """The receiving side's logic without sockets: ZAP answers, messages in, replies out."""

    def __init__(
        self,
        db: Database,
        files: FileStore,
        net: str,
        clock: Clock,
        deliver: Deliver,
        *,
        credit: int = CREDIT,
        idle: float = SESSION_IDLE,
    ) -> None:
        self.db, self.files, self.net, self.clock, self.deliver = db, files, net, clock, deliver
        self.credit, self.idle = credit, idle
        self.sessions: dict[bytes, _Session] = {}
        self.strangers = 0  # keys refused at ZAP: one counter, whatever the key

    def zap(self, request: Frames) -> Frames:
        key = zap_key(request)
        peer = peer_link_store.peer_of_key(self.db, key) if len(key) == 32 else None
        if peer is None:
            self.strangers += 1
            log.info("refused a CURVE key that is no linked peer's")
        return zap_reply(request, peer, ErrorCode.SYNC_PEER_UNKNOWN.value)

    def handle(self, routing_id: bytes, user_id: str | None, frames: Frames) -> list[Frames]:
        """One message from the peer ``user_id`` (the net ZAP gave its key); the replies."""
        peer = user_id or ""
        try:
            if not peer or peer_link_store.link_of(self.db, peer) is None:
                raise SyncError(ErrorCode.SYNC_PEER_UNKNOWN, "the key is no linked peer's any more")
            message = decode(frames)
            if message.type is Type.HELLO:
                return [[routing_id, *encode(self._hello(routing_id, peer, message.body))]]
            session = self.sessions.get(routing_id)
            if session is None or session.peer != peer:
                # A connection whose session ended or was taken over by a newer one (its
                # pusher died and came back): told, and not noted as the peer's error.
                stray = SyncError(ErrorCode.SYNC_PROTOCOL, f"{message.type.value} outside a session")
                return self._refuse(routing_id, "", stray)
            session.last = time.monotonic()
            if message.type is Type.BYE:
                del self.sessions[routing_id]
                return []
            if message.type is not Type.BATCH:
                raise SyncError(ErrorCode.SYNC_PROTOCOL, f"a pusher does not send {message.type.value}")
            return [[routing_id, *encode(self._batch(session, message.body))]]
        except TongbanError as exc:
            return self._refuse(routing_id, peer, exc)
        except Exception:  # a fault of this side's: it ends the one session, not the endpoint
            log.exception("peer session with %s failed", peer)
            return self._refuse(routing_id, peer, InternalError(ErrorCode.INTERNAL, "the receiver failed"))

    def tick(self) -> None:
        now = time.monotonic()
        for routing_id, session in list(self.sessions.items()):
            if now - session.last > self.idle:
                del self.sessions[routing_id]

    def _refuse(self, routing_id: bytes, peer: str, exc: TongbanError) -> list[Frames]:
        self.sessions.pop(routing_id, None)
        if isinstance(exc, StoreError):
            log.error("peer session with %s: %s", peer, exc.render("en"))
        if peer and peer_link_store.link_of(self.db, peer) is not None:
            _note_error(self.db, peer, exc.code)
        return [[routing_id, *encode(refuse_message(exc))]]

    def _admit(self, peer: str, to: str) -> None:
        admit_link(self.net, peer_state(self.db, peer), net=peer, to=to, now=self.clock.now())

    def _hello(self, routing_id: bytes, peer: str, body: dict[str, Any]) -> Message:
        if body["net"] != peer:
            raise error(ErrorCode.PEER_UNKNOWN, f"the key of {peer} says it is {body['net']}")
        self._admit(peer, body["to"])
        for other, session in list(self.sessions.items()):  # one session per peer: the newest
            if session.peer == peer:
                del self.sessions[other]
        self.sessions[routing_id] = _Session(peer, time.monotonic())
        partials = []
        for sha, _ in peer_link_store.expected(self.db, peer, MAX_PARTIALS):
            if offset := self.files.partial_offset(sha):
                partials.append([sha, offset])
        with transaction(self.db):
            peer_link_store.clear_error(self.db, peer)
        have = peer_link_store.in_seq(self.db, peer)
        welcome = {"v": VERSION, "net": self.net, "have": have, "credit": self.credit, "partials": partials}
        return Message(Type.WELCOME, welcome)

    def _batch(self, session: _Session, body: dict[str, Any]) -> Message:
        n, acked = body["n"], body["acked"]
        if n != session.n + 1 or acked > session.n:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"batch {n} after {session.n}")
        if n - acked > self.credit:
            raise SyncError(
                ErrorCode.SYNC_CREDIT, f"batch {n} with {acked} acknowledged, credit {self.credit}"
            )
        self._admit(session.peer, self.net)  # a revocation meanwhile ends the session
        codes: Counter[str] = Counter()
        now = self.clock.now()
        with transaction(self.db):
            have = peer_link_store.in_seq(self.db, session.peer)
            for item in body["items"]:
                seq = item["seq"]
                if seq <= have:
                    continue  # received before: not delivered again
                if seq != have + 1:
                    raise SyncError(ErrorCode.SYNC_PROTOCOL, f"item {seq} after {have}")
                done = (
                    self._message(session, item, now, codes)
                    if "data" in item
                    else self._chunk(session, item, now, codes)
                )
                if done:
                    have = seq
            peer_link_store.received(self.db, session.peer, have, now)
        session.n = n
        return Message(Type.ACK, {"n": n, "have": have, "codes": dict(codes)})

    def _message(self, session: _Session, item: dict[str, Any], now: int, codes: Counter[str]) -> bool:
        try:
            with transaction(self.db):  # a savepoint: a refusal writes nothing of the hook's
                self.deliver(self.db, session.peer, item["data"])
        except StoreError:
            raise
        except TongbanError as exc:
            peer_link_store.refuse(
                self.db, session.peer, item["seq"], exc.code, exc.detail, now, item["data"]
            )
            codes[exc.code.value] += 1
        return True

    def _chunk(self, session: _Session, item: dict[str, Any], now: int, codes: Counter[str]) -> bool:
        """Write a file's chunk; whether the file's item is done (whole, or refused)."""
        peer, seq, sha, size = session.peer, item["seq"], item["sha"], item["size"]
        if self.files.has(sha):  # whole already (the last commit was cut after the file was)
            peer_link_store.arrived(self.db, peer, sha)
            return True
        wanted = peer_link_store.expected_size(self.db, peer, sha)
        if wanted is None or wanted != size:
            if wanted is None and session.unreferenced >= MAX_UNREFERENCED:
                raise SyncError(ErrorCode.FILE_UNREFERENCED, f"{peer} offered files nobody expects")
            session.unreferenced += wanted is None
            code = ErrorCode.FILE_UNREFERENCED if wanted is None else ErrorCode.FILE_HASH
            detail = f"{sha}: not expected" if wanted is None else f"{sha}: {size} bytes, expected {wanted}"
            peer_link_store.refuse(self.db, peer, seq, code, detail, now)
            codes[code.value] += 1
            return True
        if self.files.append(sha, item["offset"], item["chunk"]) < size:
            return False
        try:
            self.files.finish(sha, size)
        except StoreError as exc:
            if exc.code is not ErrorCode.FILE_HASH:
                raise
            peer_link_store.refuse(self.db, peer, seq, exc.code, exc.detail, now)
            codes[exc.code.value] += 1
            return True
        peer_link_store.arrived(self.db, peer, sha)
        return True


def _note_error(db: Database, peer: str, code: ErrorCode) -> None:
    try:
        with transaction(db):
            peer_link_store.note_error(db, peer, code)
    except StoreError:  # noting must never take the link down
        log.exception("could not note the link's error with %s", peer)


# -- the pushing side ---------------------------------------------------------------------


@dataclass
class PushResult:
    """How a push to ``peer`` ended: the items the peer acknowledged in it, the bytes of
    file chunks sent, the peer's high-water mark last heard, the error of a failure."""

    peer: str
    ok: bool = False
    acked: int = 0
    chunk_bytes: int = 0
    have: int = 0
    error: TongbanError | None = None


def push(central: Central, peer: str, *, timeout: float = 10.0, connect_timeout: float = 5.0) -> PushResult:
    """One session pushing what ``central`` owes ``peer``; never raises for the link.

    Nothing is pushed to a peer not linked, nor whose cross-certification is not in force
    or is revoked; nothing connects when nothing is owed (and an idle link is two reads: the
    agreement is checked once something waits).
    """
    db, result = central.store.db, PushResult(peer)
    try:
        link = peer_link_store.link_of(db, peer)
        if link is None:
            raise SyncError(ErrorCode.SYNC_PEER_UNKNOWN, f"{peer} has no endpoint and CURVE key")
        if peer_link_store.waiting_count(db, peer) == 0:  # nothing owed: nothing to check or send
            result.ok = True
            return result
        own = central.config.central.net
        held = peer_state(db, peer)
        try:
            cert = admit_link(own, held, net=peer, to=own, now=central.store.log.clock.now())
        except AuthorityError as exc:
            # A city that ended the agreement still tells the peer so (the notice is all that
            # is owed: the crossing case voids the rest); nothing else goes to a revoked peer.
            if exc.code is not ErrorCode.PEER_REVOKED or held is None or held.newest is None:
                raise
            cert = held.newest
        where = f"{peer} at {link.endpoint}"
        with dial(central.keys, peer, link.endpoint, link.curve_pk) as (sock, monitor):
            await_handshake(monitor, where, connect_timeout)
            session = _Push(central, peer, result, lambda m: send(sock, encode(m), where))
            session.send(Message(Type.HELLO, {"v": VERSION, "net": own, "to": peer, "serial": cert.serial}))
            while not session.done:
                session.on_message(decode(receive_within(sock, monitor, where, timeout)))
        result.ok = True
    except TongbanError as exc:
        result.error = exc
        _note_error(db, peer, exc.code)
    return result


def push_all(central: Central, **options: float) -> list[PushResult]:
    """:func:`push` to every linked peer (one read finds those owed anything: the others'
    pushes end at once, ``ok``)."""
    owed = peer_link_store.owed(central.store.db)
    return [
        push(central, link.peer, **options) if link.peer in owed else PushResult(link.peer, ok=True)
        for link in peer_link_store.links(central.store.db)
    ]


class _Push:
    """The pushing side of one session: HELLO sent, then batches under credit to the end."""

    def __init__(
        self, central: Central, peer: str, result: PushResult, send: Callable[[Message], None]
    ) -> None:
        self.central, self.peer, self.result, self._send = central, peer, result, send
        self.db = central.store.db
        self.done = False
        self.welcomed = False
        self.credit = 1
        self.sent_n = self.acked_n = 0
        self.have = 0
        self.batches: Iterator[list[dict[str, Any]]] = iter(())

    def send(self, message: Message) -> None:
        self._send(message)

    def on_message(self, message: Message) -> None:
        if message.type is Type.REFUSE:
            raise error(code_of(message.body["code"]), f"{self.peer}: {message.body['detail']}")
        if message.type is Type.WELCOME and not self.welcomed:
            if message.body["net"] != self.peer:
                raise error(ErrorCode.PEER_MISADDRESSED, f"{self.peer} answered as {message.body['net']}")
            self.welcomed = True
            self.credit = min(message.body["credit"], CREDIT)
            self._heard(message.body["have"], acknowledged=False)
            partials = {sha: offset for sha, offset in message.body["partials"]}
            self.batches = _batches(self, partials, peer_link_store.last_seq(self.db, self.peer))
        elif message.type is Type.ACK and self.welcomed and message.body["n"] == self.acked_n + 1:
            self.acked_n = message.body["n"]
            self._heard(message.body["have"], acknowledged=True)
        else:
            raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{message.type.value} out of turn")
        self._fill()

    def _heard(self, have: int, *, acknowledged: bool) -> None:
        """The peer holds everything through ``have`` (its WELCOME, or an ACK: a delivery)."""
        if acknowledged:
            self.result.acked += max(0, have - self.have)
        self.have = max(self.have, have)
        self.result.have = self.have
        now = self.central.store.log.clock.now() if acknowledged else None
        with transaction(self.db):
            peer_link_store.acked(self.db, self.peer, self.have, now)

    def _fill(self) -> None:
        while self.sent_n - self.acked_n < self.credit:
            items = next(self.batches, None)
            if items is None:
                break
            self.sent_n += 1
            self.send(Message(Type.BATCH, {"n": self.sent_n, "acked": self.acked_n, "items": items}))
        if self.sent_n == self.acked_n:
            self.send(Message(Type.BYE, {}))
            self.done = True


def _batches(push: _Push, partials: dict[str, int], last: int) -> Iterator[list[dict[str, Any]]]:
    """The batches of what is owed through ``last``, read as they go (a file chunk by chunk,
    from the receiver's partial offset; the rest of a file the receiver is done with is
    skipped)."""
    batch: list[dict[str, Any]] = []
    size = 0
    files = push.central.store.files
    after = push.have
    while after < last:
        owed = [item for item in peer_link_store.waiting(push.db, push.peer, after, 16) if item.seq <= last]
        if not owed:
            break
        for item in owed:
            after = item.seq
            for entry in _items_of(item, files, partials, push):
                batch.append(entry)
                size += len(entry.get("data", entry.get("chunk", b"")))
                if size >= BATCH_BYTES or len(batch) >= BATCH_ITEMS:
                    yield batch
                    batch, size = [], 0
    if batch:
        yield batch


def _items_of(
    item: peer_link_store.OutItem, files: FileStore, partials: dict[str, int], push: _Push
) -> Iterator[dict[str, Any]]:
    if item.data is not None:
        yield {"seq": item.seq, "data": item.data}
        return
    sha = item.sha or ""
    offset = min(partials.get(sha, 0), item.size)
    while True:
        if push.have >= item.seq:  # the receiver took it whole, or refused it
            return
        chunk = files.read(sha, offset, CHUNK_BYTES) if offset < item.size else b""
        if len(chunk) < min(CHUNK_BYTES, item.size - offset):
            raise StoreError(ErrorCode.FILE_MISSING, f"{sha}: held file shorter than {item.size} bytes")
        push.result.chunk_bytes += len(chunk)
        yield {"seq": item.seq, "sha": sha, "size": item.size, "offset": offset, "chunk": chunk}
        offset += len(chunk)
        if offset >= item.size:
            return


@dataclass
class Pacer:
    """When each linked peer is due a push: every ``interval`` seconds."""

    interval: float
    last: dict[str, float] = field(default_factory=dict)

    def due(self, peer: str, now: float) -> bool:
        return now - self.last.get(peer, -self.interval) >= self.interval

    def pushed(self, peer: str, now: float) -> None:
        self.last[peer] = now


def server(home: Path, deliver: Deliver | None, clock: Clock, listen: str | None = None) -> PeerServer:
    """The receiving side of central at ``home``, delivering through ``deliver`` (None: the
    crossing case's, :meth:`central.crossing.Crossing.deliver`), at ``listen`` (default
    ``[peers] listen``); start it, or :meth:`PeerServer.run` it."""
    endpoint = listen or central_config.load(home).peers.listen
    if not endpoint:
        raise ConfigError(ErrorCode.CONFIG, f"{home}: [peers] listen is not set")

    def opener() -> tuple[PeerReceiver, bytes, Callable[[], None]]:
        central = open_central(home, clock)
        store = central.store
        hook = deliver if deliver is not None else Crossing(central).deliver
        core = PeerReceiver(store.db, store.files, central.config.central.net, clock, hook)
        return core, bytes(central.keys.curve_secret), central.close

    return PeerServer(opener, endpoint)
