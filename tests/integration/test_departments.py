"""Departments on real stores, without a broker: enrollment, routing at the window, and a
department's signed decision going down to the village like any decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from central import authority, dashboard
from central.department import identity as department_identity
from central.department.store import DepartmentStore
from central.department.store import verify as verify_department
from central.department_store import mark_published, note_contact, pending
from central.departments import enroll_department
from central.store import CentralStore
from core.cases import CaseEvent, Event
from core.catalog import CatalogRelease, Item
from core.clock import FixedClock
from core.errors import EnrollmentError, ErrorCode, InputError
from node import identity
from sync.link.endpoint import PeerDirectory
from sync.projection import case_queries
from sync.projection.catalog import current_catalog
from sync.projection.departments import department_for, departments, items_of
from sync.record import keys, kinds, trust
from tests.helpers import (
    CITY,
    TOWN,
    VILLAGE,
    Network,
    add_department,
    delegate_demo_items,
    make_network,
    open_desk,
    relay,
    seeded_random,
)
from tests.integration.test_desk import form

GA = "330481GA"
POLICE = "海宁市公安局"
HOUSEHOLD = ("GA-0001", "GA-0007")
BIRTH = ("birth_cert", "hukou_book", "parent_id_card")
DEATH = ("death_cert", "hukou_book", "applicant_id_card")
MOVE = ("hukou_book", "id_card", "property_cert")
DAY = 86_400


@pytest.fixture
def net(tmp_path: Path) -> Network:
    network = make_network(tmp_path, FixedClock(t=1_795_400_000, step=1))
    network.add_node(TOWN, "town", CITY)
    network.add_node(VILLAGE, "village", TOWN)
    delegate_demo_items(network, TOWN, [VILLAGE], proxy=HOUSEHOLD)
    add_department(network, GA, HOUSEHOLD, POLICE, name="海宁市公安局户政管理")
    relay(network.central_dir, network.node_dir(TOWN), network.clock)
    relay(network.central_dir, network.node_dir(VILLAGE), network.clock)
    return network


def test_central_certifies_a_department_and_its_store_holds_central_s_chain(net: Network) -> None:
    with CentralStore.open(net.central_dir / "central.db", net.clock) as central:
        listed = departments(central.db)
        assert [(d.code, d.department, d.items) for d in listed] == [(GA, POLICE, HOUSEHOLD)]
        assert trust.certificates(central.db, GA)[0].tier == "department"
        assert items_of(central.db, GA, net.clock.now()) == frozenset(HOUSEHOLD)
    with DepartmentStore.open(net.node_dir(GA) / "department.db", net.clock) as store:
        assert store.log.anchor() is not None
        head = store.log.head(GA)
        assert head is not None and head.seq == 1  # its node.enrolled
        assert departments(store.db)[0].code == GA
    assert verify_department(net.node_dir(GA) / "department.db", net.clock).ok


def test_a_village_routes_a_household_case_to_the_department(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        routed = {a.item.code: a.decider for a in desk.items() if a.mode is not None}
        assert routed["GA-0001"] == GA and routed["GA-0007"] == GA
        assert routed["GA-0002"] == TOWN  # the town decides it with the city's power
        case = desk.intake(form("GA-0001", ("birth_cert", "hukou_book", "parent_id_card")), actor="wangli")
        assert (case.decider, case.state) == (GA, "forwarded")
    with open_desk(net.node_dir(TOWN), net.clock) as town:
        assert town.items() and department_for(town.db, town.holdings.catalog().get("GA-0001"), 0) is None


def test_a_department_decision_is_applied_at_the_village(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        case = desk.intake(form("GA-0001", ("birth_cert", "hukou_book", "parent_id_card")), actor="wangli")
        envelopes = [e for _, e in desk.store.log.envelopes()][-2:]  # the intake and its forward
    with DepartmentStore.open(net.node_dir(GA) / "department.db", net.clock) as store:
        for envelope in envelopes:
            assert store.log.ingest(envelope, "central").status.value == "appended"
        assert case_queries.case(store.db, case.case_no) is not None
        own = keys.load_key_file(net.node_dir(GA) / "keys" / "department.key")
        body = {
            "case": case.case_no,
            **CaseEvent(Event.APPROVE, net.clock.now(), reason="准予登记").to_body(),
        }
        decision = store.log.append_local(own, GA, kinds.CASE_EVENT, body, actor="huzheng")
        mine = [e for _, e in store.log.envelopes() if e == decision.envelope]
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    relay(net.node_dir(TOWN), net.central_dir, net.clock, up=True)
    with CentralStore.open(net.central_dir / "central.db", net.clock) as central:
        with DepartmentStore.open(net.node_dir(GA) / "department.db", net.clock) as store:
            for _, envelope in store.log.envelopes():
                if envelope != mine[0]:
                    central.log.ingest(envelope, GA)
        assert central.log.ingest(mine[0], GA).status.value == "appended"
        assert case_queries.case(central.db, case.case_no).state == "approved"
    relay(net.central_dir, net.node_dir(TOWN), net.clock)
    relay(net.node_dir(TOWN), net.node_dir(VILLAGE), net.clock)
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        shown = desk.case(case.case_no)
        assert shown.state == "approved"
        assert [e.origin for e in case_queries.events(desk.db, case.case_no) if e.event == "approve"] == [GA]


def test_central_s_sync_endpoint_never_admits_a_department(net: Network) -> None:
    with CentralStore.open(net.central_dir / "central.db", net.clock) as central:
        directory = PeerDirectory(central.log, CITY)
        assert {p.code for p in directory.live.values()} == {TOWN, VILLAGE}


def test_a_department_is_not_enrolled_as_a_node_nor_a_node_as_a_department(net: Network) -> None:
    with pytest.raises(InputError) as refused:
        identity.init(
            net.root / "x", tier="department", code="330481RS", name="人社", parent=CITY, clock=net.clock
        )
    assert refused.value.code is ErrorCode.TIER_MISMATCH
    rs = department_identity.init(
        net.root / "rs",
        code="330481RS",
        name="人社",
        parent=CITY,
        clock=net.clock,
        random=seeded_random("rs"),
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        with pytest.raises(EnrollmentError) as refused_node:
            authority.enroll(central, rs.request_path.read_bytes())
        assert refused_node.value.code is ErrorCode.ENROLL_TIER
        village = identity.init(
            net.root / "v2", tier="village", code="330481104299", name="村", parent=TOWN, clock=net.clock
        )
        with pytest.raises(EnrollmentError) as refused_dept:
            enroll_department(
                central, village.request_path.read_bytes(), department=POLICE, items=["GA-0002"]
            )
        assert refused_dept.value.code is ErrorCode.ENROLL_TIER


@pytest.mark.parametrize(
    ("department", "items"),
    [
        ("海宁市人力资源和社会保障局", ["GA-0002"]),  # the catalog gives it to 公安
        ("海宁市人力资源和社会保障局", ["RS-9999"]),  # not in the catalog
        (POLICE, ["GA-0001"]),  # 330481GA decides it already
        (POLICE, []),
    ],
)
def test_items_that_are_not_the_department_s_are_refused(
    net: Network, department: str, items: list[str]
) -> None:
    other = department_identity.init(
        net.root / "other",
        code="330481RS",
        name="人社",
        parent=CITY,
        clock=net.clock,
        random=seeded_random("o"),
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        before = central.store.log.count()
        with pytest.raises(EnrollmentError) as refused:
            enroll_department(central, other.request_path.read_bytes(), department=department, items=items)
        assert refused.value.code is ErrorCode.ENROLL_ITEMS
        assert central.store.log.count() == before


def test_a_replaced_department_continues_its_chain_under_a_new_key(net: Network) -> None:
    with authority.open_central(net.central_dir, net.clock) as central:
        again = department_identity.init(
            net.root / "again",
            code=GA,
            name="户政",
            parent=CITY,
            clock=net.clock,
            random=seeded_random("again"),
        )
        with pytest.raises(EnrollmentError) as taken:
            enroll_department(
                central, again.request_path.read_bytes(), department=POLICE, items=list(HOUSEHOLD)
            )
        assert taken.value.code is ErrorCode.ENROLL_CODE_TAKEN
        with DepartmentStore.open(net.node_dir(GA) / "department.db", net.clock) as old:
            for _, envelope in old.log.envelopes():
                central.store.log.ingest(envelope, GA)
        authority.revoke_node(central, GA, reason="主机更换")
        assert department_for(central.store.db, _household_item(central), net.clock.now()) is None
        _, bundle = enroll_department(
            central, again.request_path.read_bytes(), department=POLICE, items=list(HOUSEHOLD)
        )
    department_identity.enroll(
        net.root / "again", bundle, clock=net.clock, anchor_fingerprint=net.fingerprint
    )
    with DepartmentStore.open(net.root / "again" / "department.db", net.clock) as store:
        head = store.log.head(GA)
        assert head is not None and head.seq == 2  # the old key's node.enrolled, then the new key's


def _household_item(central: authority.Central) -> Item:
    catalog = current_catalog(central.store.db)
    assert catalog is not None
    return catalog.get("GA-0001")


def outbox_rows(net: Network) -> list[tuple[str, str, str | None]]:
    with CentralStore.open(net.central_dir / "central.db", net.clock) as central:
        return [(p.department, p.kind, p.case) for p in pending(central.db, 10_000)]


def test_central_writes_an_outbox_row_with_each_record_the_department_must_see(net: Network) -> None:
    before = outbox_rows(net)
    assert before and all(d == GA for d, _, _ in before)  # central's chain since the certificate
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        mine = desk.intake(form("GA-0001", BIRTH), actor="wangli")
        towns = desk.intake(form("GA-0002", DEATH), actor="wangli")
    assert towns.decider == TOWN
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    relay(net.node_dir(TOWN), net.central_dir, net.clock, up=True)
    added = outbox_rows(net)[len(before) :]
    assert [(d, k, c) for d, k, c in added if c is not None] == [
        (GA, kinds.CASE_INTAKE, mine.case_no),
        (GA, kinds.CASE_EVENT, mine.case_no),
    ]
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.publish_catalog(central, list(_catalog(central).items))
    assert outbox_rows(net)[-1][:2] == (GA, kinds.CATALOG_RELEASE)


def test_a_revoked_department_gets_no_more_rows(net: Network) -> None:
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.revoke_node(central, GA, reason="部门系统停用")
        count = len(outbox_rows(net))
        authority.publish_catalog(central, list(_catalog(central).items))
    assert len(outbox_rows(net)) == count


def _catalog(central: authority.Central) -> CatalogRelease:
    catalog = current_catalog(central.store.db)
    assert catalog is not None
    return catalog


def test_central_s_dashboard_shows_each_department_s_waiting_cases_and_last_contact(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        first = desk.intake(form("GA-0007", MOVE), actor="wangli")  # 0 working days: late tomorrow
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    relay(net.node_dir(TOWN), net.central_dir, net.clock, up=True)
    with CentralStore.open(net.central_dir / "central.db", net.clock) as central:
        row = dashboard.snapshot(central.db, now=net.clock.now()).departments[0]
        assert (row.code, row.waiting, row.oldest, row.overdue, row.last_contact) == (
            GA,
            1,
            first.received,
            0,
            None,
        )
        assert row.unpublished > 0 and row.items == len(HOUSEHOLD) and not row.revoked
        assert all(n.tier != "department" for n in dashboard.snapshot(central.db, now=net.clock.now()).nodes)
        note_contact(central.db, GA, net.clock.now(), 1)
        later = dashboard.snapshot(central.db, now=net.clock.now() + 3 * DAY)
        row = later.departments[0]
        assert (row.overdue, row.last_contact is not None) == (1, True)
        assert dashboard.to_csv(later, "departments").splitlines()[0].startswith("code,name,department,items")


def test_a_department_certified_again_gets_the_records_of_its_open_cases_again(net: Network) -> None:
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        case = desk.intake(form("GA-0001", BIRTH), actor="wangli")
    relay(net.node_dir(VILLAGE), net.node_dir(TOWN), net.clock, up=True)
    relay(net.node_dir(TOWN), net.central_dir, net.clock, up=True)
    with CentralStore.open(net.central_dir / "central.db", net.clock) as central:
        mark_published(central.db, [p.seq for p in pending(central.db, 10_000)], net.clock.now())
    assert outbox_rows(net) == []
    again = department_identity.init(
        net.root / "again", code=GA, name="户政", parent=CITY, clock=net.clock, random=seeded_random("again")
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.revoke_node(central, GA, reason="主机更换")
        enroll_department(central, again.request_path.read_bytes(), department=POLICE, items=list(HOUSEHOLD))
    waiting = outbox_rows(net)
    assert waiting[:2] == [(GA, kinds.CASE_INTAKE, case.case_no), (GA, kinds.CASE_EVENT, case.case_no)]
    assert waiting[-1][:2] == (GA, kinds.DEPARTMENT_CERT)
