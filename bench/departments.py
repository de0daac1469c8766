"""The department link over a real RabbitMQ: outbox throughput, and a case's round trip.

A private broker (:mod:`tongban.rabbitmq`) and the city of the department tests
(:mod:`tests.integration.backoffice`: central, a town, a village, 公安户政) are built in a
temp dir; central's and the department's broker links run as real processes.

* **throughput**: ``events`` intakes (and their forwards) of the village are stored at
  central in one transaction, which writes their outbox rows; the clock runs until the
  department's store holds every one of them — published with confirms and ``mandatory``,
  consumed, verified, ingested and noted. The baseline is a bare confirmed, persistent,
  mandatory publish of the same messages to a durable queue, one after the other, with
  nameko's publisher, in the same run.
* **round trip**: a village takes a case in; the legs are *sync up* (the village's session
  with the town, the town's with central), *outbox* (central stored it → the department's
  store holds it), *department* (the desk decides at once: signed and stored), *RPC* (the
  decision stored at the department → stored at central) and *sync down* (the town's
  session, the village's). Sync runs right away: no sync interval is waited for. The
  broker path is the outbox and RPC legs; the target is under 1 s.

Figures are the median of ``rounds``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kombu import Connection
from nameko.amqp.publish import Publisher

from central.department.broker import department_queue
from central.department.contract import RecordEvent
from central.store import CentralStore
from core.documents import mod11_2_check_char
from node.store import NodeStore
from sync.record.log import decode_stored
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.backoffice import GA, Backoffice, build_backoffice
from tongban import rabbitmq
from tongban.rabbitmq import Broker, BrokerSetup

EVENTS = 600
ROUNDS = 5
TARGET_BROKER_MS = 1000.0


def run(events: int = EVENTS, rounds: int = ROUNDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(BrokerSetup(Path(tmp) / "rabbitmq", [GA]))
        broker.start()
        office = build_backoffice(Path(tmp) / "city", broker)
        try:
            with links(office):
                rate, published = throughput(office, events)
                trips = [round_trip(office, i) for i in range(rounds)]
            baseline = bare_publish(broker, published)
        finally:
            office.close()
            broker.close()
    legs = {name: statistics.median(t[name] for t in trips) for name in trips[0]}
    broker_ms = legs["outbox"] + legs["rpc"]
    return {
        "events": events,
        "rounds": rounds,
        "legs_ms": legs,
        "target_broker_ms": TARGET_BROKER_MS,
        "target_met": broker_ms < TARGET_BROKER_MS,
        "figures": [
            {
                "name": "events from central's outbox into the department's store vs bare confirmed publish",
                "value": rate,
                "baseline": baseline,
                "unit": "events/s",
                "ratio": rate / baseline,
            },
            *[
                {
                    "name": f"round trip leg: {label}",
                    "value": legs[name],
                    "baseline": None,
                    "unit": "ms",
                    "ratio": None,
                }
                for name, label in LEGS
            ],
            {
                "name": "intake to decision back at the village, every link up",
                "value": sum(legs.values()),
                "baseline": None,
                "unit": "ms",
                "ratio": None,
            },
            {
                "name": "broker path: the outbox and RPC legs",
                "value": broker_ms,
                "baseline": None,
                "unit": "ms",
                "ratio": None,
                "target": f"< {TARGET_BROKER_MS:.0f} ms",
            },
        ],
    }


LEGS = (
    ("sync_up", "sync up (village → town → central)"),
    ("outbox", "outbox → department's store"),
    ("department", "department decides and signs"),
    ("rpc", "RPC to central"),
    ("sync_down", "sync down (central → town → village)"),
)


@contextlib.contextmanager
def links(office: Backoffice) -> Iterator[None]:
    for name in ("central", "department"):
        office.start(name)
    try:
        for name in ("central", "department"):
            office.wait_ready(name)
        wait(lambda: waiting_at_central(office) == 0, 60)
        yield
    finally:
        office.close()


def resident_id(i: int) -> str:
    body = f"11010519500101{i % 1000:03d}"
    return body + mod11_2_check_char(body)


def throughput(office: Backoffice, events: int) -> tuple[float, list[dict[str, Any]]]:
    """Events a second from the commit at central to the last one in the department's store;
    and the messages they were, for the baseline."""
    for i in range(events // 2):
        office.take_in(doc_no=resident_id(i))
    city = office.city
    with NodeStore.open(city.home(VILLAGE) / "node.db", city.clock) as village:
        envelopes = [e for _, e in village.log.envelopes() if decode_stored(e).origin == VILLAGE]
    with NodeStore.open(city.home(TOWN) / "node.db", city.clock) as town:
        town.log.ingest_many(envelopes, VILLAGE)
    before = received(office)
    with CentralStore.open(city.home(CITY) / "central.db", city.clock) as central:
        started = time.perf_counter()
        central.log.ingest_many(envelopes, TOWN)
        rows = sum(1 for e in envelopes if decode_stored(e).kind.startswith("case."))
    wait(lambda: received(office) >= before + rows, 300, every=0.02)
    rate = rows / (time.perf_counter() - started)
    records = [decode_stored(e) for e in envelopes if decode_stored(e).kind.startswith("case.")]
    messages = [
        RecordEvent(n, r.id, r.kind, str(r.body["case"]), r.envelope).to_message()
        for n, r in enumerate(records, 1)
    ]
    return rate, messages


def bare_publish(broker: Broker, messages: list[dict[str, Any]]) -> float:
    """Messages a second, one confirmed, persistent, mandatory publish after the other."""
    uri = broker.setup.uri(rabbitmq.CENTRAL_USER)
    queue = department_queue("330481BENCH", 1000)  # a queue of the same kind, bound by its own key
    with Connection(uri) as connection:
        queue(connection.channel()).declare()
    publisher = Publisher(uri, serializer="json")
    started = time.perf_counter()
    for message in messages:
        publisher.publish(message, exchange=queue.exchange, routing_key=queue.routing_key, mandatory=True)
    rate = len(messages) / (time.perf_counter() - started)
    with Connection(uri) as connection:
        queue(connection.channel()).delete()
    return rate


def round_trip(office: Backoffice, n: int) -> dict[str, float]:
    city = office.city
    t: dict[str, float] = {}
    with city.serving(CITY, TOWN):
        started = time.perf_counter()
        case_no = office.take_in(doc_no=resident_id(900 + n))
        assert city.sync(VILLAGE).ok and city.sync(TOWN).ok
        t["sync_up"] = time.perf_counter()
        wait(lambda: state(office.department_dir / "department.db", case_no) == "forwarded", 60)
        t["outbox"] = time.perf_counter()
        office.decide(case_no, "approve", reason="准予")
        t["department"] = time.perf_counter()
        wait(lambda: state(city.home(CITY) / "central.db", case_no) == "approved", 60)
        t["rpc"] = time.perf_counter()
        assert city.sync(TOWN).ok and city.sync(VILLAGE).ok
        t["sync_down"] = time.perf_counter()
    assert state(city.home(VILLAGE) / "node.db", case_no) == "approved"
    marks = [started, *(t[name] for name, _ in LEGS)]
    return {name: (marks[i + 1] - marks[i]) * 1000 for i, (name, _) in enumerate(LEGS)}


def state(database: Path, case_no: str) -> str | None:
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn:
        row = conn.execute("SELECT state FROM cases WHERE case_no = ?", (case_no,)).fetchone()
        return str(row[0]) if row else None


def received(office: Backoffice) -> int:
    with contextlib.closing(sqlite3.connect(office.department_dir / "department.db", timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])


def waiting_at_central(office: Backoffice) -> int:
    with contextlib.closing(sqlite3.connect(office.city.home(CITY) / "central.db", timeout=10)) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0])


def wait(condition: Callable[[], bool], seconds: float, every: float = 0.005) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {seconds} s")
        time.sleep(every)
