"""The department's link to central as a nameko service: events in, signed records out.

``receive``
    consumes the department's queue (:class:`central.department.entrypoints.RecordEvents`).
    Each event's record is ingested with every check a store makes and its delivery noted,
    in one transaction committed inside the handler — nameko acks after the handler
    returns, so a crash before the commit means a redelivery, and a redelivery finds the
    record held (by id) and changes nothing but the delivery count. A message that is not
    an event of the contract is dead-lettered at once; a store that cannot take the record
    now (busy, full) puts it back, and the queue's delivery limit bounds the retries.
``send``
    a timer: hands central, over RPC and in order, every record the department signed
    that central does not hold yet (decisions, accounts), and every half minute says it is
    there (``contact``), which also tells it how far central holds its chain. Then it
    moves files, a bounded amount per round (:class:`central.department.files.Transfers`):
    its decision letters up once central holds their decisions, the scans of its cases down.

Config: ``TONGBAN_HOME`` (the department's directory), ``AMQP_URI``, ``AMQP_SSL``,
``TONGBAN_DEPARTMENT`` (its code), set by :mod:`tongban.processes`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.timer import timer
from sqlite_utils import Database

from central.department import config as department_config
from central.department.broker import Backoff
from central.department.contract import APPENDED, HELD, REFUSED, RecordEvent, Reply, encode_record
from central.department.desk import DepartmentDesk
from central.department.entrypoints import CentralClient, Poison, record_events
from central.department.files import Transfers
from core.errors import ErrorCode, RecordError, TongbanError, error
from sync.record.envelope import record_id, split
from sync.record.outcome import Status
from web.deps import HOME_KEY, Pool, PoolProvider

log = logging.getLogger(__name__)

SEND_EVERY = 0.2
"""Seconds between the sender's rounds: what a decision waits at most before it goes."""
CONTACT_EVERY = 30.0


class DeskPool(Pool[DepartmentDesk]):
    """Opened desks of one department directory, one per worker."""

    def open_one(self) -> DepartmentDesk:
        return DepartmentDesk.open(self.home, self.clock)

    def db_of(self, handle: DepartmentDesk) -> Database:
        return handle.db

    def close_one(self, handle: DepartmentDesk) -> None:
        handle.close()


class DeskProvider(PoolProvider):
    """Injects a worker's :class:`DepartmentDesk` (and the pool, for slow work)."""

    def make_pool(self, home: Path) -> DeskPool:
        return DeskPool(home, self.clock)

    def worker(self, handle: Any, pool: Any) -> WorkerDesk:
        return WorkerDesk(handle, pool)


class WorkerDesk:
    def __init__(self, desk: DepartmentDesk, pool: DeskPool) -> None:
        self.desk = desk
        self.pool = pool


def take(desk: DepartmentDesk, body: object) -> None:
    """Ingest one event (see the module docstring); :class:`Poison` for a non-event."""
    try:
        event = RecordEvent.from_message(body)
        payload_bytes, _ = split(event.envelope)
    except RecordError as exc:
        raise Poison(exc.render("en")) from exc
    if record_id(payload_bytes) != event.record_id:
        raise Poison(f"event {event.seq}: its id is not its record's")
    outcome = desk.store.receive(event.record_id, event.seq, event.kind, event.envelope)
    if outcome.status is Status.REJECTED:
        log.warning("event %s refused: %s %s", event.seq, outcome.code, outcome.reason)


class Sender:
    """Hands central the department's own records, in order (one per process).

    It keeps one RPC client while calls succeed; after a failure it drops it and waits
    before the next try (:class:`central.department.broker.Backoff`).
    """

    def __init__(self, uri: str, ssl: Any, code: str, user: str) -> None:
        self.uri, self.ssl, self.code, self.user = uri, ssl, code, user
        self.held: int | None = None  # how far central holds the chain; None: ask it
        self.contacted = 0.0
        self._client: CentralClient | None = None
        self._calls: Any = None
        self.backoff = Backoff()
        self.transfers = Transfers(code)

    def round(self, desk: DepartmentDesk) -> int:
        """One round; how many records central took."""
        now = time.monotonic()
        if not self.backoff.ready():
            return 0
        head = desk.store.log.head(self.code)
        own = head.seq if head else 0
        due = now - self.contacted > CONTACT_EVERY
        try:
            taken = 0
            if due or self.held is None or self.held < own:
                taken = self._send(desk, own, due)
            if self.held is not None and self.held >= own:
                # Records first: a decision letter follows the decision that lists it.
                self.transfers.send(desk.store, self._central())
            self.transfers.fetch(desk.store, self._central())
        except TongbanError as exc:
            self.close()
            self.held = None
            if self.backoff.failed():
                log.warning("decisions wait for central: %s", exc.render("en"))
            return 0
        if self.held is not None and self.held < own:
            # Central refused or held the next record: asking again at once would change
            # nothing, so the next try waits too (the refusal is in the ``sent`` table).
            self.backoff.failed()
            return taken
        if self.backoff.succeeded():
            log.warning("central answers again")
        return taken

    def _send(self, desk: DepartmentDesk, own: int, due: bool) -> int:
        central = self._central()
        if due or self.held is None:
            answer = central.contact(self.code)
            self.contacted = time.monotonic()
            if answer.get("code"):
                raise error(ErrorCode(answer["code"]), "central refused the contact")
            self.held = int(answer["head"])
        taken = 0
        for seq in range(self.held + 1, own + 1):
            if not self._hand_over(central, desk, seq):
                break
            taken += 1
        return taken

    def _central(self) -> Any:
        if self._calls is None:
            self._client = CentralClient(self.uri, self.code, self.user, ssl=self.ssl)
            self._calls = self._client.__enter__()
        return self._calls

    def close(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)
        self._client = self._calls = None

    def _hand_over(self, central: Any, desk: DepartmentDesk, seq: int) -> bool:
        rid = desk.store.log.id_at(self.code, seq)
        record = desk.store.log.get(rid) if rid is not None else None
        if record is None:
            return False
        reply = Reply.from_message(central.submit(encode_record(record.envelope)))
        replayed = reply.status == REFUSED and reply.code == ErrorCode.RECORD_REPLAYED.value
        status = APPENDED if replayed else reply.status
        desk.store.note_reply(seq, status, reply.code, reply.detail)
        if status == APPENDED:
            self.held = seq
            return True
        if status == HELD:
            self.held = None  # central misses an earlier one: ask again where it stands
        else:
            log.warning("central refused %s #%s: %s %s", self.code, seq, reply.code, reply.detail)
        return False


class SenderProvider(DependencyProvider):  # type: ignore[misc]
    def setup(self) -> None:
        settings = self.container.config
        config = department_config.load(Path(settings[HOME_KEY]))
        self.sender = Sender(settings["AMQP_URI"], settings.get("AMQP_SSL"), config.code, config.amqp.user)

    def get_dependency(self, worker_ctx: Any) -> Sender:
        return self.sender

    def stop(self) -> None:
        self.sender.close()


class DepartmentLink:
    """The department's side of the link (see the module docstring)."""

    name = "tongban_department"
    desk = DeskProvider()
    sender = SenderProvider()

    @record_events
    def receive(self, body: object) -> None:
        worker: WorkerDesk = self.desk
        take(worker.desk, body)

    @timer(interval=SEND_EVERY, eager=True)
    def send(self) -> None:
        worker: WorkerDesk = self.desk
        self.sender.round(worker.desk)
