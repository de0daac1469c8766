"""The broker link to departments, at the one boundary where AMQP's errors become Tongban's.

kombu, py-amqp and nameko's publisher and RPC proxy raise a dozen exception types; every
call that talks to the broker runs inside :func:`broker_errors`, which raises a
:class:`core.errors.SyncError` instead, ``from`` the original:

=======================  ====================================================================
``E_BROKER_UNREACHABLE``  no connection, lost connection, a nack: transient, tried again
``E_BROKER_UNROUTABLE``   a mandatory message no queue took: the department's queue is missing
``E_BROKER_REFUSED``      access refused, a precondition failed (``user_id`` not the
                          connection's user, a queue declared with other arguments), a remote
                          handler's failure
``E_BROKER_TIMEOUT``      no RPC reply in time
=======================  ====================================================================

The topology (:func:`topology`, :func:`declare`) is central's: the events exchange, and per
department a durable quorum queue bound by its event type, with a delivery limit and the
dead-letter exchange, and its dead-letter queue. Central declares it before it publishes
the first event for a department, so an event published while the department is down
waits in its queue; a department consumes its queue without declaring anything.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import amqp.exceptions
import kombu.exceptions
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService

from central.department.contract import (
    DEAD_EXCHANGE,
    EVENTS_EXCHANGE,
    RecordEvent,
    dead_queue_name,
    event_type,
    queue_name,
)
from core.errors import ErrorCode, SyncError

_UNREACHABLE = (
    kombu.exceptions.OperationalError,
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableChannelError,
    amqp.exceptions.MessageNacked,
    UnknownService,  # central's department service is not running: nothing consumes its RPC queue
    ConnectionError,
    socket.error,
)
_REFUSED = (amqp.exceptions.ChannelError, kombu.exceptions.KombuError, RemoteError)


@contextlib.contextmanager
def broker_errors(what: str) -> Iterator[None]:
    """Translate the broker's errors raised while doing ``what`` (see the module docstring)."""
    try:
        yield
    except UndeliverableMessage as exc:
        raise SyncError(ErrorCode.BROKER_UNROUTABLE, what) from exc
    except RpcTimeout as exc:
        raise SyncError(ErrorCode.BROKER_TIMEOUT, what) from exc
    except _UNREACHABLE as exc:
        raise SyncError(ErrorCode.BROKER_UNREACHABLE, f"{what}: {exc}") from exc
    except _REFUSED as exc:
        raise SyncError(ErrorCode.BROKER_REFUSED, f"{what}: {exc}") from exc


class Backoff:
    """When to try the broker again after failures: at once while it answers, then after
    0.5 s, doubling to ``longest``; and whether a failure is the first of its streak (the
    one worth a line in the log)."""

    def __init__(self, longest: float = 5.0) -> None:
        self.longest = longest
        self._pause = 0.0
        self._resume_at = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self._resume_at

    def failed(self) -> bool:
        """Note a failure; True if it is the first since the last success."""
        first = self._pause == 0.0
        self._pause = min(self.longest, max(0.5, self._pause * 2))
        self._resume_at = time.monotonic() + self._pause
        return first

    def succeeded(self) -> bool:
        """Note a success; True if it ends a streak of failures."""
        recovered = self._pause > 0.0
        self._pause = self._resume_at = 0.0
        return recovered


def events_exchange() -> Exchange:
    return Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


def dead_exchange() -> Exchange:
    return Exchange(DEAD_EXCHANGE, type="topic", durable=True)


def department_queue(department: str, delivery_limit: int, *, declare: bool = True) -> Queue:
    """``department``'s queue; a consumer passes ``declare=False`` (central declared it)."""
    return Queue(
        queue_name(department),
        exchange=events_exchange(),
        routing_key=event_type(department),
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
        },
        no_declare=not declare,
    )


def topology(department: str, delivery_limit: int) -> list[Exchange | Queue]:
    """What central declares for ``department``, in order."""
    dead = Queue(
        dead_queue_name(department),
        exchange=dead_exchange(),
        routing_key=event_type(department),
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    return [events_exchange(), dead_exchange(), dead, department_queue(department, delivery_limit)]


def declare(uri: str, ssl: Any, departments: Iterable[str], delivery_limit: int) -> None:
    """Declare the topology of ``departments`` (idempotent: the same arguments again).

    On a connection of its own, not one from kombu's pool: a pooled connection that failed
    once (the broker not up yet) comes back closed and would fail every later round.
    """
    with broker_errors("declaring the departments' queues"), Connection(uri, ssl=ssl) as connection:
        channel = connection.channel()
        for department in departments:
            for entity in topology(department, delivery_limit):
                entity.maybe_bind(channel)
                entity.declare()


class EventPublisher:
    """Publishes :class:`RecordEvent`s as nameko events: persistent, mandatory, confirmed.

    :meth:`publish` returns only once the broker confirmed the message (nameko's publisher
    waits for each ``basic.ack``); ``user_id`` is the broker user the URI logs in as, which
    the broker validates, so a department can tell central's events from anyone else's.
    """

    def __init__(self, uri: str, ssl: Any, user: str) -> None:
        self.user = user
        self._publisher = Publisher(uri, ssl=ssl, serializer="json", use_confirms=True)
        self._exchange = events_exchange()

    def publish(self, department: str, event: RecordEvent) -> None:
        with broker_errors(f"publishing {event.kind} #{event.seq} to {department}"):
            self._publisher.publish(
                event.to_message(),
                exchange=self._exchange,
                routing_key=event_type(department),
                mandatory=True,
                message_id=event.record_id.hex(),
                user_id=self.user,
            )
