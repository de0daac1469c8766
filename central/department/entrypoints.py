"""The nameko pieces of the department link: the queue consumer, the attributed RPC, the client.

:class:`RecordEvents` (``@record_events``)
    a department's event handler on its own queue (:func:`central.department.broker.
    department_queue`: quorum, delivery limit, dead letters), declared by central, never by
    the consumer. A handler that raises :class:`Poison` has its message dead-lettered at
    once; any other failure puts the message back, and the queue's delivery limit stops a
    message that keeps failing: nothing loops, nothing is dropped unseen.
:class:`AttributedRpc` (``@attributed_rpc``) and :class:`BrokerUser`
    central's RPC entrypoint that hands the worker the broker user the call came from: the
    AMQP ``user_id`` property, which RabbitMQ validates against the connection's login. A
    header of the same name from the caller is overwritten, never believed.
:class:`CentralClient`
    a department's RPC client: a standalone proxy with a timeout, its reply queue named for
    the department, its calls carrying ``user_id``.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any

import amqp.exceptions
import kombu.exceptions
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer
from nameko.rpc import Rpc, ServiceProxy
from nameko.standalone.rpc import StandaloneProxyBase

from central.department.broker import broker_errors, department_queue
from central.department.contract import DELIVERY_LIMIT, RPC_TIMEOUT, SERVICE, reply_service

DEPARTMENT_KEY = "TONGBAN_DEPARTMENT"
"""nameko config: the code of the department whose queue a :class:`RecordEvents` consumes."""
BROKER_USER = "tongban_broker_user"
"""The context-data key :class:`AttributedRpc` sets and :class:`BrokerUser` reads."""


LOST = (
    OSError,
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableChannelError,
    kombu.exceptions.OperationalError,
)
"""What a reply or an ack raises when the broker's connection went away under it."""


class Poison(Exception):
    """A message that can never be handled (not an event of the contract): dead-letter it."""


class RecordEvents(EventHandler):  # type: ignore[misc]
    """Consumes the department's own queue (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(SERVICE, "records", requeue_on_error=True, **kwargs)

    def setup(self) -> None:
        # Central declared the queue with its delivery limit; consuming declares nothing.
        self.queue = department_queue(self.container.config[DEPARTMENT_KEY], DELIVERY_LIMIT, declare=False)
        Consumer.setup(self)  # EventHandler.setup would name a queue of its own

    def handle_message_processed(self, message: Any, result: Any = None, exc_info: Any = None) -> None:
        # An ack (reject, requeue) on a connection the broker just dropped raises from the
        # socket; the broker has reclaimed the message and delivers it again, which the
        # store absorbs. An error escaping here would kill the whole container.
        with contextlib.suppress(*LOST):
            if exc_info is not None and isinstance(exc_info[1], Poison):
                if message.channel.connection:
                    message.reject(requeue=False)  # to the dead-letter queue, once
                return
            super().handle_message_processed(message, result, exc_info)


record_events = RecordEvents.decorator


class AttributedRpc(Rpc):  # type: ignore[misc]
    """An RPC entrypoint that knows which broker user called (see the module docstring)."""

    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        # The reply and the ack go out on connections the broker may just have dropped: the
        # request then comes again (its effect is idempotent: a record is stored once).
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except LOST:
            return result, exc_info

    def unpack_message_headers(self, message: Any) -> dict[str, Any]:
        data: dict[str, Any] = dict(super().unpack_message_headers(message))
        data[BROKER_USER] = message.properties.get("user_id")
        return data


attributed_rpc = AttributedRpc.decorator


class BrokerUser(DependencyProvider):  # type: ignore[misc]
    """Injects the broker user of the call (None: the caller set no ``user_id``)."""

    def get_dependency(self, worker_ctx: Any) -> str | None:
        value = worker_ctx.data.get(BROKER_USER)
        return value if isinstance(value, str) else None


class CentralClient(StandaloneProxyBase):  # type: ignore[misc]
    """``with CentralClient(uri, department, user) as central: central.submit(record)``.

    Every call carries ``user_id`` = ``user``; a call without a reply in ``timeout``
    seconds raises ``E_BROKER_TIMEOUT``; every broker error is translated.
    """

    def __init__(
        self, uri: str, department: str, user: str, *, ssl: Any = None, timeout: float = RPC_TIMEOUT
    ) -> None:
        config: dict[str, Any] = {"AMQP_URI": uri}
        if ssl:
            config["AMQP_SSL"] = ssl
        # The reply queue is named for the service the proxy's container says it is.
        base = StandaloneProxyBase.ServiceContainer
        self.ServiceContainer = type("Container", (base,), {"service_name": reply_service(department)})
        super().__init__(config, timeout=timeout)
        self._proxy = ServiceProxy(self._worker_ctx, SERVICE, self._reply_listener, user_id=user)

    def __enter__(self) -> _Calls:
        with broker_errors("connecting to central"):
            return _Calls(self.start())

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A connection that died already has nothing left to close.
        with contextlib.suppress(Exception):
            self.stop()


class _Calls:
    """Central's RPC methods, each call's broker errors translated."""

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def submit(self, record: str) -> Any:
        with broker_errors("submitting a record to central"):
            return self._proxy.submit(record)

    def contact(self, department: str) -> Any:
        with broker_errors("calling central"):
            return self._proxy.contact(department)

    def file_chunk(self, sha: str, offset: int, size: int) -> Any:
        with broker_errors("reading a file from central"):
            return self._proxy.file_chunk(sha, offset, size)

    def submit_file(self, sha: str, offset: int, data: str, digest: str) -> Any:
        with broker_errors("sending a file to central"):
            return self._proxy.submit_file(sha, offset, data, digest)
