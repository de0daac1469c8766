"""Sync as nameko services: a parent's endpoint and a child's agent (a town runs both).

``SyncEndpoint`` is served by an entrypoint of our own, :class:`SyncRouter`: one green
ZeroMQ ROUTER (CURVE server) and its ZAP handler per container. Everything that touches
the store — ZAP lookups, messages, the one-second tick that drops revoked and silent
sessions — goes through one dispatcher greenthread as a nameko worker, one at a time, so
the endpoint is a single writer; the worker runs the store's work on eventlet's pool of
real threads, so the hub stays free for sockets and timers while a batch commits.

``SyncAgent`` is a timer that asks :class:`sync.link.agent.Agent` every second whether a session
is due (the ``[sync] interval``, with backoff after failures) and runs it on a real thread
with plain pyzmq.

Both take an *opener* — a function from a directory to a :class:`sync.link.transport.Home` —
because reading ``node.toml`` or ``central.toml`` belongs to the composition root
(``tongban.sync_services`` binds ``tongban.sync_cli.open_home``). Config keys:

``SYNC_HOME``      the node's or central's directory (both services)
``SYNC_LISTEN``    the endpoint to bind, ``tcp://host:port`` (default: ``[sync] listen``)
``SYNC_TIMEOUT``   seconds a child waits for any message (default 30)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import eventlet
import zmq
from eventlet.event import Event as GreenEvent
from eventlet.green import zmq as green_zmq
from eventlet.queue import Empty, LightQueue
from eventlet.tpool import execute as in_real_thread
from nameko.extensions import DependencyProvider, Entrypoint, ProviderCollector, SharedExtension
from nameko.timer import timer

from core.errors import SyncError
from sync.link.agent import Agent
from sync.link.endpoint import Frames, Inbox, ParentCore, configure_router, is_upload, source_fd
from sync.link.transport import ZAP_ENDPOINT, Home, upstreams_for
from sync.link.zmq_boundary import bind, receive, send, send_to_peer, zmq_errors

log = logging.getLogger(__name__)

Opener = Callable[[Path], Home]


@dataclass(frozen=True)
class Zap:
    request: Frames
    reply: GreenEvent


@dataclass(frozen=True)
class Inbound:
    routing_id: bytes
    user_id: str | None
    frames: Frames
    fd: int | None = None


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class Lost:
    """A child's connection is gone (the router's monitor): its session with it."""

    fd: int


Event = Zap | Inbound | Tick | Lost


class SyncRouter(ProviderCollector, SharedExtension):  # type: ignore[misc]
    """The container's ROUTER and ZAP sockets; events to the handler one at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.context: Any = None
        self.router: Any = None
        self.zap: Any = None
        self.monitor: Any = None
        self.listen = ""
        self.curve_secret = b""
        self.events: LightQueue = LightQueue()
        self.endpoint = ""

    def configure(self, listen: str, curve_secret: bytes) -> None:
        """Called by the handler's dependency once it has opened the store (in setup)."""
        self.listen = listen
        self.curve_secret = curve_secret

    def start(self) -> None:
        if self.router is not None:
            return
        self.listen = self.container.config.get("SYNC_LISTEN") or self.listen
        if not self.listen or not self.curve_secret:
            raise RuntimeError("SyncRouter: no endpoint to listen on (SYNC_LISTEN or [sync] listen)")
        with zmq_errors(f"the endpoint {self.listen}"):
            self.context = green_zmq.Context()
            self.zap = self.context.socket(zmq.REP)
            self.zap.linger = 0
            bind(self.zap, ZAP_ENDPOINT)  # before the ROUTER: no handshake may happen without it
            self.router = self.context.socket(zmq.ROUTER)
            configure_router(self.router, self.curve_secret)
            self.monitor = self.router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self.endpoint = bind(self.router, self.listen)
        for loop in (self._read_zap, self._read_router, self._read_monitor, self._tick, self._dispatch):
            self.container.spawn_managed_thread(loop)

    def _read_zap(self) -> None:
        # A REP socket answers on the greenthread that read: eventlet's green sockets lose
        # a wake-up when another greenthread sends on the socket a reader waits on.
        while True:
            try:
                request = receive(self.zap, "the ZAP handler")
                event = Zap(request, GreenEvent())
                self.events.put(event)
                send(self.zap, event.reply.wait(), "the ZAP handler")
            except SyncError:  # closed by stop() or kill()
                return

    def _read_router(self) -> None:
        while True:
            try:
                frames = receive(self.router, "the endpoint", copy=False)
            except SyncError:  # closed by stop() or kill()
                return
            user_id = frames[-1].get("User-Id") if frames else None
            fd = source_fd(frames[-1])
            self.events.put(Inbound(frames[0].bytes, user_id, [f.bytes for f in frames[1:]], fd))

    def _read_monitor(self) -> None:
        from zmq.utils.monitor import parse_monitor_message

        while True:
            try:
                event = parse_monitor_message(receive(self.monitor, "the endpoint's monitor"))
            except SyncError:  # closed by stop() or kill()
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self.events.put(Lost(int(event["value"])))

    def _tick(self) -> None:
        while True:
            eventlet.sleep(1.0)
            self.events.put(Tick())

    def _dispatch(self) -> None:
        # Handed out through an Inbox: the children's uploads do not hold up the rest.
        inbox: Inbox[Event] = Inbox()
        while True:
            if not inbox:
                self._file(inbox, self.events.get())
            while True:
                try:
                    self._file(inbox, self.events.get_nowait())
                except Empty:
                    break
            event = inbox.take()
            provider = next(iter(self._providers), None)
            if provider is None:
                continue
            done = GreenEvent()
            provider.handle(event, done)
            try:
                replies = done.wait()
            except Exception:  # the worker failed; its error is logged by nameko
                log.exception("sync event failed")
                replies = None
            self._send(event, replies)

    @staticmethod
    def _file(inbox: Inbox[Event], event: Event) -> None:
        if isinstance(event, Inbound):
            inbox.put(event, event.routing_id, is_upload(event.frames))
        else:
            inbox.put(event)

    def _send(self, event: Event, replies: Any) -> None:
        if isinstance(event, Zap):
            event.reply.send(replies or [event.request[0], event.request[1], b"500", b"", b"", b""])
        elif replies:
            for frames in replies:
                send_to_peer(self.router, frames)

    def stop(self) -> None:
        super().stop()
        self._close()

    def kill(self) -> None:
        # Only close: the container kills its managed threads itself (tech-groundwork §1.1).
        self._close()

    def _close(self) -> None:
        with zmq_errors(f"the endpoint {self.listen}"):
            if self.router is not None and self.monitor is not None:
                self.router.disable_monitor()
            for sock in (self.monitor, self.router, self.zap):
                if sock is not None:
                    sock.close(linger=0)
            if self.context is not None:
                self.context.term()
        self.router = self.zap = self.monitor = self.context = None


class SyncHandler(Entrypoint):  # type: ignore[misc]
    """Entrypoint: the decorated method receives every event of the container's router."""

    router = SyncRouter()

    def setup(self) -> None:
        self.router.register_provider(self)

    def stop(self) -> None:
        self.router.unregister_provider(self)

    def handle(self, event: Event, done: GreenEvent) -> None:
        self.container.spawn_worker(self, (event,), {}, handle_result=partial(self._result, done))

    def _result(self, done: GreenEvent, worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        done.send(None if exc_info is not None else result)
        return result, exc_info


sync_handler = SyncHandler.decorator


class ParentLinkProvider(DependencyProvider):  # type: ignore[misc]
    """A :class:`ParentCore` over the directory in ``SYNC_HOME``, opened once per container."""

    def __init__(self, opener: Opener | None = None) -> None:
        self.opener = opener
        self.home: Home | None = None
        self.core: ParentCore | None = None

    def setup(self) -> None:
        if self.opener is None:
            raise RuntimeError("ParentLinkProvider needs an opener (see tongban.sync_services)")
        self.home = self.opener(Path(self.container.config["SYNC_HOME"]))
        self.core = ParentCore(
            self.home.log,
            self.home.code,
            self.home.keys,
            files=self.home.files,
            files_budget=self.home.settings.files_budget,
        )
        for extension in self.container.entrypoints:
            if isinstance(extension, SyncHandler):
                extension.router.configure(self.home.settings.listen, self.home.keys.curve_secret)

    def stop(self) -> None:
        if self.home is not None:
            self.home.close()
            self.home = None

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> Callable[[Event], Any]:
        core = self.core
        assert core is not None

        def dispatch(event: Event) -> Any:
            if isinstance(event, Zap):
                return in_real_thread(core.zap, event.request)
            if isinstance(event, Inbound):
                return in_real_thread(core.handle, event.routing_id, event.user_id, event.frames, event.fd)
            if isinstance(event, Lost):
                core.disconnected(event.fd)
                return None
            return in_real_thread(core.tick)

        return dispatch


class SyncEndpoint:
    """A parent's sync endpoint (a town for its villages, central for everyone)."""

    name = "sync_endpoint"
    link = ParentLinkProvider()

    @sync_handler  # type: ignore[untyped-decorator]
    def handle(self, event: Event) -> Any:
        return self.link(event)


class AgentProvider(DependencyProvider):  # type: ignore[misc]
    """The child's :class:`Agent` over the directory in ``SYNC_HOME``."""

    def __init__(self, opener: Opener | None = None) -> None:
        self.opener = opener
        self.agent: Agent | None = None

    def setup(self) -> None:
        if self.opener is None:
            raise RuntimeError("AgentProvider needs an opener (see tongban.sync_services)")
        home = Path(self.container.config["SYNC_HOME"])
        opener = self.opener
        timeout = float(self.container.config.get("SYNC_TIMEOUT", 30.0))
        self.agent = Agent(lambda: opener(home), _upstreams, timeout=timeout)

    def get_dependency(self, worker_ctx: Any) -> Agent:
        assert self.agent is not None
        return self.agent

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()


def _upstreams(home: Home) -> list[Any]:
    settings = home.settings
    return upstreams_for(
        home.log, home.parent, settings.parent, settings.fallback or None, settings.direct_to_central
    )


class SyncAgent:
    """A child's sync agent: a session every ``[sync] interval`` seconds, backing off on failure."""

    name = "sync_agent"
    agent = AgentProvider()

    @timer(interval=1)  # type: ignore[untyped-decorator]
    def tick(self) -> None:
        result = in_real_thread(self.agent.tick)
        if result is None:
            return
        if not result.ok:
            log.warning("sync failed: %s", result.error)
            return
        moved = result.summary
        rejected = sum(moved.rejected.values())
        log.info(  # one line per good session: the log shows the link lives
            "synced with %s (%s): up %d, down %d, rejected %d, %.1f s",
            result.parent,
            result.endpoint,
            moved.up,
            moved.down,
            rejected,
            result.seconds,
        )
