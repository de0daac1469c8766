"""Attacks on the department link over a real RabbitMQ, each refused with a code and nothing
stored changed at central: a decision signed by another department, by a revoked
department, for an item the department does not decide, a replayed decision, and a message
sent with another department's broker user."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from central import authority
from central.department.contract import Reply, encode_record
from central.department.entrypoints import CentralClient
from central.store import CentralStore
from core.cases import CaseEvent, Event
from core.catalog import Mode
from core.documents import DocType
from core.errors import ErrorCode, SyncError
from core.intake import Applicant, Intake
from node.store import NodeStore
from sync.record import keys, kinds
from sync.record.envelope import Payload, seal
from sync.record.trust import certificates
from tests.helpers import CITY, VILLAGE, add_department
from tests.integration.backoffice import GA, Backoffice, build_backoffice, running
from tongban.rabbitmq import Broker

RS = "330481RS"
SOCIAL = "海宁市人力资源和社会保障局"


@pytest.fixture
def office(tmp_path: Path, broker: Broker) -> Backoffice:
    built = build_backoffice(tmp_path, broker)
    add_department(built.city.net, RS, ("RS-0008",), SOCIAL, name="海宁市社保中心")
    return built


def snapshot(office: Backoffice) -> tuple[Any, ...]:
    """What central stores: records, refusals, held records, outbox rows, the cases' states."""
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
        conn = store.db.conn
        return (
            store.log.count(),
            store.log.count("rejected"),
            store.log.count("held"),
            conn.execute("SELECT count(*) FROM outbox").fetchone()[0],
            tuple(conn.execute("SELECT case_no, state, events FROM cases ORDER BY case_no").fetchall()),
        )


def signed(office: Backoffice, origin: str, home: Path, body: dict[str, Any]) -> bytes:
    """``origin``'s next record after what central holds of it, signed with its own key."""
    own = keys.load_key_file(home / "keys" / "department.key")
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
        head = store.log.head(origin)
        anchor = store.log.anchor()
        assert anchor is not None
        seq, prev = (head.seq + 1, head.id) if head else (1, certificates(store.db, origin)[0].cert_id)
    payload = Payload(
        net=anchor.net, kind=kinds.CASE_EVENT, origin=origin, kid=own.kid, seq=seq, prev=prev,
        ts=office.city.clock.now(), body=body, actor="mallory",
    )  # fmt: skip
    return seal(payload, own).envelope


def approve(case_no: str, at: int) -> dict[str, Any]:
    return {"case": case_no, **CaseEvent(Event.APPROVE, at, reason="准予").to_body()}


def submit(office: Backoffice, user: str, envelope: bytes, user_id: str | None = None) -> Reply:
    uri = office.broker.setup.uri(user)
    with CentralClient(uri, user, user_id or user, timeout=20) as central:
        return Reply.from_message(central.submit(encode_record(envelope)))


def case_at_central(office: Backoffice) -> str:
    case_no = office.take_in()
    office.sync_up()
    return case_no


def test_a_decision_signed_by_another_department_is_refused(office: Backoffice) -> None:
    case_no = case_at_central(office)
    forged = signed(office, RS, office.city.net.node_dir(RS), approve(case_no, office.city.clock.now()))
    before = snapshot(office)
    with running(office, "central"):
        reply = submit(office, RS, forged)
    assert (reply.status, reply.code) == ("refused", ErrorCode.NOT_DECIDER.value)
    assert snapshot(office) == before


def test_a_decision_signed_by_a_revoked_department_is_refused(office: Backoffice) -> None:
    case_no = case_at_central(office)
    with authority.open_central(office.city.home(CITY), office.city.clock) as central:
        authority.revoke_node(central, GA, reason="部门主机失窃")
    decision = signed(office, GA, office.department_dir, approve(case_no, office.city.clock.now()))
    before = snapshot(office)
    with running(office, "central"):
        reply = submit(office, GA, decision)
    assert (reply.status, reply.code) == ("refused", ErrorCode.CERT_REVOKED.value)
    assert snapshot(office) == before


def test_a_decision_for_an_item_the_department_does_not_decide_is_refused(office: Backoffice) -> None:
    # A village names the department as the decider of an item its certificate does not list.
    with NodeStore.open(office.city.net.node_dir(VILLAGE) / "node.db", office.city.clock) as store:
        village_keys = keys.load_key_file(office.city.net.node_dir(VILLAGE) / "keys" / "node.key")
        applicant = Applicant("王秀英", DocType.RESIDENT_ID, "11010519491231002X", "13800138000")
        intake = Intake(
            case=f"{VILLAGE}-20260101-0901", item="GA-0002", item_name="死亡人员户口注销", cat=1,
            mode=Mode.PROXY, decider=GA, applicant=applicant, materials=(), notes="", limit=0,
            deadline=dt.date(2026, 1, 10),
        )  # fmt: skip
        store.log.append_local(village_keys, VILLAGE, kinds.CASE_INTAKE, intake.to_body(), actor="mallory")
    office.sync_up()
    decision = signed(office, GA, office.department_dir, approve(intake.case, office.city.clock.now()))
    before = snapshot(office)
    with running(office, "central"):
        reply = submit(office, GA, decision)
    assert (reply.status, reply.code) == ("refused", ErrorCode.DEPARTMENT_ITEM.value)
    assert snapshot(office) == before


def test_a_replayed_decision_is_refused_and_changes_nothing(office: Backoffice) -> None:
    case_no = case_at_central(office)
    with running(office, "central", "department"):
        office.wait_at_department(case_no)
        office.decide(case_no, "approve", reason="准予登记")
        office.wait_decided_at_central(case_no)
        with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
            head = store.log.head(GA)
            assert head is not None
            decision = store.log.get(head.id)
        assert decision is not None and decision.kind == kinds.CASE_EVENT
        before = snapshot(office)
        reply = submit(office, GA, decision.envelope)
    assert (reply.status, reply.code) == ("refused", ErrorCode.RECORD_REPLAYED.value)
    assert snapshot(office) == before


def test_a_message_sent_with_another_department_s_broker_user_is_refused(office: Backoffice) -> None:
    case_no = case_at_central(office)
    decision = signed(office, GA, office.department_dir, approve(case_no, office.city.clock.now()))
    before = snapshot(office)
    with running(office, "central"):
        # RS's account claiming to be GA: the broker itself refuses the message.
        with pytest.raises(SyncError) as refused:
            submit(office, RS, decision, user_id=GA)
        assert refused.value.code is ErrorCode.BROKER_REFUSED
        # RS's account as itself, carrying GA's decision: central refuses it.
        reply = submit(office, RS, decision)
        assert (reply.status, reply.code) == ("refused", ErrorCode.DEPARTMENT_USER.value)
    assert snapshot(office) == before
