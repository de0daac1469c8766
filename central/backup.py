"""Central's online backup: consistent copies of its store while it runs, the newest kept.

:func:`backup` copies central's store with SQLite's backup API
(:func:`sync.record.db.copy_database`: it reads through the write-ahead log while central
goes on writing) into ``DEST/central-YYYYMMDDTHHMMSSZ-NN.db`` — written under a temporary name
and renamed when whole, so a copy that is there is complete — and deletes all but the newest
``keep``. The Ansible central role runs it on a schedule (``tongban central backup DIR DEST
--every SECONDS``, a supervisor program).

A copy is older than central the moment it is taken: central goes on signing. It is put
back only through ``tongban central restore``, which rebuilds from the network what central
signed after it (:mod:`central.rebuild`); the key files are backed up apart, offline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlite_utils import Database

from central import config as central_config
from core.clock import Clock
from sync.record.db import copy_database, open_readonly

PREFIX = "central-"
SUFFIX = ".db"


def backup(home: Path, dest: Path, *, keep: int, clock: Clock) -> Path:
    """Copy central's store at ``home`` into ``dest``; the copy's path. Keeps the newest
    ``keep`` copies there (at least one: the one just made)."""
    config = central_config.load(home)
    dest.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromtimestamp(clock.now(), dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    n = 1
    while (target := dest / f"{PREFIX}{stamp}-{n:02d}{SUFFIX}").exists():
        n += 1  # copies within one second: numbered, so that the names still sort by time
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    conn = open_readonly(config.database_path)
    try:
        copy_database(Database(conn), partial)
    finally:
        conn.close()
    partial.replace(target)
    for old in copies(dest)[: -max(1, keep)]:
        old.unlink()
    return target


def copies(dest: Path) -> list[Path]:
    """The copies in ``dest``, oldest first (their names sort by time)."""
    return sorted(p for p in dest.glob(f"{PREFIX}*{SUFFIX}") if not p.name.startswith("."))
