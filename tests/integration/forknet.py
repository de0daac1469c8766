"""Helpers for the fork, restore and rebuild tests: a stolen key, copies of stores, reads."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from core.clock import FixedClock
from node.desk import Desk
from sync.link.transport import LinkSettings, SyncResult, sync_once
from tests.integration.syncnet import City, proxy_form
from tongban.homes import open_home, upstreams

ID_2 = "330481199001010014"
ID_3 = "330481198502020021"


def rows(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read ``path`` (a store) without writing to it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def chain(path: Path, origin: str) -> list[tuple[int, bytes]]:
    """(seq, id) of ``origin``'s records held at ``path``, in seq order."""
    found = rows(path, "SELECT seq, id FROM records WHERE origin = ? ORDER BY seq", origin)
    return [(seq, bytes(rid)) for seq, rid in found]


def backup(source: Path, target: Path) -> None:
    """A consistent copy of the store ``source`` at ``target``, replacing what is there."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def steal(city: City, code: str, where: Path) -> Path:
    """What a thief takes from a node: its directory, keys and store, copied to ``where``."""
    home = city.home(code)
    shutil.copytree(home, where, ignore=shutil.ignore_patterns("node.db*"))
    backup(home / "node.db", where / "node.db")
    return where


def sync_at(city: City, home: Path, parent: str, **options: Any) -> SyncResult:
    """One session of the node whose directory is ``home`` with ``parent``'s endpoint."""
    opened = open_home(home, city.clock)
    opened.settings = LinkSettings(parent=city.endpoints[parent])
    try:
        return sync_once(opened, upstreams(opened), **options)
    finally:
        opened.close()


def take_in_at(home: Path, clock: FixedClock, decider: str, doc_no: str) -> str:
    """A proxy case taken in at the node whose directory is ``home``; its number."""
    with Desk.open(home, clock) as desk:
        return desk.intake(proxy_form(desk, decider, doc_no), actor="wangli").case_no


def ok(result: SyncResult) -> SyncResult:
    assert result.ok, result.error
    return result
