"""Faults on the department link over a real RabbitMQ, each ending with every event applied
exactly once at the department and every store verifying: the broker restarted mid-stream,
the department's service killed with SIGKILL mid-stream, central's link killed between
storing the records and publishing them, a poison message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Queue
from nameko.amqp.publish import Publisher

from central.department.broker import events_exchange
from central.department.contract import dead_queue_name, event_type, queue_name
from central.department.store import DepartmentStore
from central.department_store import outbox_counts
from central.store import CentralStore
from core.documents import mod11_2_check_char
from sync.projection import case_queries
from tests.helpers import CITY, wait_for
from tests.integration.backoffice import GA, Backoffice, build_backoffice
from tongban import rabbitmq
from tongban.rabbitmq import Broker

CASES = 300


@pytest.fixture
def office(tmp_path: Path, broker: Broker) -> Backoffice:
    return build_backoffice(tmp_path, broker)


def resident_id(i: int) -> str:
    body = f"11010519491231{i % 1000:03d}"
    return body + mod11_2_check_char(body)


def take_in_many(office: Backoffice, n: int = CASES) -> list[str]:
    numbers = [office.take_in(doc_no=resident_id(i)) for i in range(n)]
    office.sync_up()
    return numbers


def outbox(office: Backoffice) -> tuple[int, int]:
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
        counts = outbox_counts(store.db).get(GA)
        return (counts.total, counts.waiting) if counts else (0, 0)


def received(office: Backoffice) -> int:
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        return store.inbox_counts().records


def assert_each_event_applied_once(office: Backoffice, numbers: list[str]) -> int:
    """Every outbox row reached the department once, and its cases are all there; the
    number of redelivered records."""
    wait_for(lambda: outbox(office)[1] == 0, "every outbox row confirmed", 120)
    total, _ = outbox(office)
    wait_for(lambda: received(office) == total, "the department to take every event", 120)
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        counts = store.inbox_counts()
        assert counts.records == total and counts.last_seq > 0
        assert store.applied().get("rejected", 0) == 0
        held = {row.case_no for row in case_queries.queue(store.db, GA)}
        redelivered = store.redelivered()
    assert held == set(numbers)
    office.verify_all()
    return redelivered


def test_the_broker_restarted_mid_stream_loses_and_repeats_nothing(office: Backoffice) -> None:
    numbers = take_in_many(office)
    office.start("central")
    office.start("department")
    try:
        wait_for(lambda: received(office) > 20, "the stream to start", 60, 0.05)
        office.broker.stop()
        assert received(office) < outbox(office)[0]  # stopped mid-stream
        office.broker.start()
        assert_each_event_applied_once(office, numbers)
    finally:
        office.close()


def test_the_department_killed_mid_stream_takes_every_event_once(office: Backoffice) -> None:
    numbers = take_in_many(office)
    office.start("central")
    office.start("department")
    try:
        wait_for(lambda: received(office) > 20, "the stream to start", 60, 0.05)
        office.kill9("department")
        assert received(office) < outbox(office)[0]
        office.start("department")
        assert_each_event_applied_once(office, numbers)
    finally:
        office.close()


def test_central_killed_between_storing_and_publishing_loses_nothing(office: Backoffice) -> None:
    numbers = take_in_many(office)  # stored with their outbox rows; nothing published yet
    total, waiting = outbox(office)
    assert waiting == total >= 2 * CASES
    office.start("department")
    office.start("central")
    try:
        wait_for(lambda: outbox(office)[1] < total - 20, "publishing to start", 60, 0.05)
        office.kill9("central")
        assert outbox(office)[1] > 0  # killed mid-stream: rows stored, not yet published
        office.start("central")
        assert_each_event_applied_once(office, numbers)
    finally:
        office.close()


def test_a_poison_message_is_dead_lettered_and_the_stream_goes_on(office: Backoffice) -> None:
    office.start("central")
    office.start("department")
    try:
        wait_for(lambda: outbox(office)[1] == 0 and received(office) == outbox(office)[0], "central's chain")
        before = received(office)
        uri = office.broker.setup.uri(rabbitmq.CENTRAL_USER)
        Publisher(uri, serializer="json").publish(
            {"not": "an event"}, exchange=events_exchange(), routing_key=event_type(GA), mandatory=True
        )
        with Connection(uri) as connection:
            dead = Queue(dead_queue_name(GA), no_declare=True)(connection.channel())
            got: list[Any] = []
            wait_for(lambda: got.append(dead.get()) or got[-1] is not None, "the poison in the dead letters")
            assert got[-1].payload == {"not": "an event"}
            got[-1].ack()
        numbers = take_in_many(office, 3)
        assert_each_event_applied_once(office, numbers)
        assert received(office) > before
        listed = office.broker.setup.ctl("list_queues", "name", "messages", "arguments")
        line = next(row for row in listed.splitlines() if row.startswith(queue_name(GA)))
        assert "x-delivery-limit" in line and "quorum" in line
    finally:
        office.close()
