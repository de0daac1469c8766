"""Central's link to its departments as a nameko service: the outbox publisher and the RPC.

``tongban_central`` (:data:`central.department.contract.SERVICE`) runs where ``[amqp] uri``
is configured, as its own process (``tongban central run DIR --only departments``), so a
broker that is down or restarting never touches central's web or sync services.

``publish``
    a timer: it declares the departments' queues (before the first event for any of
    them), then sends the outbox's waiting rows in order (:mod:`central.department_store`),
    each as a nameko event — persistent, ``mandatory``, with publisher confirms — and
    marks a row only after the broker confirmed it. A broker error stops the round; the
    next tick starts again from the first row not confirmed, so an event is published at
    least once and the department's store takes it exactly once.
``submit`` / ``contact``
    the RPC methods a department calls, with the broker user the broker validated
    (:class:`central.department.entrypoints.AttributedRpc`); the checks are
    :mod:`central.decisions`.
``file_chunk`` / ``submit_file``
    the files of the department's cases, in chunks both ways (:mod:`central.department_files`).

Config: ``TONGBAN_HOME`` (central's directory), ``AMQP_URI`` and ``AMQP_SSL`` (from
``[amqp]``, set by :mod:`tongban.processes`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.timer import timer

from central import config as central_config
from central import decisions, department_files
from central.authority import Central
from central.department.broker import Backoff, EventPublisher, declare
from central.department.contract import REFUSED, SERVICE, RecordEvent, Reply, broker_user, decode_record
from central.department.entrypoints import BrokerUser, attributed_rpc
from central.department_store import linked_departments, mark_published, pending
from central.web.deps import CentralProvider, WorkerCentral
from core.errors import ErrorCode, SyncError, TongbanError
from web.deps import HOME_KEY

log = logging.getLogger(__name__)

PUBLISH_EVERY = 0.2
"""Seconds between the publisher's rounds: what an event waits at most before it is sent."""
BATCH = 200


class Outbox:
    """What one process keeps across rounds: the publisher and the departments declared."""

    def __init__(self, uri: str, ssl: Any, delivery_limit: int) -> None:
        self.uri = uri
        self.ssl = ssl
        self.delivery_limit = delivery_limit
        self.publisher = EventPublisher(uri, ssl, broker_user(uri))
        self.declared: set[str] = set()
        self.backoff = Backoff()

    def publish_pending(self, central: Central, limit: int = BATCH) -> int:
        """One round (see the module docstring); the number of events the broker confirmed."""
        db = central.store.db
        wanted = set(linked_departments(db)) - self.declared
        if wanted:
            declare(self.uri, self.ssl, sorted(wanted), self.delivery_limit)
            self.declared |= wanted
        rows = pending(db, limit)
        confirmed: list[int] = []
        try:
            for row in rows:
                if row.department not in self.declared:
                    declare(self.uri, self.ssl, [row.department], self.delivery_limit)
                    self.declared.add(row.department)
                record = central.store.log.get(row.record_id)
                if record is None:  # pragma: no cover - the outbox row and the record share a transaction
                    continue
                event = RecordEvent(row.seq, row.record_id, row.kind, row.case, record.envelope)
                try:
                    self.publisher.publish(row.department, event)
                except SyncError as exc:
                    if exc.code is ErrorCode.BROKER_UNROUTABLE:
                        self.declared.discard(row.department)  # its queue went: declare it again
                    raise
                confirmed.append(row.seq)
        finally:
            mark_published(db, confirmed, central.store.log.clock.now())
        return len(confirmed)


class OutboxProvider(DependencyProvider):  # type: ignore[misc]
    """Injects the process's :class:`Outbox`."""

    def setup(self) -> None:
        settings = self.container.config
        amqp = central_config.load(Path(settings[HOME_KEY])).amqp
        self.outbox = Outbox(settings["AMQP_URI"], settings.get("AMQP_SSL"), amqp.delivery_limit)

    def get_dependency(self, worker_ctx: Any) -> Outbox:
        return self.outbox


class CentralDepartments:
    """Central's department link (see the module docstring)."""

    name = SERVICE
    central = CentralProvider()
    outbox = OutboxProvider()
    broker_user = BrokerUser()

    @timer(interval=PUBLISH_EVERY, eager=True)
    def publish(self) -> None:
        worker: WorkerCentral = self.central
        outbox = self.outbox
        if not outbox.backoff.ready():
            return
        try:
            outbox.publish_pending(worker.central)
        except TongbanError as exc:
            if outbox.backoff.failed():
                log.warning("department events wait: %s", exc.render("en"))
            return
        if outbox.backoff.succeeded():
            log.warning("the broker takes department events again")

    @attributed_rpc
    def submit(self, record: str) -> dict[str, Any]:
        worker: WorkerCentral = self.central
        try:
            envelope = decode_record(record)
        except TongbanError as exc:
            return Reply(REFUSED, code=exc.code.value, detail=exc.detail).to_message()
        return decisions.submit(worker.central.store, envelope, self.broker_user).to_message()

    @attributed_rpc
    def contact(self, department: str) -> dict[str, Any]:
        worker: WorkerCentral = self.central
        try:
            return decisions.contact(worker.central.store, str(department), self.broker_user)
        except TongbanError as exc:
            return {"department": department, "head": 0, "at": 0, "code": exc.code.value}

    @attributed_rpc
    def file_chunk(self, sha: str, offset: int, size: int) -> dict[str, Any]:
        worker: WorkerCentral = self.central
        return department_files.chunk(worker.central.store, self.broker_user, sha, offset, size).to_message()

    @attributed_rpc
    def submit_file(self, sha: str, offset: int, data: str, digest: str) -> dict[str, Any]:
        worker: WorkerCentral = self.central
        store = worker.central.store
        return department_files.receive(store, self.broker_user, sha, offset, data, digest).to_message()
