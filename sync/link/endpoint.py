"""A parent's sync endpoint: who may connect, and the sessions of its children.

The parent admits only children with a live certificate: its ZAP handler (RFC 27, on
``inproc://zeromq.zap.01`` in the parent's own context) looks the client's CURVE key up
in the certificates the parent holds — unrevoked, unexpired, for a node inside the
parent's subtree (:class:`sync.link.peers.PeerDirectory`; never a department: a
department links over its broker) — and never allows any key. ZAP
runs only at the handshake, so every message is checked again by the ``User-Id`` ZAP gave
its connection, and a session whose certificate is revoked (or expires) meanwhile is told
so and dropped within a tick (libzmq has no way to close one peer's connection of a
ROUTER; the child closes it, and anything more from that key is refused).

One session per node: a second HELLO with the same key while its session is live (a
message within :data:`BUSY_WINDOW`, on a connection still there) is refused with
``E_SYNC_BUSY``; it takes over a session that went quiet, or whose connection is gone.

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
from core.errors import ErrorCode, StoreError, SyncError, TongbanError
from sync.link.parent_link import ParentLink
from sync.link.parent_session import ParentSession
from sync.link.peers import NOT_LIVE, PeerDirectory
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
from sync.record.envelope import Signer
from sync.record.filestore import FileStore
from sync.record.log import RecordLog
from sync.record.verify import SERIAL, ThreadVerifier, Verifier

log = logging.getLogger(__name__)

Frames = list[bytes]
T = TypeVar("T")


# -- the parent ---------------------------------------------------------------------------

BUSY_WINDOW = 5.0
"""Seconds after its last message that a child's session counts as live: a second HELLO
with the same key within them is refused (``E_SYNC_BUSY``), after them it takes over."""


@dataclass
class _Live:
    session: ParentSession
    user_id: str
    last: float
    fd: int | None = None  # the connection's socket (libzmq's SRCFD), to know when it is gone
    gone: bool = False  # the connection is gone: what it sent is still handled, nothing waits on it


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
        files: FileStore | None = None,
        files_budget: int = 0,
    ) -> None:
        self.link = ParentLink(log, code, signer, verifier, files, files_budget)
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
            who, code = self.directory.refusal(key)
            if who == UNKNOWN_PEER:
                # One counter for every stranger: fresh keys must not grow the table.
                shown = z85.encode(key)[:8].decode() if len(key) == 32 else "?"
                log.info("refused an unknown CURVE key %s… from %r", shown, address)
            self._reject(who, code)
            return [version, request_id, b"400", code.value.encode(), b"", b""]
        return [version, request_id, b"200", b"OK", z85.encode(key), b""]

    def handle(
        self, routing_id: bytes, user_id: str | None, frames: Frames, fd: int | None = None
    ) -> list[Frames]:
        """One message from ``routing_id`` (on the connection whose socket is ``fd``); the
        messages to send back (routing id first)."""
        peer = self.directory.by_user_id(user_id)
        live = self.sessions.get(routing_id)
        if peer is None:
            self.sessions.pop(routing_id, None)
            who, code = self.directory.refusal_of_user_id(user_id)  # revoked or expired since
            return self._refuse(routing_id, who, errors.error(code, NOT_LIVE[code]))
        try:
            message = decode(frames)
            if message.type is Type.HELLO:
                self._take_over(peer.code, routing_id)
                session = ParentSession(self.link, peer, self.credit)
                live = _Live(session, user_id or "", time.monotonic(), fd)
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
                _, code = self.directory.refusal_of_user_id(live.user_id)
                error = errors.error(code, NOT_LIVE[code])
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

    def disconnected(self, fd: int) -> None:
        """The connection whose socket was ``fd`` is gone (libzmq's monitor said so): a new
        session of the same node need not wait for its session. What it sent before it went
        (a BYE) is still handled; the tick forgets the session when it has gone quiet."""
        for live in self.sessions.values():
            if live.fd == fd:
                live.gone = True

    def _take_over(self, code: str, routing_id: bytes) -> None:
        """Make room for a new session of ``code`` on ``routing_id``: its session on another
        connection that went quiet is dropped; one that spoke within :data:`BUSY_WINDOW` on
        a connection still there is live, and the new HELLO is refused (``E_SYNC_BUSY``)
        rather than evicting it. (A child killed and started again: its old connection is
        gone, :meth:`disconnected`, and the new session is served at once.)"""
        now = time.monotonic()
        for other, live in list(self.sessions.items()):
            if live.session.peer.code != code:
                continue
            if other != routing_id and not live.gone and now - live.last < BUSY_WINDOW:
                raise SyncError(ErrorCode.SYNC_BUSY, f"{code} is in a session on another connection")
            del self.sessions[other]

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
                    home.log,
                    home.code,
                    home.keys,
                    verifier=verifier,
                    credit=self.credit,
                    files=home.files,
                    files_budget=home.settings.files_budget,
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
    """Whether a child's message is an up BATCH or a file's CHUNK: committing it holds the
    store (or the disk) for a while, so other children's light messages go first."""
    return len(frames) > 1 and frames[1] in (b"BATCH", b"CHUNK")


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
    :class:`Inbox`, the tick every second, and the router's lost connections (its monitor)
    first of all. A failing socket ends it with ``SyncError``; a reply to a child that has
    gone is dropped (its session fails on the child's side)."""
    with zmq_errors("the endpoint"):
        monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(zap, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
    inbox: Inbox[tuple[bytes, Any, Frames, int | None]] = Inbox()
    next_tick = time.monotonic() + 1.0
    try:
        while not stopping():
            with zmq_errors("the endpoint"):
                ready = dict(poller.poll(0 if inbox else 200))
            # A connection lost is heard of before anything a new one says (its handshake
            # needs this loop's ZAP answer): a new session of its node does not wait for it.
            for lost in lost_connections(monitor):
                core.disconnected(lost)
            if zap in ready:
                send(zap, core.zap(receive(zap, "the ZAP handler")), "the ZAP handler")
            if router in ready:
                for _ in range(DRAIN):
                    frames = receive_ready(router, "the endpoint")
                    if frames is None:
                        break
                    user_id = frames[-1].get("User-Id") if frames else None
                    rest = [f.bytes for f in frames[1:]]
                    item = (frames[0].bytes, user_id, rest, source_fd(frames[-1]))
                    inbox.put(item, frames[0].bytes, is_upload(rest))
            if inbox:
                routing_id, user_id, rest, fd = inbox.take()
                for reply in core.handle(routing_id, user_id, rest, fd):
                    send_to_peer(router, reply)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + 1.0
                for reply in core.tick():
                    send_to_peer(router, reply)
    finally:
        with zmq_errors("the endpoint"):
            router.disable_monitor()
            monitor.close(0)


def source_fd(frame: Any) -> int | None:
    """The socket of the connection a message came in on (libzmq's ``ZMQ_SRCFD``)."""
    try:
        return int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, AttributeError, TypeError):
        return None


def lost_connections(monitor: Any) -> list[int]:
    """The sockets of the connections the router's ``monitor`` reports gone since last asked."""
    from zmq.utils.monitor import recv_monitor_message

    lost = []
    with zmq_errors("the endpoint"):
        while monitor.poll(0):
            event = recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                lost.append(int(event["value"]))
    return lost
