"""A parent's sync endpoint: who may connect, and the sessions of its children.

The parent admits only children with a live certificate: its ZAP handler (RFC 27, on
``inproc://zeromq.zap.01`` in the parent's own context) looks the client's CURVE key up
in the certificates the parent holds — unrevoked, unexpired, for a node inside the
parent's subtree (never a department's: a department links over its broker) — and never
allows any key. ZAP runs only at the handshake, so every message is checked again by the
``User-Id`` ZAP gave its connection, and a session whose certificate is revoked meanwhile
is told ``E_SYNC_PEER_REVOKED`` and dropped within a tick (libzmq has no way to close one
peer's connection of a ROUTER; the child closes it, and anything more from that key is
refused).

:class:`ParentCore` is the parent's logic without a socket loop, driven by
:class:`ParentServer` (a thread with plain pyzmq, for tests, benchmarks and scripts) or by
the nameko entrypoint in :mod:`sync.link.services`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import zmq
from zmq.utils import z85

from core import errors
from core.admin import within
from core.errors import ErrorCode, StoreError, SyncError, TongbanError
from sync.link.parent_link import ParentLink
from sync.link.parent_session import ParentSession, Peer
from sync.link.protocol import CREDIT, VERSIONS, Type, decode, encode, error_message
from sync.link.session import State, Summary
from sync.link.transport import (
    SESSION_IDLE,
    UNKNOWN_PEER,
    ZAP_DOMAIN,
    ZAP_ENDPOINT,
    Home,
    socket_options,
)
from sync.link.zmq_boundary import bind, receive, receive_ready, send, send_to_peer, zmq_errors
from sync.record import trust
from sync.record.envelope import Signer
from sync.record.log import RecordLog
from sync.record.verify import SERIAL, ThreadVerifier, Verifier

log = logging.getLogger(__name__)

Frames = list[bytes]
T = TypeVar("T")


# -- who may connect --------------------------------------------------------------------


class PeerDirectory:
    """The children a parent admits, by CURVE key, from its ``certs`` table."""

    def __init__(self, log: RecordLog, code: str) -> None:
        self.log = log
        self.code = code
        self._mark: tuple[Any, ...] | None = None
        self.live: dict[bytes, Peer] = {}
        self.revoked: dict[bytes, str] = {}
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the certificates if any changed (or a certificate expired); whether it did."""
        now = self.log.clock.now()
        mark = (trust.directory_mark(self.log.db), now // 60)
        if mark == self._mark:
            return False
        self._mark = mark
        live: dict[bytes, Peer] = {}
        revoked: dict[bytes, str] = {}
        for cert in trust.certificates(self.log.db):
            if cert.code == self.code or not within(cert.code, self.code) or cert.tier == "department":
                continue  # a department links to central over its broker, never over ZeroMQ
            if cert.revoked:
                revoked[cert.curve_pk] = cert.code
            elif cert.live(now):
                live[cert.curve_pk] = Peer(cert.code, cert.cert_id, cert.curve_pk)
        self.live, self.revoked = live, revoked
        return True

    def by_user_id(self, user_id: str | None) -> Peer | None:
        return self.live.get(_key_of(user_id))

    def revoked_by_user_id(self, user_id: str | None) -> str | None:
        """The code of a revoked child whose connection ``user_id`` names, if it is one."""
        return self.revoked.get(_key_of(user_id))


def _key_of(user_id: str | None) -> bytes:
    """The CURVE key ZAP gave a connection as its ``User-Id`` (b"" if none)."""
    if not user_id:
        return b""
    try:
        return bytes(z85.decode(user_id.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        return b""


# -- the parent ---------------------------------------------------------------------------


@dataclass
class _Live:
    session: ParentSession
    user_id: str
    last: float


class ParentCore:
    """A parent's sync endpoint without its socket loop: ZAP answers, messages in, replies out."""

    def __init__(
        self,
        log: RecordLog,
        code: str,
        signer: Signer | None,
        *,
        verifier: Verifier = SERIAL,
        credit: int = CREDIT,
        idle: float = SESSION_IDLE,
    ) -> None:
        self.link = ParentLink(log, code, signer, verifier)
        self.directory = PeerDirectory(log, code)
        self.credit = credit
        self.idle = idle
        self.sessions: dict[bytes, _Live] = {}
        self.rejections: Counter[tuple[str, str]] = Counter()
        self.completed: list[tuple[str, Summary]] = []

    # ZAP (RFC 27): [version, request id, domain, address, identity, mechanism, key]
    def zap(self, request: Frames) -> Frames:
        if len(request) < 6:
            return [b"1.0", b"", b"400", b"malformed ZAP request", b"", b""]
        version, request_id, _domain, address, _identity, mechanism, *credentials = request
        self.directory.refresh()
        key = credentials[0] if mechanism == b"CURVE" and credentials else b""
        peer = self.directory.live.get(key)
        if peer is None:
            code = (
                ErrorCode.SYNC_PEER_REVOKED if key in self.directory.revoked else ErrorCode.SYNC_PEER_UNKNOWN
            )
            who = self.directory.revoked.get(key)
            if who is None:
                # One counter for every stranger: fresh keys must not grow the table.
                who = UNKNOWN_PEER
                shown = z85.encode(key)[:8].decode() if len(key) == 32 else "?"
                log.info("refused an unknown CURVE key %s… from %r", shown, address)
            self._reject(who, code)
            return [version, request_id, b"400", code.value.encode(), b"", b""]
        return [version, request_id, b"200", b"OK", z85.encode(key), b""]

    def handle(self, routing_id: bytes, user_id: str | None, frames: Frames) -> list[Frames]:
        """One message from ``routing_id``; the messages to send back (routing id first)."""
        peer = self.directory.by_user_id(user_id)
        live = self.sessions.get(routing_id)
        if peer is None:
            self.sessions.pop(routing_id, None)
            revoked = self.directory.revoked_by_user_id(user_id)
            if revoked is not None:  # a connection made before the revocation
                error = SyncError(ErrorCode.SYNC_PEER_REVOKED, "the certificate is no longer valid")
                return self._refuse(routing_id, revoked, error)
            return self._refuse(
                routing_id, UNKNOWN_PEER, SyncError(ErrorCode.SYNC_PEER_UNKNOWN, "no live certificate")
            )
        try:
            message = decode(frames)
            if message.type is Type.HELLO:
                self._forget(peer.code)
                live = _Live(ParentSession(self.link, peer, self.credit), user_id or "", time.monotonic())
                self.sessions[routing_id] = live
            elif live is None or live.user_id != user_id:
                raise SyncError(ErrorCode.SYNC_PROTOCOL, f"{message.type.value} outside a session")
            live.last = time.monotonic()
            replies = live.session.on_message(message)
        except StoreError as exc:  # this side's store: the child is told, and tries again later
            self.sessions.pop(routing_id, None)
            log.error("sync with %s: %s", peer.code, exc.render("en"))
            return self._refuse(routing_id, peer.code, exc, live)
        except TongbanError as exc:
            self.sessions.pop(routing_id, None)
            return self._refuse(routing_id, peer.code, exc, live)
        except Exception:  # a fault of this side's: it fails the one session, not the endpoint
            self.sessions.pop(routing_id, None)
            log.exception("sync session with %s failed", peer.code)
            error = SyncError(ErrorCode.SYNC_PROTOCOL, "the parent could not handle this message")
            return self._refuse(routing_id, peer.code, error, live)
        if live.session.state is State.DONE:
            self.sessions.pop(routing_id, None)
            self.completed.append((peer.code, live.session.summary))
            self.completed[:] = self.completed[-100:]
        return [[routing_id, *encode(reply)] for reply in replies]

    def tick(self) -> list[Frames]:
        """Drop sessions whose certificate was revoked (telling them) or that went quiet;
        pass the root's new records to children still uploading (the news phase)."""
        self.directory.refresh()
        out: list[Frames] = []
        now = time.monotonic()
        try:
            root_seq = self.link.root_seq() if self.sessions else 0
        except StoreError:  # no news this tick; the next one asks again
            log.exception("could not read the root's head")
            root_seq = 0
        for routing_id, live in list(self.sessions.items()):
            if self.directory.by_user_id(live.user_id) is None:
                del self.sessions[routing_id]
                error = SyncError(ErrorCode.SYNC_PEER_REVOKED, "the certificate is no longer valid")
                out.extend(self._refuse(routing_id, live.session.peer.code, error, live))
            elif now - live.last > self.idle:
                del self.sessions[routing_id]
            else:
                out.extend(self._news(routing_id, live, root_seq))
        return out

    def _news(self, routing_id: bytes, live: _Live, root_seq: int) -> list[Frames]:
        try:
            news = live.session.news(root_seq)
        except TongbanError as exc:
            self.sessions.pop(routing_id, None)
            if isinstance(exc, StoreError):
                log.error("could not pass news to %s: %s", live.session.peer.code, exc.render("en"))
            return self._refuse(routing_id, live.session.peer.code, exc, live)
        return [[routing_id, *encode(message)] for message in news]

    def _forget(self, code: str) -> None:
        for routing_id, live in list(self.sessions.items()):
            if live.session.peer.code == code:
                del self.sessions[routing_id]

    def _refuse(
        self, routing_id: bytes, who: str, exc: TongbanError, live: _Live | None = None
    ) -> list[Frames]:
        """ERROR to ``routing_id``, in its session's version if it has one."""
        self._reject(who, exc.code)
        version = live.session.version if live is not None else VERSIONS[0]
        return [[routing_id, *encode(error_message(exc, version))]]

    def _reject(self, who: str, code: ErrorCode) -> None:
        self.rejections[(who, code.value)] += 1
        try:
            self.link.count_protocol_error(who, code)
        except StoreError:  # counting must never take the endpoint down
            log.exception("could not count a rejection")


class ParentServer:
    """Serve a parent's sync endpoint on a thread, with plain pyzmq (no eventlet).

    ``opener`` is called on the server's thread and returns the :class:`Home` it serves,
    so the SQLite connection is made and used on that thread only. Without a ``verifier``
    the server checks batches' signatures on a :class:`ThreadVerifier` of its own, on the
    other cores while its thread decodes and commits.
    """

    def __init__(
        self,
        opener: Callable[[], Home],
        listen: str,
        *,
        verifier: Verifier | None = None,
        credit: int = CREDIT,
    ) -> None:
        self.opener = opener
        self.listen = listen
        self.verifier = verifier
        self.credit = credit
        self.endpoint = ""
        self.core: ParentCore | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sync-parent", daemon=True)

    def start(self, timeout: float = 10.0) -> ParentServer:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            failed = self._error
            if isinstance(failed, TongbanError):  # a bad [sync] listen is the operator's to fix
                raise errors.error(failed.code, f"the endpoint did not start: {failed.detail}") from failed
            raise SyncError(ErrorCode.SYNC_UNREACHABLE, f"the endpoint did not start: {failed!r}") from failed
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> ParentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        home = None
        own = ThreadVerifier() if self.verifier is None else None
        try:
            with zmq_errors(f"the endpoint {self.listen}"), _sockets() as (zap, router):
                home = self.opener()
                verifier = self.verifier or own or SERIAL
                self.core = core = ParentCore(
                    home.log, home.code, home.keys, verifier=verifier, credit=self.credit
                )
                bind(zap, ZAP_ENDPOINT)  # before the ROUTER binds: no handshake without it
                configure_router(router, home.keys.curve_secret)
                self.endpoint = bind(router, self.listen)
                self._ready.set()
                serve_loop(core, router, zap, self._stop.is_set)
        except BaseException as exc:  # reported by start(); the thread must not die silently
            self._error = exc
            self._ready.set()
            log.exception("sync endpoint stopped")
        finally:
            if own is not None:
                own.close()
            if home is not None:
                home.close()


@contextmanager
def _sockets() -> Iterator[tuple[Any, Any]]:
    """A ZAP handler's REP and a ROUTER in a context of their own; closed on leaving.
    Run inside :func:`zmq_errors`."""
    with ExitStack() as closing:
        context = zmq.Context()
        closing.callback(context.term)
        zap = context.socket(zmq.REP)
        closing.callback(zap.close, 0)
        zap.linger = 0
        router = context.socket(zmq.ROUTER)
        closing.callback(router.close, 0)
        yield zap, router


def configure_router(router: Any, curve_secret: bytes) -> None:
    socket_options(router)
    router.curve_server = True
    router.curve_secretkey = z85.encode(curve_secret)
    router.zap_domain = ZAP_DOMAIN
    router.router_mandatory = True


def is_upload(frames: Frames) -> bool:
    """Whether a child's message is an up BATCH: committing it holds the store for a while."""
    return len(frames) > 1 and frames[1] == b"BATCH"


class Inbox(Generic[T]):
    """What waits for a parent's store, handed out so that uploads do not hold up the rest.

    A parent serving many children commits their up batches one at a time, each taking the
    store for a while. Everything else a child sends (HELLO, the ACKs of the revocations and
    down phases, END, BYE) costs little and moves its session on: a child's revocations
    phase, its down phase and its receipt should not wait behind other children's uploads.
    So :meth:`take` hands out the oldest light item whose sender has nothing older waiting
    (one connection's messages stay in their order), else the oldest item.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[bytes | None, bool, T]] = []

    def put(self, item: T, sender: bytes | None = None, heavy: bool = False) -> None:
        self._waiting.append((sender, heavy, item))

    def take(self) -> T:
        """The next item (``IndexError`` when none waits)."""
        busy: set[bytes | None] = set()
        for index, (sender, heavy, _) in enumerate(self._waiting):
            if not heavy and (sender is None or sender not in busy):
                return self._waiting.pop(index)[2]
            busy.add(sender)
        return self._waiting.pop(0)[2]

    def __len__(self) -> int:
        return len(self._waiting)


DRAIN = 256
"""Messages a parent reads off its socket before it handles the next one."""


def serve_loop(core: ParentCore, router: Any, zap: Any, stopping: Callable[[], bool]) -> None:
    """Serve ``router`` and ``zap`` until ``stopping()``: ZAP at once, messages through an
    :class:`Inbox`, the tick every second. A failing socket ends it with ``SyncError``; a
    reply to a child that has gone is dropped (its session fails on the child's side)."""
    with zmq_errors("the endpoint"):
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(zap, zmq.POLLIN)
    inbox: Inbox[tuple[bytes, Any, Frames]] = Inbox()
    next_tick = time.monotonic() + 1.0
    while not stopping():
        with zmq_errors("the endpoint"):
            ready = poller.poll(0 if inbox else 200)
        for sock, _ in ready:
            if sock is zap:
                send(zap, core.zap(receive(zap, "the ZAP handler")), "the ZAP handler")
                continue
            for _ in range(DRAIN):
                frames = receive_ready(router, "the endpoint")
                if frames is None:
                    break
                user_id = frames[-1].get("User-Id") if frames else None
                rest = [f.bytes for f in frames[1:]]
                inbox.put((frames[0].bytes, user_id, rest), frames[0].bytes, is_upload(rest))
        if inbox:
            routing_id, user_id, rest = inbox.take()
            for reply in core.handle(routing_id, user_id, rest):
                send_to_peer(router, reply)
        if time.monotonic() >= next_tick:
            next_tick = time.monotonic() + 1.0
            for reply in core.tick():
                send_to_peer(router, reply)
