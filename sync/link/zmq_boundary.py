"""The one boundary between pyzmq and the sync link: zmq's errors become Tongban's.

Every zmq call of the link that can fail runs inside :func:`zmq_errors` or through one of
the functions below, and a ``zmq.ZMQError`` (``zmq.Again`` and ``zmq.ContextTerminated``
are two) leaves as the error of its code (:func:`core.errors.error`), ``raise … from exc``:

* connecting or binding to what is not an endpoint, or to an address another process
  holds (a typo in ``[sync] parent`` or ``listen``): a ``ConfigError``, ``E_CONFIG``,
  naming the endpoint (:func:`connect`, :func:`bind`);
* any other failure of a socket, a poll or a context — the link or its peer went away,
  or the socket was closed under a reader: a ``SyncError``, ``E_SYNC_UNREACHABLE``,
  unless the caller names another code;
* ``zmq.Again`` on a read that must not wait is no failure: :func:`receive_ready`
  returns None;
* a reply from a parent's ROUTER to a child that has gone (``router_mandatory``) is
  logged and dropped (:func:`send_to_peer`): the parent cannot reach it, and the child's
  session fails on its own side.

The functions take plain pyzmq sockets and eventlet's green ones alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zmq

from core.errors import ErrorCode, error

log = logging.getLogger(__name__)


@contextmanager
def zmq_errors(where: str, code: ErrorCode = ErrorCode.SYNC_UNREACHABLE) -> Iterator[None]:
    """Run a block of zmq calls: a zmq error in it leaves as the error of ``code``, the
    detail naming ``where`` (the peer or endpoint) and what zmq said."""
    try:
        yield
    except zmq.ZMQError as exc:
        raise error(code, f"{where}: {exc}") from exc


def connect(sock: Any, endpoint: str) -> None:
    """Connect ``sock`` to ``endpoint``; ``E_CONFIG`` if that is no endpoint."""
    with zmq_errors(endpoint, ErrorCode.CONFIG):
        sock.connect(endpoint)


def bind(sock: Any, endpoint: str) -> str:
    """Bind ``sock`` to ``endpoint``; the endpoint it got (a ``*`` port resolved).
    ``E_CONFIG`` if ``endpoint`` is none or its address is taken."""
    with zmq_errors(endpoint, ErrorCode.CONFIG):
        sock.bind(endpoint)
        bound: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    return bound


def send(sock: Any, frames: list[bytes], where: str) -> None:
    """Send one message; ``E_SYNC_UNREACHABLE`` if the socket cannot."""
    with zmq_errors(where):
        sock.send_multipart(frames)


def receive(sock: Any, where: str, *, copy: bool = True) -> list[Any]:
    """The next message, waiting for it; ``E_SYNC_UNREACHABLE`` if the socket fails or is
    closed while it waits. ``copy=False`` gives ``zmq.Frame`` objects (with properties)."""
    with zmq_errors(where):
        frames: list[Any] = sock.recv_multipart(copy=copy)
    return frames


def receive_ready(sock: Any, where: str) -> list[Any] | None:
    """A message that has already arrived (as ``zmq.Frame`` objects), or None if none has."""
    with zmq_errors(where):
        try:
            frames: list[Any] = sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
    return frames


def send_to_peer(router: Any, frames: list[bytes]) -> bool:
    """Send ``frames`` (routing id first) from a ROUTER; whether it went. A peer that has
    gone is logged, not raised: one child's lost connection must not stop its parent."""
    try:
        router.send_multipart(frames)
    except zmq.ZMQError as exc:
        log.info("could not reply to a peer: %s", exc)
        return False
    return True
