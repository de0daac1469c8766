"""Sync links over ZeroMQ, the child's side: a DEALER to the parent's ROUTER, CURVE-encrypted.

The child knows its parent's CURVE key from the parent's certificate in its own log, never
from the network; the parent's side is :mod:`sync.link.endpoint`. ZMTP heartbeats find dead
connections; libzmq reconnects with a growing interval. A session that loses its
connection fails at once (the parent knows no session on a new one), or on its timeout if
nothing arrives, and the next one resumes from the checkpoints. :func:`sync_once` runs
one session and reports how it ended, the error of any failure with its code (zmq's are
translated at :mod:`sync.link.zmq_boundary`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq
from zmq.utils import z85

from core.errors import (
    AuthorityError,
    ConfigError,
    EnrollmentError,
    ErrorCode,
    StoreError,
    SyncError,
    TongbanError,
)
from sync.link.child_link import ChildLink
from sync.link.child_session import ChildSession
from sync.link.protocol import (
    CHUNK_BYTES,
    CREDIT,
    MAX_TRANSPORT,
    Message,
    Type,
    decode,
    encode,
    error_message,
)
from sync.link.session import Summary
from sync.link.store import set_state
from sync.link.zmq_boundary import connect, receive, send, zmq_errors
from sync.record import trust
from sync.record.filestore import FileStore
from sync.record.log import RecordLog
from sync.record.outcome import Heads
from sync.record.verify import SERIAL, Verifier

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"tongban-sync"
HEARTBEAT_MS = 2_000
HEARTBEAT_TIMEOUT_MS = 10_000
UNKNOWN_PEER = "unknown"
"""The peer name every refusal of a key that belongs to no certificate is counted under."""
SESSION_IDLE = 120.0
"""A parent forgets a session that said nothing for this long (seconds)."""


def socket_options(sock: Any) -> None:
    sock.linger = 0
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_TRANSPORT)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)


def child_socket(sock: Any, keys: Any, upstream: Upstream, *, retry_ms: int, retry_max_ms: int) -> None:
    """A child's DEALER to ``upstream``: CURVE with the node's keys and the parent's key
    from its certificate, heartbeats, and libzmq's reconnect interval."""
    socket_options(sock)
    sock.setsockopt(zmq.RECONNECT_IVL, retry_ms)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, retry_max_ms)
    sock.curve_secretkey = z85.encode(keys.curve_secret)
    sock.curve_publickey = z85.encode(keys.curve_public)
    sock.curve_serverkey = z85.encode(upstream.server_key)


@dataclass(frozen=True)
class LinkSettings:
    """A store's sync settings, from its configuration file's ``[sync]`` section."""

    listen: str = ""
    parent: str = ""
    fallback: str = ""
    direct_to_central: bool = False
    interval: int = 60
    files_up_kbit: int = 0  # cap on the files the child uploads, kbit/s (0: none)
    files_budget: int = 0  # bytes the store's files may take ([files] budget_mb; 0: no bound)


class TokenBucket:
    """The child's cap on what it uploads of files: ``kbit`` kbit/s, a burst of one chunk.
    :meth:`take` waits until ``n`` bytes may go (``clock`` and ``sleep`` injectable)."""

    def __init__(
        self,
        kbit: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = kbit * 1000 / 8  # bytes a second
        self.burst = float(CHUNK_BYTES)
        self.tokens = self.burst
        self.clock, self.sleep = clock, sleep
        self.at = clock()
        self.waited = 0.0

    def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= n
        if self.tokens < 0:
            wait = -self.tokens / self.rate
            self.waited += wait
            self.sleep(wait)
            self.at = self.clock()
            self.tokens = 0.0


class Home(Protocol):
    """An opened store with its keys: what a link needs of a node or of central.

    The link moves records and nothing else; the work a store does around a session (a
    node's status report once the parent has welcomed it, a town's renewal of its
    villages' grants after a good session) is the home's, behind its two hooks.
    """

    log: RecordLog
    keys: Any  # sync.record.keys.NodeKeys: signs, and holds the CURVE secret
    code: str
    parent: str  # the parent's code; "" for central
    settings: LinkSettings

    @property
    def files(self) -> FileStore | None:
        """The store's files (the files phase moves them)."""

    def welcomed(self, parent_heads: Heads, backlog: int, version: int) -> None:
        """The parent welcomed a session of protocol ``version`` with ``parent_heads``;
        nothing has gone up yet and ``backlog`` records of this node's subtree wait to.
        Whatever this appends goes up in the same session. Must not raise for anything but
        the store itself."""

    def synced(self, result: SyncResult) -> None:
        """A session ended well (the agent calls this after it)."""

    def signed_through(self) -> int:
        """The highest seq of its own origin this store has signed (its watermark,
        :mod:`sync.record.watermark`; 0: not known). A record of its origin beyond it that
        comes down was signed with its key by someone else."""

    def close(self) -> None: ...


# -- the child ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """Where a child syncs: an endpoint and the key its certificate gives it."""

    endpoint: str
    code: str
    server_key: bytes


@dataclass
class Traffic:
    """Bytes of the session's messages as the child sent and received them (ZMTP frames,
    before CURVE's per-message overhead of a few dozen bytes)."""

    sent: int = 0
    received: int = 0
    file_chunks: int = 0  # bytes of file chunks sent, a failed session's too (what a cut cost)

    def add(self, other: Traffic) -> None:
        self.sent += other.sent
        self.received += other.received
        self.file_chunks += other.file_chunks


@dataclass
class SyncResult:
    ok: bool
    parent: str = ""
    endpoint: str = ""
    summary: Summary = field(default_factory=Summary)
    error: TongbanError | None = None
    attempts: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    traffic: Traffic = field(default_factory=Traffic)


Progress = Callable[[Summary, int], None]
"""Called as batches move: what moved so far, and an estimate of the total to move."""

FALL_BACK = frozenset({ErrorCode.SYNC_UNREACHABLE, ErrorCode.SYNC_PEER_UNKNOWN})


def upstreams_for(
    log: RecordLog, parent: str, endpoint: str | None, fallback: str | None, direct: bool
) -> list[Upstream]:
    """The parents to try in order; each CURVE key comes from a certificate in ``log``."""
    anchor = log.require_anchor()
    found = []
    if endpoint and not direct:
        found.append(Upstream(endpoint, parent, _curve_key(log, parent)))
    central = fallback or _genesis_endpoint(log)
    if central and (direct or parent != anchor.origin or not endpoint):
        found.append(Upstream(central, anchor.origin, _curve_key(log, anchor.origin)))
    return found


def _curve_key(log: RecordLog, code: str) -> bytes:
    certs = trust.unrevoked(log.db, code)  # newest first
    if not certs:
        raise SyncError(ErrorCode.SYNC_PEER_UNKNOWN, f"no live certificate of {code} is held")
    return certs[0].curve_pk


def _genesis_endpoint(log: RecordLog) -> str | None:
    anchor = log.require_anchor()
    genesis = log.get(anchor.genesis_id)
    value = genesis.body.get("endpoint") if genesis else None
    return value if isinstance(value, str) and value else None


def own_certificate(log: RecordLog, code: str, kid: bytes) -> bytes:
    cert = trust.cert_of_key(log.db, code, kid)
    if cert is None:
        raise EnrollmentError(ErrorCode.NOT_ENROLLED, f"{code} holds no certificate for its key")
    return cert


def live_certificate(log: RecordLog, code: str, kid: bytes) -> bytes:
    """This node's certificate for its key, checked for its validity before connecting: the
    parent's ZAP handler refuses an expired one, and ZAP cannot tell the child why."""
    cert_id = own_certificate(log, code, kid)
    now = log.clock.now()
    for cert in trust.certificates(log.db, code):
        if cert.cert_id != cert_id:
            continue
        if cert.revoked:
            raise AuthorityError(ErrorCode.CERT_REVOKED, f"{code}'s certificate was revoked: {cert.reason}")
        if cert.exp <= now:
            raise AuthorityError(ErrorCode.CERT_EXPIRED, f"{code}'s certificate expired at {cert.exp}")
        if now < cert.nbf:
            raise AuthorityError(
                ErrorCode.CERT_NOT_YET_VALID, f"{code}'s certificate is valid from {cert.nbf}"
            )
    return cert_id


def sync_once(
    home: Home,
    upstreams: Sequence[Upstream],
    *,
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    credit: int = CREDIT,
    verifier: Verifier = SERIAL,
    progress: Progress | None = None,
) -> SyncResult:
    """Run one session with the first upstream that answers; never raises for the link.

    The parent is tried first; on ``E_SYNC_UNREACHABLE`` or ``E_SYNC_PEER_UNKNOWN`` (it does
    not know this node yet) the next upstream (central) is tried.
    """
    started = time.monotonic()
    result = SyncResult(ok=False)
    traffic = Traffic()
    now = home.log.clock.now()
    try:
        set_state(home.log.db, {"last_attempt": now})
    except StoreError as exc:  # a store that cannot be written cannot sync: say why, try nothing
        result.error = exc
        result.seconds = time.monotonic() - started
        return result
    if not upstreams:
        result.error = ConfigError(ErrorCode.CONFIG, "no parent endpoint is configured")
    for upstream in upstreams:
        try:
            cert = live_certificate(home.log, home.code, home.keys.kid)
            link = ChildLink(
                home.log,
                home.code,
                cert,
                verifier,
                home.signed_through,
                home.files,
                home.settings.files_budget,
            )
            summary = _session(link, home, upstream, timeout, connect_timeout, credit, progress, traffic)
        except TongbanError as exc:  # the link's, the peer's (its ERROR) or the store's
            result.attempts.append((upstream.endpoint, exc.code.value))
            result.error = exc
            if exc.code not in FALL_BACK:
                break
            continue
        result = SyncResult(True, upstream.code, upstream.endpoint, summary, None, result.attempts)
        result.attempts.append((upstream.endpoint, "ok"))
        break
    result.seconds = time.monotonic() - started
    result.traffic = traffic
    if not result.ok and result.error is not None:
        try:
            set_state(home.log.db, {"last_error": result.error.render("en")})
        except StoreError:  # a store that cannot be written cannot note it either: the result says it
            log.warning("could not note the failed sync: %s", result.error.render("en"))
    return result


def _session(
    link: ChildLink,
    home: Home,
    upstream: Upstream,
    timeout: float,
    connect_timeout: float,
    credit: int,
    progress: Progress | None,
    traffic: Traffic,
) -> Summary:
    where = f"{upstream.code} at {upstream.endpoint}"
    bucket = TokenBucket(home.settings.files_up_kbit)
    with zmq_errors(where), _dealer(home.keys, upstream, SESSION_EVENTS) as (sock, monitor):

        def send_message(message: Message) -> None:
            frames = encode(message)
            if message.type is Type.CHUNK:
                bucket.take(len(frames[2]))
                traffic.file_chunks += len(message.body["data"])
            traffic.sent += sum(len(frame) for frame in frames)
            send(sock, frames, where)

        _await_handshake(monitor, upstream, connect_timeout)
        session = ChildSession(link, credit)
        for message in session.start():
            send_message(message)
        estimate = 0
        while not session.done:
            message = _receive(sock, monitor, timeout, upstream, traffic)
            try:
                replies = session.on_message(message)
            except SyncError as exc:
                if message.type is not Type.ERROR:
                    send_message(error_message(exc, session.version))
                raise
            if message.type is Type.WELCOME:
                # The parent's heads are known now and the up scan has not begun: what the
                # home appends now (a node's status report) goes up in this session.
                home.welcomed(session.parent_heads, link.backlog(), session.version)
                estimate = message.body["pending"] + max(0, link.arrivals() - message.body["up_from"])
            for reply in replies:
                send_message(reply)
            if progress is not None and message.type in (Type.BATCH, Type.ACK, Type.CHUNK, Type.CACK):
                progress(session.summary, estimate)
        return session.summary


SESSION_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_DISCONNECTED
)
"""What a session's monitor hears of its connection."""


@contextmanager
def _dealer(
    keys: Any, upstream: Upstream, events: int, *, retry_ms: int = 200, retry_max_ms: int = 5_000
) -> Iterator[tuple[Any, Any]]:
    """A child's DEALER connected to ``upstream`` in a context of its own, and the monitor
    of its connection's ``events``; closed on leaving. Run inside :func:`zmq_errors`."""
    with ExitStack() as closing:
        context = zmq.Context()
        closing.callback(context.term)
        sock = context.socket(zmq.DEALER)
        closing.callback(sock.close, 0)
        monitor = sock.get_monitor_socket(events)
        closing.callback(monitor.close, 0)
        closing.callback(sock.disable_monitor)
        child_socket(sock, keys, upstream, retry_ms=retry_ms, retry_max_ms=retry_max_ms)
        connect(sock, upstream.endpoint)
        yield sock, monitor


WATCH_RETRY_MS = 4_000
"""How often a :class:`LinkWatch` tries the TCP connection again (libzmq does it)."""


class LinkWatch:
    """A standing CURVE connection to a parent that could not be reached.

    While the agent backs off (up to :data:`sync.link.agent.MAX_BACKOFF`), libzmq keeps trying
    the TCP connection every :data:`WATCH_RETRY_MS` by itself, which costs a SYN and no
    CURVE work while the link is down. A handshake that succeeds means the parent is up and
    admits this node: :meth:`came_up` says so, and the agent syncs at once rather than at
    the end of its back-off. Nothing is sent on the connection: the parent sees a link
    and no session. Use it from one thread at a time.
    """

    def __init__(self, keys: Any, upstream: Upstream, retry_ms: int = WATCH_RETRY_MS) -> None:
        self.upstream = upstream
        self.where = f"{upstream.code} at {upstream.endpoint}"
        self._open = ExitStack()
        with zmq_errors(self.where):
            dealer = _dealer(
                keys, upstream, zmq.EVENT_HANDSHAKE_SUCCEEDED, retry_ms=retry_ms, retry_max_ms=retry_ms
            )
            self.sock, self.monitor = self._open.enter_context(dealer)

    def came_up(self) -> bool:
        """Whether a handshake with the parent succeeded since the last call (never blocks)."""
        from zmq.utils.monitor import recv_monitor_message

        up = False
        with zmq_errors(self.where):
            while self.monitor.poll(0):
                up = recv_monitor_message(self.monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED or up
        return up

    def close(self) -> None:
        with zmq_errors(self.where):
            self._open.close()


def _await_handshake(monitor: Any, upstream: Upstream, seconds: float) -> None:
    from zmq.utils.monitor import recv_monitor_message

    deadline = time.monotonic() + seconds
    with zmq_errors(f"{upstream.code} at {upstream.endpoint}"):
        while (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000) + 1):
                break
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise SyncError(
                    ErrorCode.SYNC_PEER_UNKNOWN, f"{upstream.code} at {upstream.endpoint} refused this node"
                )
            if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                raise SyncError(
                    ErrorCode.SYNC_PROTOCOL, f"{upstream.endpoint} does not speak CURVE as expected"
                )
    raise SyncError(ErrorCode.SYNC_UNREACHABLE, f"{upstream.code} at {upstream.endpoint}")


def _receive(sock: Any, monitor: Any, timeout: float, upstream: Upstream, traffic: Traffic) -> Message:
    """The next message; ``E_SYNC_UNREACHABLE`` as soon as the connection is lost.

    libzmq would reconnect by itself, but the parent knows no session on a new connection:
    waiting out ``timeout`` (or sending on into it) could not save this one.
    """
    from zmq.utils.monitor import recv_monitor_message

    where = f"{upstream.code} at {upstream.endpoint}"
    deadline = time.monotonic() + timeout
    with zmq_errors(where):
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(int(left * 1000) + 1))
            if sock in ready:  # what arrived before a disconnection is still good
                frames = receive(sock, where)
                traffic.received += sum(len(frame) for frame in frames)
                return decode(frames)
            if monitor in ready and recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
                raise SyncError(ErrorCode.SYNC_UNREACHABLE, f"lost the connection to {where}")
    raise SyncError(ErrorCode.SYNC_TIMEOUT, f"{upstream.code} said nothing for {timeout:.0f} s")
