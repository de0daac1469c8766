"""Running the demo network: clerks, delegation, and every node's web service under supervisord.

``prepare`` gives each demo node its clerk accounts (printed, with one demo password) and
passes the town's items down to its villages. The demo's set-up carries records between
the stores in process, exactly the records sync would carry (``kinds.concerns``). ``start``
gives every store its ``[sync]`` links on loopback (village → town → central), writes
``supervisord.conf`` in the demo directory with one program a store (``tongban.run``: a
node's web service and sync agent, a town's sync endpoint, central's operator web, sync
endpoint and heartbeat), and starts supervisord in the background; from then on the nodes
sync by themselves. ``stop`` shuts it down. Central's demo operators (``ACCOUNTS["central"]``)
are made by :func:`tongban.demo.build_demo`, with the same demo password.
"""

from __future__ import annotations

import contextlib
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
from core.admin import is_within
from core.clock import Clock
from core.errors import AuthorityError, ConfigError, EnrollmentError, ErrorCode
from node.clerks import Clerks, hash_password
from node.desk import Desk
from sync.record import kinds
from sync.record.log import RecordLog, decode_stored

DEMO_PASSWORD = "tongban-demo-2026"
SUPERVISOR_CONF = "supervisord.conf"
ACCOUNTS = {
    "central": [
        ("shixiang", "施事项", ["catalog_admin"]),
        ("shouquan", "寿授权", ["delegation_admin"]),
        ("shenji", "沈审计", ["auditor"]),
        ("chakan", "车查看", ["viewer"]),
    ],
    "town": [
        ("shenpi", "沈审批", ["approver", "clerk"]),
        ("guanli", "顾管理", ["admin", "auditor"]),
    ],
    "village": [
        ("wangli", "王丽", ["clerk", "approver"]),
        ("cunguan", "陈村管", ["admin", "auditor"]),
    ],
}


def carry(src: RecordLog, dst: RecordLog, dst_code: str, *, up_from: str | None = None) -> int:
    """Ingest into ``dst`` what sync would bring it from ``src``; the number of records."""
    anchor = dst.anchor()
    if anchor is None:
        raise EnrollmentError(ErrorCode.NOT_ENROLLED, dst_code)
    moved = 0
    for _, envelope in src.envelopes():
        record = decode_stored(envelope)
        if up_from is not None:
            wanted = is_within(record.origin, up_from)
        else:
            wanted = kinds.concerns(record.kind, record.origin, record.body, dst_code, anchor.origin)
        if wanted and not dst.has(record.id):
            dst.ingest(envelope, "demo-setup")
            moved += 1
    return moved


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


def central_code(store: CentralStore) -> str:
    anchor = store.log.anchor()
    assert anchor is not None
    return anchor.origin


SYNC_INTERVAL = 10
"""Seconds between a demo node's sync sessions."""


def set_sync_section(config_file: Path, values: dict[str, Any]) -> None:
    """Replace (or add) the ``[sync]`` table of a ``node.toml`` or ``central.toml``."""
    set_section(config_file, "sync", values)


def set_section(config_file: Path, section: str, values: dict[str, Any]) -> None:
    """Replace (or add) the table ``[section]`` of a configuration file."""
    kept: list[str] = []
    skipping = False
    for line in config_file.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == f"[{section}]"
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    table = ["", f"[{section}]", *(f"{key} = {_toml(value)}" for key, value in values.items())]
    config_file.write_text("\n".join(kept + table) + "\n", encoding="utf-8")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value) + '"'  # endpoints and URIs: no quotes or backslashes in them


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


def supervisor_conf(home: Path, nodes: list[tuple[str, int]], central_port: int) -> str:
    """supervisord.conf for the demo: one program per store, a unix socket for control."""
    home = home.resolve()
    lines = [
        "[unix_http_server]",
        f"file={home}/supervisor.sock",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={home}/supervisord.log",
        f"pidfile={home}/supervisord.pid",
        f"directory={home}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{home}/supervisor.sock",
        "",
    ]
    home_of = {"central": home / "central"} | {code: home / code for code, _ in nodes}
    programs = [("central", "central", f" --listen 127.0.0.1:{central_port}")]
    for code, port in nodes:
        programs += [(f"web-{code}", code, f" --only web --listen 127.0.0.1:{port}")]
        programs += [(f"sync-{code}", code, " --only sync")]
    for name, store, options in programs:
        lines += [
            f"[program:{name}]",
            f"command={sys.executable} -m tongban.run {home_of[store]}{options}",
            'environment=MALLOC_ARENA_MAX="2"',
            "stopsignal=INT",
            "stopwaitsecs=10",
            "autorestart=true",
            "startsecs=2",
            f"stdout_logfile={home_of[store]}/{name.split('-')[0]}.log",
            "redirect_stderr=true",
            "",
        ]
    return "\n".join(lines)


def start(
    home: Path, nodes: list[tuple[str, str, int]], sync_port: int, echo: Callable[[str], Any] = print
) -> None:
    """Start supervisord for the demo and wait (bounded) until every web service answers."""
    town = next(code for code, _, _ in nodes if len(code) == 9)
    villages = [code for code, _, _ in nodes if len(code) == 12]
    endpoints = link_demo(home, town, villages, sync_port)
    central_port = max(port for _, _, port in nodes) + 1
    conf = home / SUPERVISOR_CONF
    programs = supervisor_conf(home, [(code, port) for code, _, port in nodes], central_port)
    conf.write_text(programs, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)], check=True)
    deadline = time.monotonic() + 60
    waiting = {code: f"http://127.0.0.1:{port}/api/v1/openapi.json" for code, _, port in nodes}
    waiting["central"] = f"http://127.0.0.1:{central_port}/login"
    while waiting and time.monotonic() < deadline:
        for code, url in list(waiting.items()):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=2).close()
                waiting.pop(code)
        time.sleep(0.3)
    if waiting:
        raise ConfigError(ErrorCode.CONFIG, f"web services did not start: {', '.join(waiting)} (see web.log)")
    city = central_config.load(home / "central").central
    operators = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS["central"])
    echo("The demo network is running under supervisord:")
    echo(f"  {city.name} {city.code}: http://127.0.0.1:{central_port}/   operators: {operators}")
    echo(f"  central: sync endpoint {endpoints['central']}")
    for code, name, port in nodes:
        tier = "town" if len(code) == 9 else "village"
        accounts = ", ".join(f"{user} ({'/'.join(roles)})" for user, _, roles in ACCOUNTS[tier])
        echo(f"  {name} {code}: http://127.0.0.1:{port}/   accounts: {accounts}")
    echo(f"  password of every demo account: {DEMO_PASSWORD}")
    echo(f"  villages sync with the town, the town with central, every {SYNC_INTERVAL} s")
    echo(f"  status: {sys.executable} -m supervisor.supervisorctl -c {conf} status")
    echo("  stop:   make demo-stop")


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
