"""Central's online backup: consistent copies of its store while it runs, the newest kept.

:func:`backup` copies central's store with SQLite's backup API
(:func:`sync.record.db.copy_database`: it reads through the write-ahead log while central
goes on writing) into ``DEST/central-YYYYMMDDTHHMMSSZ-NN.db`` — written under a temporary name
and renamed when whole, so a copy that is there is complete — and deletes all but the newest
``keep``. The Ansible central role runs it on a schedule (``tongban central backup DIR DEST
--every SECONDS``, a supervisor program).

The scanned pages go with the database: after each copy, every file the *copy* says central
holds (its ``files_held``) is copied into ``DEST/files/`` — the same content-addressed layout
as central's own file store, one file per page, shared by all the copies (a page never
changes once written, so each is copied once), each checked against its SHA-256 as it is
read. A page central should hold but cannot give (gone from its disk, or damaged) is named in
the result and left out; the copy is still made. Files no copy kept lists any more are
removed with the copies.

:func:`restore_files` puts the pages of a copy back: each page the restored store says it
holds is taken from central's file store when it is there whole, else from the copy's
``files/``, checked by its hash; one neither has whole is removed and no longer counted as
held: like any page central lacks, it is one not received yet (``missing``), not a damaged
one.

A copy is older than central the moment it is taken: central goes on signing. It is put
back only through ``tongban central restore``, which rebuilds from the network what central
signed after it (:mod:`central.rebuild`); the key files are backed up apart, offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from central import config as central_config
from core.clock import Clock
from core.errors import ErrorCode, StoreError
from sync.projection import files
from sync.record.db import copy_database, open_readonly, transaction
from sync.record.filestore import FileStore, beside

PREFIX = "central-"
SUFFIX = ".db"
FILES = "files"


@dataclass(frozen=True)
class Copy:
    """A copy made: its path, the pages it holds (in ``DEST/files``), how many of them this
    copy added there, and the pages central should hold but could not give (hex hashes)."""

    path: Path
    pages: int
    new_pages: int
    lacking: tuple[str, ...]


@dataclass(frozen=True)
class PagesRestored:
    """The pages of a restored store: how many it holds, how many of them came from the
    copy's ``files/`` (the rest were in central's file store whole), and those neither had
    (removed, no longer counted as held)."""

    held: int
    from_copy: int
    lost: tuple[str, ...]


def files_of(copy: Path) -> FileStore:
    """The file store beside the copies in the directory of ``copy``."""
    return FileStore(copy.parent / FILES)


def backup(home: Path, dest: Path, *, keep: int, clock: Clock) -> Copy:
    """Copy central's store at ``home`` into ``dest``, and the pages the copy says central
    holds into ``dest/files``; the copy. Keeps the newest ``keep`` copies there (at least
    one: the one just made)."""
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
    pages, new, lacking = _copy_pages(partial, beside(config.database_path), files_of(target))
    partial.replace(target)
    for old in copies(dest)[: -max(1, keep)]:
        old.unlink()
    _prune_pages(dest)
    return Copy(target, pages, new, lacking)


def copies(dest: Path) -> list[Path]:
    """The copies in ``dest``, oldest first (their names sort by time)."""
    return sorted(p for p in dest.glob(f"{PREFIX}*{SUFFIX}") if not p.name.startswith("."))


def _held_by(copy: Path) -> list[str]:
    """The pages the store ``copy`` says it holds."""
    conn = open_readonly(copy)
    try:
        db = Database(conn)
        return files.held(db) if "files_held" in db.table_names() else []
    finally:
        conn.close()


def _copy_pages(copy: Path, source: FileStore, target: FileStore) -> tuple[int, int, tuple[str, ...]]:
    """Every page ``copy`` says is held, from ``source`` into ``target`` unless there
    already: (pages, newly copied, those ``source`` lacks whole)."""
    pages, new, lacking = 0, 0, []
    for sha in _held_by(copy):
        if target.has(sha):
            pages += 1
            continue
        try:
            data = source.read(sha)
        except StoreError as exc:
            if exc.code is not ErrorCode.FILE_MISSING:
                raise
            lacking.append(sha)
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            lacking.append(sha)  # damaged at central: a bad page is no backup
            continue
        target.put(data)
        pages, new = pages + 1, new + 1
    return pages, new, tuple(lacking)


def _prune_pages(dest: Path) -> None:
    """Remove the pages in ``dest/files`` no copy kept lists. Pages are only ever added to
    central's store, so the newest copy lists nearly all; only the others are looked up in
    the older copies."""
    kept = copies(dest)
    store = FileStore(dest / FILES)
    if not kept:
        return
    candidates = set(store.shas()) - set(_held_by(kept[-1]))
    for copy in kept[:-1]:
        if not candidates:
            break
        conn = open_readonly(copy)
        try:
            candidates -= files.held_among(Database(conn), candidates)
        finally:
            conn.close()
    for sha in candidates:
        store.remove(sha)


def restore_files(db: Database, store: FileStore, copy: Path) -> PagesRestored:
    """Put back the pages the restored store ``db`` says it holds, into its file store
    ``store``: a page whole there stays; else it is taken from the copy's ``files/``
    (:func:`files_of`) if it matches its hash; a page neither has whole is removed and no
    longer counted as held: a page not received yet."""
    saved = files_of(copy)
    held, from_copy, lost = 0, 0, []
    for sha in files.held(db):
        if store.check(sha) is None:
            held += 1
            continue
        if saved.check(sha) is None:
            store.remove(sha)  # a damaged one, if any: put writes whole files only
            store.put(saved.read(sha))
            held, from_copy = held + 1, from_copy + 1
            continue
        with transaction(db):
            files.note_removed(db, sha)
            store.remove(sha)  # a damaged page is worse than none: it must come again whole
        lost.append(sha)
    return PagesRestored(held, from_copy, tuple(lost))
