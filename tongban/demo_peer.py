"""The demo's second city: 上海市青浦区 (Shanghai Qingpu), federated with Haining.

Qingpu is its own trust domain (its central's root, its catalog, a town that decides its
items); the two centrals agree both ways with the same functions the operators' CLI and
page use, Haining mirrors the Qingpu items its windows take in (异地代收, at the version the
agreement names), and one Qingpu case is taken in at 庆云村 with a photographed ID card: when
the demo runs, the link between the centrals carries it to Qingpu, Qingpu accepts it (受理)
and its town decides it (docs/federation.md §6; the README's tour follows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from central import authority, peer_items, peer_link_store, peers
from central.admins import admins
from core.catalog import Mode
from core.catalog_data import items_from_data
from core.clock import Clock
from core.federation import ACCEPT, DECIDE, DELIVER, INTAKE, JOINT_PART, PROXY_INTAKE, Scope, ScopeItem
from node import identity
from node.desk import Desk, IntakeForm, Upload
from sync.record.db import transaction
from sync.record.keys import fingerprint
from tongban.demo_accounts import ACCOUNTS, DEMO_PASSWORD, carry
from tongban.demo_files import DEMO_CARD, Program, set_section, set_sync_section, tongban_program
from tongban.demo_scans import Pen, cjk_font, id_card_photo
from web.accounts import hash_password


@dataclass(frozen=True)
class DemoPeer:
    code: str
    name: str
    town: str
    town_name: str

    @property
    def net(self) -> str:
        return f"cn-{self.code}"


DEMO_PEER = DemoPeer("310118", "上海市青浦区", "310118107", "赵巷镇便民服务中心")
PEER_DIR = "qingpu"
CROSSING_ITEM = "QPRS-0001"  # 社会保障卡申领: a Haining village takes it in for Qingpu
JOINT_ITEM = "QPGA-0001"  # 户口迁出: Qingpu's part of a move to Haining (多地联办)


def peer_home(home: Path) -> Path:
    return home / PEER_DIR


def build_peer(home: Path, haining_dir: Path, clock: Clock, demo_file: object) -> list[str]:
    """Qingpu's central and town under ``home``/qingpu, agreed both ways with the central at
    ``haining_dir``, its items mirrored there; the lines to print."""
    p = DEMO_PEER
    central_dir = peer_home(home) / "central"
    fp = authority.init(central_dir, code=p.code, name=p.name, net=None, clock=clock)
    with authority.open_central(central_dir, clock) as central:
        items = items_from_data(demo_file("qingpu-catalog.yaml")["items"])  # type: ignore[operator]
        _, release = authority.publish_catalog(central, items)
        operators, digest = admins(central), hash_password(DEMO_PASSWORD)
        for user, name, roles in ACCOUNTS["central"]:
            operators.add(central, user, name, roles, digest, actor="sys:demo")
        token, _ = authority.issue_enroll_token(central, p.town)
        town_dir = peer_home(home) / p.town
        made = identity.init(town_dir, tier="town", code=p.town, name=p.town_name, parent=p.code, clock=clock,
                             token=token)  # fmt: skip
        _, bundle = authority.enroll(central, made.request_path.read_bytes())
        identity.enroll(town_dir, bundle, clock=clock, anchor_fingerprint=fp)
        authority.grant_items(central, p.town, [i.code for i in items], Mode.DIRECT)
        version = release.version
        qingpu_root = peers.own_root(central)
    with authority.open_central(haining_dir, clock) as haining:
        haining_root = peers.own_root(haining)
        haining_name, haining_net = haining.config.central.name, haining.config.central.net
        # Haining lets Qingpu accept, decide and deliver the items it takes in for Qingpu, and
        # the part of a joint application Qingpu decides.
        scope = _scope([i.code for i in items], version, frozenset({ACCEPT, DECIDE, DELIVER}))
        peers.propose(haining, peer=p.net, name=p.name, root_pk=qingpu_root, scope=scope)
        peers.confirm(haining, p.net, fingerprint(qingpu_root))
    with authority.open_central(central_dir, clock) as central:
        # Qingpu lets Haining's windows take in these items of its own for it.
        scope = _scope([i.code for i in items], version, frozenset({INTAKE}))
        peers.propose(central, peer=haining_net, name=haining_name, root_pk=haining_root, scope=scope)
        peers.confirm(central, haining_net, fingerprint(haining_root))
        found = peer_items.release_for_peers(central)
    assert found is not None
    with authority.open_central(haining_dir, clock) as haining:
        # What the link carries once it runs, here at once (as `tongban central peer items` does).
        peer_items.mirror(haining, p.net, *found)
    _prepare_town(town_dir, central_dir, clock)  # the link data are set when the demo starts
    return [
        f"  peer city {p.code} {p.name}: central and {p.town_name}, catalog v{release.version}"
        f" with {len(items)} items; agreed both ways with {haining_name}",
        f"           fingerprint {fp}",
    ]


def _scope(codes: list[str], version: int, roles: frozenset[str]) -> Scope:
    """Qingpu's items at ``version``: 代收代办, but for its part of a joint application (多地联办)."""
    return Scope(
        tuple(
            ScopeItem(code, version, frozenset({JOINT_PART if code == JOINT_ITEM else PROXY_INTAKE}), roles)
            for code in sorted(codes)
        )
    )


def _prepare_town(town_dir: Path, central_dir: Path, clock: Clock) -> None:
    digest = hash_password(DEMO_PASSWORD)
    with Desk.open(town_dir, clock) as desk, authority.open_central(central_dir, clock) as central:
        for user, name, roles in ACCOUNTS["town"]:
            desk.clerks.add(desk.keys, user, name, roles, digest, actor="sys:demo")
        carry(central.store.log, desk.store.log, DEMO_PEER.town)
        carry(desk.store.log, central.store.log, central.code, up_from=DEMO_PEER.town)


def seed_crossing(village: Path, clock: Clock) -> str:
    """At ``village``: 沈晓燕 applies for Qingpu's social security card, her ID card photographed."""
    key = f"{CROSSING_ITEM}@{DEMO_PEER.net}"
    with Desk.open(village, clock) as desk:
        auth = next(a for a in desk.peer_items() if a.key == key)
        photo = Upload("id_card", "IMG_0101.jpg", id_card_photo(Pen(cjk_font())))
        form = IntakeForm(
            item=key, name=DEMO_CARD["name"], doc_type="resident_id", doc_no=DEMO_CARD["number"],
            phone="13957300001", materials=tuple(m.code for m in auth.item.materials if m.required),
            uploads=(photo,),
        )  # fmt: skip
        return desk.intake(form, actor="wangli").case_no


@dataclass(frozen=True)
class PeerPorts:
    web: int  # Qingpu central's operator web
    town_web: int  # its town's clerk web
    sync: int  # its central's sync endpoint (its town syncs with it)
    haining_link: int  # where Qingpu's central pushes to Haining's
    peer_link: int  # where Haining's central pushes to Qingpu's


def link_peer(home: Path, haining_dir: Path, ports: PeerPorts, clock: Clock) -> None:
    """The sync of Qingpu's town with its central, and the link between the two centrals."""
    central_dir = peer_home(home) / "central"
    ours, theirs = f"tcp://127.0.0.1:{ports.haining_link}", f"tcp://127.0.0.1:{ports.peer_link}"
    set_sync_section(central_dir / "central.toml", {"listen": f"tcp://127.0.0.1:{ports.sync}"})
    set_sync_section(
        peer_home(home) / DEMO_PEER.town / "node.toml",
        {"parent": f"tcp://127.0.0.1:{ports.sync}", "interval": 10},
    )
    set_section(haining_dir / "central.toml", "peers", {"listen": ours, "interval_seconds": 3})
    set_section(central_dir / "central.toml", "peers", {"listen": theirs, "interval_seconds": 3})
    with (
        authority.open_central(haining_dir, clock) as haining,
        authority.open_central(central_dir, clock) as qp,
    ):
        with transaction(haining.store.db):
            peer_link_store.set_link(haining.store.db, DEMO_PEER.net, theirs, peers.own_curve_key(qp))
        with transaction(qp.store.db):
            peer_link_store.set_link(
                qp.store.db, haining.config.central.net, ours, peers.own_curve_key(haining)
            )


def programs(home: Path, ports: PeerPorts) -> list[Program]:
    """Qingpu's central (web, sync, the link) and its town (web, sync) under supervisord."""
    root = peer_home(home).resolve()
    central, town = root / "central", root / DEMO_PEER.town
    return [
        tongban_program(
            "qingpu-central", central, f" --listen 127.0.0.1:{ports.web}", central / "central.log"
        ),
        tongban_program(
            f"web-{DEMO_PEER.town}",
            town,
            f" --only web --listen 127.0.0.1:{ports.town_web}",
            town / "web.log",
        ),
        tongban_program(f"sync-{DEMO_PEER.town}", town, " --only sync", town / "sync.log"),
    ]


def lines(ports: PeerPorts) -> list[str]:
    """What ``tongban demo start`` prints of the second city."""
    p = DEMO_PEER
    operators = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS["central"])
    clerks = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS["town"])
    return [
        f"  {p.name} {p.code}: http://127.0.0.1:{ports.web}/   (the peer city) operators: {operators}",
        f"  {p.town_name} {p.town}: http://127.0.0.1:{ports.town_web}/   accounts: {clerks}",
        f"  the two centrals link at tcp://127.0.0.1:{ports.haining_link} and tcp://127.0.0.1:{ports.peer_link}"
        " (cases of Qingpu's items cross there and back)",
    ]
