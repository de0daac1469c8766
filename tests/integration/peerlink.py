"""Two cities' centrals made by ``tongban central init``, agreed both ways with their link
data, and a deliver hook that records what it got in the receiving store's own transaction.

Also a driver for a side in a process of its own (to kill it with SIGKILL)::

    python -m tests.integration.peerlink serve HOME DELAY_MS
    python -m tests.integration.peerlink push HOME PEER
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from central import peer_outbox
from central.authority import Central, open_central
from central.peer_link import push, server
from core.clock import Clock, SystemClock
from core.errors import ErrorCode, InputError, StoreError
from sync.link.peer_transport import PeerServer
from sync.record.db import transaction
from tests.integration.syncfaults import environment, free_port
from tongban.cli import main

HAINING, QINGPU = "cn-330481", "cn-310118"
ITEM = "QP-HJ-001"
GOT = "CREATE TABLE IF NOT EXISTS got (n INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT, data BLOB)"
DELAY = [0.0]
"""Seconds the hook takes per message (a slow receiver, to be cut mid-batch)."""
FAIL_STORE = [False]
"""The hook fails as a store would (the batch rolls back, the session ends)."""


@dataclass(frozen=True)
class Side:
    home: Path
    net: str
    endpoint: str

    @property
    def database(self) -> Path:
        return self.home / "central.db"


def cli(*args: str | Path, ok: bool = True, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin)
    if ok:
        assert result.exit_code == 0, result.stdout + result.stderr + repr(result.exception)
    return result.stdout + result.stderr


def fingerprint(home: Path) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in cli("central", "fingerprint", home).splitlines())


def make_central(root: Path, code: str, name: str) -> Side:
    home = root / code
    cli("central", "init", home, "--code", code, "--name", name)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with (home / "central.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[peers]\nlisten = "{endpoint}"\ninterval_seconds = 1\n')
    with sqlite3.connect(home / "central.db") as conn:
        conn.execute(GOT)
    return Side(home, f"cn-{code}", endpoint)


def agree(side: Side, peer: Side, name: str, *, link: bool = True) -> None:
    """``side`` proposes (with the peer's link data) and confirms an agreement with ``peer``."""
    told = fingerprint(peer.home)
    assert told["peer endpoint"] == peer.endpoint
    extra = ["--endpoint", told["peer endpoint"], "--curve-pk", told["curve key"]] if link else []
    cli(
        "central", "peer", "propose", side.home, "--net", peer.net, "--name", name,
        "--root-pk", told["root key"], "--item", f"{ITEM}:7", "--mode", "proxy_intake",
        "--role", "accept", *extra,
    )  # fmt: skip
    cli("central", "peer", "confirm", side.home, "--net", peer.net, "--fingerprint", told["fingerprint"])


def make_pair(root: Path) -> tuple[Side, Side]:
    haining = make_central(root, "330481", "海宁市")
    qingpu = make_central(root, "310118", "上海市青浦区")
    agree(haining, qingpu, "上海市青浦区")
    agree(qingpu, haining, "海宁市")
    return haining, qingpu


def record(db: Database, peer: str, data: bytes) -> None:
    """The tests' deliver hook: keeps what it got in ``got``, in the delivering transaction."""
    if FAIL_STORE[0]:
        raise StoreError(ErrorCode.STORE_IO, "the test's store fails")
    if data.startswith(b"refuse:"):
        raise InputError(ErrorCode.FIELD_INVALID, "the test refuses it")
    if data.startswith(b"expect:"):
        _, sha, size = data.split(b":")
        peer_outbox.expect_file(db, peer, sha.decode(), int(size))
    db.conn.execute("INSERT INTO got (peer, data) VALUES (?, ?)", (peer, data))
    if DELAY[0]:
        time.sleep(DELAY[0])


def got(side: Side) -> list[tuple[str, bytes]]:
    """What the hook of ``side`` got, in order (committed only)."""
    with sqlite3.connect(f"file:{side.database}?mode=ro", uri=True) as conn:
        return [(str(p), bytes(d)) for p, d in conn.execute("SELECT peer, data FROM got ORDER BY n")]


@contextmanager
def opened(side: Side, clock: Clock | None = None) -> Iterator[Central]:
    with open_central(side.home, clock or SystemClock()) as central:
        yield central


def enqueue(side: Side, peer: Side, messages: list[bytes]) -> list[int]:
    with opened(side) as central, transaction(central.store.db):
        return [peer_outbox.enqueue(central.store.db, peer.net, m) for m in messages]


@contextmanager
def serving(side: Side, clock: Clock | None = None) -> Iterator[PeerServer]:
    with server(side.home, record, clock or SystemClock()) as running:
        yield running


def spawn(*args: str | Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.integration.peerlink", *map(str, args)]
    return subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _main(argv: list[str]) -> int:
    if argv[0] == "serve":
        DELAY[0] = int(argv[2]) / 1000
        serve = server(Path(argv[1]), record, SystemClock())
        serve.run()  # until killed
        return 1
    with open_central(Path(argv[1]), SystemClock()) as central:
        result = push(central, argv[2], timeout=30, connect_timeout=30)
    print(result.ok, result.error)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
