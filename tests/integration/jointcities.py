"""Two federated cities for the joint application's tests: Haining, whose village takes in
the application, and Qingpu, whose town decides its part; how records move between them (the
nodes of a city by ``relay``, the centrals by handing each message owed to the peer's
``Crossing.deliver``, as the link between centrals does)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from central import authority, peers
from core.clock import FixedClock
from core.federation import ACCEPT, DECIDE, DELIVER, INTAKE, JOINT_PART, PROXY_INTAKE
from core.parts import Part, PartStatus
from node.desk import Desk
from node.intake import IntakeForm
from sync.projection import case_queries
from sync.projection.catalog import current_catalog
from tests.helpers import CITY, TOWN, VILLAGE, Network, relay
from tests.integration.crossnet import _agree, _root, qingpu_city
from tests.integration.crossnet import cross as cross  # the joint tests' too
from tests.integration.crossnet import deliver as deliver
from tests.integration.crossnet import messages as messages
from tests.integration.crossnet import refused as refused
from tests.integration.webnode import GOOD_ID, build_city

HAINING = f"cn-{CITY}"
QP = "310118"
QINGPU = f"cn-{QP}"
QP_TOWN = f"{QP}101"
ARRIVE = "GA-0009"  # 购房户口迁入: Haining's part, decided by its town
LEAVE = "GA-0007"  # 市内户口迁移: Qingpu's part (its 户口迁出), decided by its town
OTHER = "GA-0008"  # an item of Qingpu no agreement names for a joint application


@dataclasses.dataclass
class Cities:
    haining: Network
    qingpu: Network
    cat: int  # Qingpu's catalog version the agreements name

    @property
    def clock(self) -> FixedClock:
        return self.haining.clock

    @property
    def hn(self) -> Path:
        return self.haining.central_dir

    @property
    def qp(self) -> Path:
        return self.qingpu.central_dir


def build(tmp_path: Path) -> Cities:
    """Haining (central, a town, a village; its demo catalog delegated, clerks on both nodes)
    and Qingpu (central, a town granted LEAVE), agreed both ways for LEAVE as a joint part."""
    haining = build_city(tmp_path / "haining")
    clock = haining.clock
    qingpu = qingpu_city(tmp_path, clock)
    with authority.open_central(qingpu.central_dir, clock) as central:
        catalog = current_catalog(central.store.db)
        assert catalog is not None
        authority.grant(central, QP_TOWN, [LEAVE], catalog.item(LEAVE).modes["town"], valid_days=90)
        cat = catalog.version
    hn_root, qp_root = _root(haining.central_dir, clock), _root(qingpu.central_dir, clock)
    # Haining admits Qingpu's acceptance and decision of Qingpu's part; Qingpu admits
    # Haining's window taking in its item as a part. OTHER is agreed for 代收代办 only.
    _agree(haining.central_dir, QINGPU, "上海市青浦区", qp_root, [(LEAVE, cat)], [JOINT_PART],
           [ACCEPT, DECIDE, DELIVER], clock)  # fmt: skip
    _agree(qingpu.central_dir, HAINING, "海宁市", hn_root, [(LEAVE, cat)], [JOINT_PART], [INTAKE], clock)
    with authority.open_central(haining.central_dir, clock) as central:
        scope = peers.scope_of([(LEAVE, cat), (OTHER, cat)], [JOINT_PART], [ACCEPT, DECIDE, DELIVER])
        proxy_only = frozenset({PROXY_INTAKE})
        items = tuple(dataclasses.replace(i, modes=proxy_only) if i.item == OTHER else i for i in scope.items)
        scope = dataclasses.replace(scope, items=items)
        peers.renew(central, QINGPU, scope=scope)
    relay(haining.central_dir, haining.node_dir(TOWN), clock)
    relay(haining.node_dir(TOWN), haining.node_dir(VILLAGE), clock)
    relay(qingpu.central_dir, qingpu.node_dir(QP_TOWN), clock)
    return Cities(haining, qingpu, cat)


def form(parts: tuple[Part, ...], doc_no: str = GOOD_ID) -> IntakeForm:
    """The walk-in at the Haining village: Haining's 户口迁入 with its required materials."""
    return IntakeForm(item=ARRIVE, name="王秀英", doc_type="resident_id", doc_no=doc_no, phone="13800138000",
                      materials=("property_cert", "id_card", "hukou_book"), parts=parts)  # fmt: skip


def leaving(c: Cities, item: str = LEAVE, city: str = QINGPU, cat: int | None = None) -> Part:
    return Part(city, item, c.cat if cat is None else cat, "市内户口迁移（户口迁出）")


def desk(c: Cities, code: str) -> Desk:
    home = c.qingpu.node_dir(code) if code.startswith(QP) else c.haining.node_dir(code)
    return Desk.open(home, c.clock)


def up(c: Cities) -> None:
    relay(c.haining.node_dir(VILLAGE), c.haining.node_dir(TOWN), c.clock, up=True)
    relay(c.haining.node_dir(TOWN), c.hn, c.clock, up=True)


def down(c: Cities) -> None:
    relay(c.hn, c.haining.node_dir(TOWN), c.clock)
    relay(c.haining.node_dir(TOWN), c.haining.node_dir(VILLAGE), c.clock)


def parts_at(c: Cities, code: str, number: str) -> list[tuple[str, PartStatus, str]]:
    with desk(c, code) as d:
        return [(p.part.city, p.status, p.their_case) for p in case_queries.parts_of(d.db, number)]
