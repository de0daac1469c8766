"""The sockets of the link between centrals: a CURVE ROUTER that receives, a DEALER that pushes.

The receiving side (:class:`PeerServer`) binds a ROUTER as a CURVE server with its
central's transport key, and answers ZAP (RFC 27, ``inproc://zeromq.zap.01`` in a context
of its own) through its core: only a linked peer's pinned key is let in, and the ZAP
``User-Id`` of its connection is that peer's net, so every message is judged by the peer
its key belongs to. The pushing side dials the peer's endpoint with the peer's pinned
CURVE server key (:func:`dial`), waits for the handshake (:func:`await_handshake`: a key
the peer does not admit is ``E_SYNC_PEER_UNKNOWN``) and reads with a deadline
(:func:`receive_within`). What the messages say is the core's (:mod:`central.peer_link`);
zmq's errors become ours at :mod:`sync.link.zmq_boundary`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol

import zmq
from zmq.utils import z85

from core.errors import ErrorCode, SyncError, TongbanError
from sync.link.transport import ZAP_ENDPOINT, Upstream, child_socket, socket_options
from sync.link.zmq_boundary import bind, connect, receive, receive_ready, send, send_to_peer, zmq_errors

log = logging.getLogger(__name__)

Frames = list[bytes]
ZAP_DOMAIN = b"tongban-peer"
DRAIN = 64
"""Messages the server reads off its socket before it handles them."""


class PeerCore(Protocol):
    """What a receiving side answers: ZAP requests, messages, and a tick every second."""

    def zap(self, request: Frames) -> Frames: ...

    def handle(self, routing_id: bytes, user_id: str | None, frames: Frames) -> list[Frames]: ...

    def tick(self) -> None: ...


def zap_reply(request: Frames, user_id: str | None, refusal: str = "") -> Frames:
    """The ZAP answer to ``request``: allowed as ``user_id``, or refused with a code."""
    version, request_id = [*request, b"", b""][:2]
    if user_id is None:
        return [version, request_id, b"400", refusal.encode(), b"", b""]
    return [version, request_id, b"200", b"OK", user_id.encode(), b""]


def zap_key(request: Frames) -> bytes:
    """The client's CURVE key a ZAP request names (b"" for anything but CURVE)."""
    if len(request) < 7 or request[5] != b"CURVE":
        return b""
    return request[6]


class PeerServer:
    """Serve a receiving side on a thread, or on the caller's (:meth:`run`), with plain pyzmq.

    ``opener`` runs on the serving thread and returns the core, the central's CURVE secret
    and a function that closes what it opened: the store's SQLite connection is made and
    used on that thread only.
    """

    def __init__(self, opener: Callable[[], tuple[PeerCore, bytes, Callable[[], None]]], listen: str) -> None:
        self.opener = opener
        self.listen = listen
        self.endpoint = ""
        self.core: PeerCore | None = None
        self.stopping = False  # a plain flag: the nameko service sets it from another hub
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> PeerServer:
        self._thread = threading.Thread(target=self.run, name="peer-endpoint", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.endpoint and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.endpoint:
            failed = self.error
            if isinstance(failed, TongbanError):
                raise failed
            raise SyncError(ErrorCode.SYNC_UNREACHABLE, f"the peer endpoint did not start: {failed!r}")
        return self

    def stop(self) -> None:
        self.stopping = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> PeerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        """Open, bind and serve until :attr:`stopping`; a failure is kept in :attr:`error`."""
        close: Callable[[], None] | None = None
        try:
            with zmq_errors(f"the peer endpoint {self.listen}"), _sockets() as (zap, router):
                core, curve_secret, close = self.opener()
                self.core = core
                bind(zap, ZAP_ENDPOINT)  # before the ROUTER binds: no handshake without it
                socket_options(router)
                router.curve_server = True
                router.curve_secretkey = z85.encode(curve_secret)
                router.zap_domain = ZAP_DOMAIN
                router.router_mandatory = True
                self.endpoint = bind(router, self.listen)
                self._serve(core, router, zap)
        except BaseException as exc:
            self.error = exc
            log.exception("peer endpoint stopped")
        finally:
            if close is not None:
                close()

    def _serve(self, core: PeerCore, router: Any, zap: Any) -> None:
        with zmq_errors("the peer endpoint"):
            poller = zmq.Poller()
            poller.register(router, zmq.POLLIN)
            poller.register(zap, zmq.POLLIN)
        next_tick = time.monotonic() + 1.0
        while not self.stopping:
            with zmq_errors("the peer endpoint"):
                ready = dict(poller.poll(200))
            if zap in ready:
                send(zap, core.zap(receive(zap, "the ZAP handler")), "the ZAP handler")
            if router in ready:
                for _ in range(DRAIN):
                    frames = receive_ready(router, "the peer endpoint")
                    if frames is None:
                        break
                    user_id = frames[-1].get("User-Id") if frames else None
                    for reply in core.handle(frames[0].bytes, user_id, [f.bytes for f in frames[1:]]):
                        send_to_peer(router, reply)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + 1.0
                core.tick()


@contextmanager
def _sockets() -> Iterator[tuple[Any, Any]]:
    with ExitStack() as closing:
        context = zmq.Context()
        closing.callback(context.term)
        zap = context.socket(zmq.REP)
        closing.callback(zap.close, 0)
        zap.linger = 0
        router = context.socket(zmq.ROUTER)
        closing.callback(router.close, 0)
        yield zap, router


EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_DISCONNECTED


@contextmanager
def dial(keys: Any, peer: str, endpoint: str, server_key: bytes) -> Iterator[tuple[Any, Any]]:
    """A DEALER to the peer central at ``endpoint`` (CURVE, the peer's pinned ``server_key``,
    our ``keys``) in a context of its own, and the monitor of its connection."""
    with zmq_errors(f"{peer} at {endpoint}"), ExitStack() as closing:
        context = zmq.Context()
        closing.callback(context.term)
        sock = context.socket(zmq.DEALER)
        closing.callback(sock.close, 0)
        monitor = sock.get_monitor_socket(EVENTS)
        closing.callback(monitor.close, 0)
        closing.callback(sock.disable_monitor)
        child_socket(sock, keys, Upstream(endpoint, peer, server_key), retry_ms=200, retry_max_ms=2_000)
        connect(sock, endpoint)
        yield sock, monitor


def await_handshake(monitor: Any, where: str, seconds: float) -> None:
    """Wait for the CURVE handshake: ``E_SYNC_PEER_UNKNOWN`` when the peer refused our key,
    ``E_SYNC_UNREACHABLE`` when nothing answered within ``seconds``."""
    from zmq.utils.monitor import recv_monitor_message

    deadline = time.monotonic() + seconds
    with zmq_errors(where):
        while (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000) + 1):
                break
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise SyncError(ErrorCode.SYNC_PEER_UNKNOWN, f"{where} does not admit this city's key")
    raise SyncError(ErrorCode.SYNC_UNREACHABLE, where)


def receive_within(sock: Any, monitor: Any, where: str, timeout: float) -> Frames:
    """The next message; ``E_SYNC_UNREACHABLE`` as soon as the connection is lost,
    ``E_SYNC_TIMEOUT`` when nothing came within ``timeout`` seconds."""
    from zmq.utils.monitor import recv_monitor_message

    deadline = time.monotonic() + timeout
    with zmq_errors(where):
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(int(left * 1000) + 1))
            if sock in ready:
                return receive(sock, where)
            if monitor in ready and recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
                raise SyncError(ErrorCode.SYNC_UNREACHABLE, f"lost the connection to {where}")
    raise SyncError(ErrorCode.SYNC_TIMEOUT, f"{where} said nothing for {timeout:.0f} s")
