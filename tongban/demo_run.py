"""Running the demo network: clerks, delegation, and every node's web service under supervisord.

``prepare`` gives each demo node its clerk accounts (printed, with one demo password) and
passes the town's items down to its villages. The demo's set-up carries records between
the stores in process, exactly the records sync would carry (``kinds.concerns``). ``start``
gives every store its ``[sync]`` links on loopback (village → town → central), writes
``supervisord.conf`` in the demo directory with one program a store (``tongban.run``: a
node's web service and sync agent, a town's sync endpoint, central's operator web, sync
endpoint and heartbeat) and, when RabbitMQ is installed, the broker and the department's
programs (:mod:`tongban.demo_broker`), and starts supervisord in the background; from then
on the nodes sync by themselves. ``stop`` shuts it down. Central's demo operators (``ACCOUNTS["central"]``)
are made by :func:`tongban.demo.build_demo`, with the same demo password.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

from central import config as central_config
from central.store import CentralStore
from core.clock import Clock, SystemClock
from core.errors import AuthorityError, ConfigError, ErrorCode
from node.clerks import Clerks, hash_password
from node.desk import Desk
from tongban import demo_broker, demo_peer
from tongban.demo_accounts import ACCOUNTS, DEMO_PASSWORD, carry
from tongban.demo_files import Program, equip_window, set_sync_section, supervisor_conf, tongban_program

SUPERVISOR_CONF = "supervisord.conf"
__all__ = ["ACCOUNTS", "DEMO_PASSWORD", "carry", "prepare", "settle", "start", "stop"]


def _desk(home: Path, clock: Clock) -> Desk:
    return Desk.open(home, clock)


def prepare(home: Path, central_dir: Path, town: str, villages: list[str], clock: Clock) -> None:
    """Clerk accounts on every demo node; the town's items passed down to its villages."""
    digest = hash_password(DEMO_PASSWORD)
    for code in [town, *villages]:
        with _desk(home / code, clock) as desk:
            clerks = Clerks(desk.db, desk.store.log, code, clock)
            for user, name, roles in ACCOUNTS[desk.tier]:
                clerks.add(desk.keys, user, name, roles, digest, actor="sys:demo")
    with (
        CentralStore.open(central_dir / "central.db", clock) as central,
        _desk(home / town, clock) as town_desk,
    ):
        carry(central.log, town_desk.store.log, town)
        delegation = town_desk.delegation
        for village in villages:
            for parent in delegation.parents():
                with contextlib.suppress(AuthorityError):  # nothing of it is offered at village level
                    delegation.delegate(village, parent.id, list(parent.items), 30, actor="guanli")
            with _desk(home / village, clock) as village_desk:
                carry(central.log, village_desk.store.log, village)
                carry(town_desk.store.log, village_desk.store.log, village)
                carry(village_desk.store.log, town_desk.store.log, town, up_from=village)
        carry(town_desk.store.log, central.log, central_code(central), up_from=town)


def settle(home: Path, central_dir: Path, town: str, village: str, clock: Clock) -> None:
    """What ``village`` signed since :func:`prepare` (its demo cases) carried up to the town
    and central, as its first sync would (the records; the pages stay at the village)."""
    with (
        CentralStore.open(central_dir / "central.db", clock) as central,
        _desk(home / town, clock) as town_desk,
        _desk(home / village, clock) as village_desk,
    ):
        carry(village_desk.store.log, town_desk.store.log, town, up_from=village)
        carry(town_desk.store.log, central.log, central_code(central), up_from=town)


def central_code(store: CentralStore) -> str:
    anchor = store.log.anchor()
    assert anchor is not None
    return anchor.origin


SYNC_INTERVAL = 10
"""Seconds between a demo node's sync sessions."""


def link_demo(home: Path, town: str, villages: list[str], sync_port: int) -> dict[str, str]:
    """Sync links on loopback for the demo; each store's endpoint, central's first."""
    endpoints = {"central": f"tcp://127.0.0.1:{sync_port}", town: f"tcp://127.0.0.1:{sync_port + 1}"}
    set_sync_section(home / "central" / "central.toml", {"listen": endpoints["central"]})
    set_sync_section(
        home / town / "node.toml",
        {"parent": endpoints["central"], "listen": endpoints[town], "interval": SYNC_INTERVAL},
    )
    for village in villages:
        set_sync_section(
            home / village / "node.toml",
            {"parent": endpoints[town], "fallback": endpoints["central"], "interval": SYNC_INTERVAL},
        )
    return endpoints


def network_programs(
    home: Path, nodes: list[tuple[str, int]], central_port: int, broker: bool
) -> list[Program]:
    """Central's programs (its department link apart when there is a broker) and each node's."""
    home = home.resolve()
    central = home / "central"
    listen = f" --listen 127.0.0.1:{central_port}"
    if broker:  # the broker part runs apart (tongban.demo_broker): web and sync without it
        programs = [
            tongban_program("central", central, " --only web" + listen, central / "central.log"),
            tongban_program("central-sync", central, " --only sync", central / "sync.log"),
        ]
    else:
        programs = [tongban_program("central", central, listen, central / "central.log")]
    for code, port in nodes:
        node = home / code
        web = f" --only web --listen 127.0.0.1:{port}"
        programs.append(tongban_program(f"web-{code}", node, web, node / "web.log"))
        programs.append(tongban_program(f"sync-{code}", node, " --only sync", node / "sync.log"))
    return programs


def start(
    home: Path, nodes: list[tuple[str, str, int]], sync_port: int, echo: Callable[[str], Any] = print
) -> None:
    """Start supervisord for the demo and wait (bounded) until every web service answers."""
    town = next(code for code, _, _ in nodes if len(code) == 9)
    villages = [code for code, _, _ in nodes if len(code) == 12]
    endpoints = link_demo(home, town, villages, sync_port)
    for code, _, _ in nodes:
        equip_window(home / code)
    central_port = max(port for _, _, port in nodes) + 1
    desk_accounts = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS["department"])
    backoffice = demo_broker.prepare(
        home, desk_port=central_port + 1, broker_port=sync_port + 100, accounts=desk_accounts
    )
    conf = home / SUPERVISOR_CONF
    programs = network_programs(home, [(code, port) for code, _, port in nodes], central_port, backoffice.on)
    peer = demo_peer.peer_home(home).is_dir()
    if peer:  # the demo's second city, and the link between the two centrals
        ports = demo_peer.PeerPorts(
            central_port + 2, central_port + 3, sync_port + 2, sync_port + 3, sync_port + 4
        )
        demo_peer.link_peer(home, home / "central", ports, SystemClock())
        programs += demo_peer.programs(home, ports)
    conf.write_text(supervisor_conf(home, programs + backoffice.programs), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    waiting = {code: f"http://127.0.0.1:{port}/api/v1/openapi.json" for code, _, port in nodes}
    waiting["central"] = f"http://127.0.0.1:{central_port}/login"
    waiting.update(backoffice.desks)
    if peer:
        waiting["qingpu"] = f"http://127.0.0.1:{ports.web}/login"
        waiting["qingpu-town"] = f"http://127.0.0.1:{ports.town_web}/api/v1/openapi.json"
    # a loaded 2-core machine starts twenty services slowly
    _wait_for(waiting, 120 + (60 if backoffice.on else 0))
    city = central_config.load(home / "central").central
    operators = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS["central"])
    echo("The demo network is running under supervisord:")
    echo(f"  {city.name} {city.code}: http://127.0.0.1:{central_port}/   operators: {operators}")
    echo(f"  central: sync endpoint {endpoints['central']}")
    for code, name, port in nodes:
        tier = "town" if len(code) == 9 else "village"
        accounts = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS[tier])
        echo(f"  {name} {code}: http://127.0.0.1:{port}/   accounts: {accounts}")
    for line in backoffice.lines:
        echo(line)
    if peer:
        for line in demo_peer.lines(ports):
            echo(line)
    echo(f"  password of every demo account: {DEMO_PASSWORD}")
    echo(f"  villages sync with the town, the town with central, every {SYNC_INTERVAL} s")
    echo(f"  status: {sys.executable} -m supervisor.supervisorctl -c {conf} status")
    echo("  stop:   make demo-stop")


def _wait_for(urls: dict[str, str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    waiting = dict(urls)
    while waiting and time.monotonic() < deadline:
        for code, url in list(waiting.items()):
            with contextlib.suppress(OSError, http.client.HTTPException):  # not up yet, or not ours
                urllib.request.urlopen(url, timeout=2).close()
                waiting.pop(code)
        time.sleep(0.3)
    if waiting:
        raise ConfigError(ErrorCode.CONFIG, f"web services did not start: {', '.join(waiting)} (see web.log)")


def stop(home: Path) -> bool:
    """Shut the demo's supervisord down; False when it was not running."""
    sock = home.resolve() / "supervisor.sock"
    if not sock.exists():
        return False
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=_UnixTransport(str(sock)))
    try:
        proxy.supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault):
        return False
    deadline = time.monotonic() + 30
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def make_connection(self, host: Any) -> Any:
        import http.client
        import socket

        path = self.path

        class Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)

        return Conn("localhost")
