"""The department link over a real RabbitMQ: central's outbox to the department's store,
the department's signed decision back over RPC, and on down to the village."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.department.store import DepartmentStore
from central.department_store import outbox_counts
from central.store import CentralStore
from tests.helpers import CITY, wait_for
from tests.integration.backoffice import GA, Backoffice, build_backoffice, running
from tongban.demo_files import set_section
from tongban.rabbitmq import Broker


@pytest.fixture
def office(tmp_path: Path, broker: Broker) -> Backoffice:
    return build_backoffice(tmp_path, broker)


def outbox(office: Backoffice) -> tuple[int, int]:
    with CentralStore.open(office.city.home(CITY) / "central.db", office.city.clock) as store:
        counts = outbox_counts(store.db).get(GA)
        return (counts.total, counts.waiting) if counts else (0, 0)


def test_a_village_case_reaches_the_department_and_its_decision_the_village(office: Backoffice) -> None:
    case_no = office.take_in()
    office.sync_up()
    total, waiting = outbox(office)
    assert total >= 2 and waiting == total  # the intake, its forward and central's chain since
    with running(office, "central", "department"):
        office.wait_at_department(case_no)
        wait_for(lambda: outbox(office)[1] == 0, "every outbox row confirmed")
        case = office.department_case(case_no)
        assert case is not None and case.state.value == "forwarded" and case.decider == GA
        office.decide(case_no, "approve", reason="准予登记")
        office.wait_decided_at_central(case_no)
    office.sync_down()
    assert office.village_case(case_no).state == "approved"
    with DepartmentStore.open(office.department_dir / "department.db", office.city.clock) as store:
        counts = store.inbox_counts()
        total, waiting = outbox(office)  # central signed receipts of the last sessions since
        assert counts.records == counts.deliveries == total - waiting
        sent = store.sent_counts(GA)
        assert sent.delivered == sent.own and not sent.refused
    office.verify_all()


def test_a_department_links_to_central_s_broker_over_tls(office: Backoffice) -> None:
    setup = office.broker.setup
    assert setup.tls is not None
    uri = setup.uri(GA).replace("amqp://", "amqps://").replace(f":{setup.port}/", f":{setup.tls.port}/")
    set_section(office.department_dir / "department.toml", "amqp", {"uri": uri, "ca_file": setup.tls.cafile})
    case_no = office.take_in()
    office.sync_up()
    with running(office, "central", "department"):
        office.wait_at_department(case_no)
        office.decide(case_no, "reject", reason="迁入地址不在本市")
        office.wait_decided_at_central(case_no, "rejected")
    office.verify_all()
