"""Sync links with real processes at both ends, killed with SIGKILL and started again.

The parent end is ``tongban serve-sync``; the child end is ``tongban node sync --once``, or
this module run as a script (``python -m tests.integration.syncfaults DIR ENDPOINT
TIMEOUT``), which runs the same session and prints a ``progress`` line after every batch
or acknowledgement, so a test can kill either end at a chosen point inside a session.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sync.link.session import Summary
from sync.link.transport import LinkSettings, sync_once
from sync.record import kinds
from sync.record.db import transaction

if TYPE_CHECKING:  # the child driver starts faster without the test builders
    from tests.integration.syncnet import City

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"(\d+) records up, (\d+) down")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tongban(*args: str) -> list[str]:
    return [sys.executable, "-m", "tongban", *args]


def kill(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL one process we started, and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


class Parent:
    """``tongban serve-sync`` for one store, on a fixed loopback endpoint, restartable."""

    def __init__(self, home: Path, endpoint: str, log: Path) -> None:
        self.home = home
        self.endpoint = endpoint
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start it (a killed one's port may take a moment to bind again) and wait until it listens."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            offset = self.log.stat().st_size if self.log.exists() else 0
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    tongban("serve-sync", str(self.home), "--listen", self.endpoint),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                    cwd=ROOT,
                    env=environment(),
                )
            while time.monotonic() < deadline and self.proc.poll() is None:
                if b"serving sync for" in self.log.read_bytes()[offset:]:
                    self.starts += 1
                    return
                time.sleep(0.02)
            kill(self.proc)
            time.sleep(0.2)
        raise AssertionError(f"serve-sync did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def ensure(self) -> None:
        if not self.alive:
            self.start()

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM), or kill it if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            kill(self.proc)


class Child:
    """One session of a child, in its own process, reporting progress line by line."""

    def __init__(self, home: Path, endpoint: str, timeout: float, log: Path, kbit: int = 0) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.events = 0
        self.file_bytes = 0  # file chunk bytes the session had sent at its last progress line
        self.outcome = ""
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.syncfaults",
                    str(home),
                    endpoint,
                    str(timeout),
                    str(kbit),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                env=environment(),
                text=True,
            )
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _take(self, line: str | None) -> bool:
        """Count one line; false at the end of output."""
        if line is None:
            return False
        if line.startswith("progress"):
            self.events += 1
            self.file_bytes = int(line.split()[3])
        else:
            self.outcome = line
        return True

    def wait_events(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` progress lines came; false if the session ended (or stalled) first."""
        deadline = time.monotonic() + timeout
        while self.events < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if not self._take(line):
                return False
        return True

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float) -> int:
        """Wait for the process to end (killing it after ``timeout``); its exit status."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill(self.proc)
        self._reader.join(10)
        while not self.lines.empty():
            self._take(self.lines.get_nowait())
        return int(self.proc.returncode)

    def kill(self) -> None:
        kill(self.proc)


def sync_cli(home: Path, endpoint: str, timeout: float = 30.0) -> tuple[bool, int, int, str]:
    """``tongban node sync HOME --once --endpoint …``: (ok, records up, records down, output)."""
    done = subprocess.run(
        tongban("node", "sync", str(home), "--once", "--endpoint", endpoint, "--timeout", str(timeout)),
        capture_output=True,
        text=True,
        timeout=timeout * 3 + 30,
        cwd=ROOT,
        env=environment(),
    )
    found = SUMMARY.search(done.stdout)
    output = done.stdout + done.stderr
    if done.returncode != 0 or found is None:
        return False, 0, 0, output
    return True, int(found.group(1)), int(found.group(2)), output


# -- authoring ------------------------------------------------------------------------------


def take_in_many(city: City, village: str, decider: str, cases: int, clerks: int) -> None:
    """``cases`` proxy cases decided by ``decider`` and ``clerks`` clerk records, authored at
    ``village`` in one transaction (the cheapest way to grow its chain)."""
    from tests.integration.syncnet import proxy_form

    desk = city.desk(village)
    try:
        form = proxy_form(desk, decider)
        with transaction(desk.store.db):
            for _ in range(cases):
                desk.intake(form, actor="wangli")
            for n in range(clerks):
                body = {"user": f"clerk{n % 40}", "name": "李敏", "roles": ["clerk"], "active": n % 7 != 0}
                desk.store.log.append_local(desk.keys, village, kinds.CLERK_SET, body, actor="admin")
    finally:
        desk.store.close()


def decide(city: City, town: str, village: str, how_many: int, pick: Any) -> int:
    """The town approves up to ``how_many`` of the village's forwarded cases it holds."""
    desk = city.desk(town)
    try:
        waiting = [
            row[0]
            for row in desk.store.db.conn.execute(
                "SELECT case_no FROM cases WHERE node = ? AND decider = ? AND state = 'forwarded'"
                " ORDER BY case_no",
                (village, town),
            )
        ]
        chosen = pick(waiting, min(how_many, len(waiting)))
        with transaction(desk.store.db):
            for case_no in chosen:
                desk.act(case_no, "approve", {}, actor="shenpi")
        return len(chosen)
    finally:
        desk.store.close()


# -- reading stores ---------------------------------------------------------------------------


def read(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def ids(path: Path, where: str = "1 = 1", *params: Any) -> set[bytes]:
    return {bytes(row[0]) for row in read(path, f"SELECT id FROM records WHERE {where}", *params)}


def assert_no_duplicates(path: Path) -> None:
    """Every record once: by id and by (origin, seq)."""
    twice = read(path, "SELECT id FROM records GROUP BY id HAVING count(*) > 1")
    assert not twice, (path.parent.name, "duplicate ids", len(twice))
    twice = read(path, "SELECT origin, seq FROM records GROUP BY origin, seq HAVING count(*) > 1")
    assert not twice, (path.parent.name, "duplicate (origin, seq)", twice[:5])


def assert_clean(path: Path) -> None:
    """Nothing waits for a gap to fill, no fork evidence, nothing refused."""
    for table in ("held", "forks", "rejected"):
        rows = read(path, f"SELECT count(*) FROM {table}")[0][0]
        assert rows == 0, (path.parent.name, table, rows)


def concerning(path: Path, child: str, root: str) -> set[bytes]:
    """The ids of the records in the store at ``path`` that belong in ``child``'s store."""
    from sync.record.log import decode_stored

    wanted = set()
    for rid, kind, origin, envelope in read(path, "SELECT id, kind, origin, envelope FROM records"):
        body = decode_stored(bytes(envelope)).body
        if kinds.concerns(kind, origin, body, child, root):
            wanted.add(bytes(rid))
    return wanted


def backup(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite store (the backup API reads through the WAL)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def stop_all(processes: Iterable[Parent | Child | None]) -> None:
    for proc in processes:
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.kill()


# -- the child driver ---------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    from tongban.homes import open_home, upstreams

    home, endpoint, timeout = Path(argv[0]), argv[1], float(argv[2])
    kbit = int(argv[3]) if len(argv) > 3 else 0
    opened = open_home(home)
    opened.settings = LinkSettings(parent=endpoint, files_up_kbit=kbit)

    def progress(summary: Summary, estimate: int) -> None:
        print(f"progress {summary.up} {summary.down} {summary.file_bytes_sent}", flush=True)

    try:
        result = sync_once(opened, upstreams(opened), timeout=timeout, progress=progress)
    finally:
        opened.close()
    if result.ok:
        print(f"ok {result.summary.up} {result.summary.down} {result.summary.file_bytes_sent}", flush=True)
        return 0
    print(f"failed {result.error.code.value if result.error else '?'}", flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
