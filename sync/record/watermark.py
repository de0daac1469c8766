"""How far a store's own chain has been signed, kept outside the store: no seq is signed twice.

A store restored from an older copy (a backup, a disk image, a file copied back by hand)
does not know the sequence numbers it signed after the copy was taken. Signing on from its
head would sign some of them again, with other contents: a fork of its own chain, at its
parent and everywhere its records went. So every store keeps a **watermark** — the highest
seq of its own origin it has committed — in a small file next to its key file, never in
the database and never in its backups::

    # Tongban: the highest seq this store has signed. Not part of any backup.
    format: tongban-watermark/1
    origin: 330481104201
    seq: 00000000000000000123

:class:`Watermarked` keys refuse to sign a record of their origin at a seq at or below the
watermark (``E_CHAIN_BEHIND``: the store is behind what it signed); a sync brings the
store's own records back from its parent, and then it signs on from its true head. After
each commit that added records of its origin the watermark is raised to the store's head
(:func:`sync.record.db.after_commit`): a transaction that rolls back raises nothing.

The file is rewritten in place with one write of a fixed size, under a lock (a node's web
workers and its sync agent commit in separate processes), and not flushed to disk: the
store's own commits are not either (``synchronous = NORMAL``), so after a power cut both
lose their last moments together. Should the watermark alone survive ahead of the store,
the node says ``E_CHAIN_BEHIND`` until a sync brings back what reached its parent; what
never left it is given up by an operator (:meth:`Watermark.lower_to`, ``tongban node
accept-loss``), knowing that a lost record that surfaces later is a fork.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from core.errors import ErrorCode, KeyFileError, RecordError
from sync.record.db import after_commit
from sync.record.envelope import PREFIX_RECORD, read_header
from sync.record.keys import NodeKeys

log = logging.getLogger(__name__)

FILE_NAME = "watermark"
FORMAT = "tongban-watermark/1"
_WIDTH = 20  # digits of the seq: the file never changes size, so one write replaces it


def beside(key_path: Path) -> Path:
    """The watermark file of the store whose key file is ``key_path``."""
    return key_path.with_name(FILE_NAME)


class Watermark:
    """The watermark file of ``origin``'s store (see the module docstring)."""

    def __init__(self, path: Path, origin: str) -> None:
        self.path = path
        self.origin = origin

    def read(self) -> int:
        """The highest seq signed; 0 when no watermark was kept yet (a store from before
        watermarks, or one that has signed nothing since)."""
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{self.path}: {exc}") from exc
        return self._parse(text)

    def raise_to(self, seq: int) -> None:
        """Keep ``seq`` if it is above the watermark (never lowers it)."""
        self._write(seq, lower=False)

    def lower_to(self, seq: int) -> None:
        """Set the watermark to ``seq`` even below what was signed: an operator gives up
        records that cannot be recovered (a record signed above it and found later is a fork)."""
        self._write(seq, lower=True)

    def _write(self, seq: int, *, lower: bool) -> None:
        data = self._render(seq)
        if not self.path.exists() and self._create(data):
            return
        with open(self.path, "r+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            current = self._parse(handle.read().decode("ascii", "replace"))
            if lower or seq > current:
                os.pwrite(handle.fileno(), data, 0)

    def _create(self, data: bytes) -> bool:
        """Make the file holding ``data``; False when another process made it first."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        try:
            os.link(temporary, self.path)  # whole or not at all, and never over another's
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)
        return True

    def _render(self, seq: int) -> bytes:
        return (
            "# Tongban: the highest seq this store has signed. Not part of any backup.\n"
            f"format: {FORMAT}\norigin: {self.origin}\nseq: {seq:0{_WIDTH}d}\n"
        ).encode("ascii")

    def _parse(self, text: str) -> int:
        fields = dict(
            (name.strip(), value.strip())
            for name, sep, value in (line.partition(":") for line in text.splitlines())
            if sep and not name.startswith("#")
        )
        if fields.get("format") != FORMAT or fields.get("origin") != self.origin:
            raise KeyFileError(
                ErrorCode.KEY_FILE_FORMAT, f"{self.path} is not the watermark of {self.origin}"
            )
        seq = fields.get("seq", "")
        if not seq.isdigit():
            raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{self.path}: seq is not a number")
        return int(seq)


@dataclass
class SigningGuard:
    """Refuses to sign ``origin``'s records at or below its watermark, and raises the
    watermark to the store's committed head after each commit that signed one."""

    watermark: Watermark
    db: Database
    head: Callable[[], int]  # the store's own head now (the committed one, after a commit)
    remedy: str = "sync with the parent to get this store's own records back"

    @property
    def origin(self) -> str:
        return self.watermark.origin

    def check(self, message: bytes) -> None:
        """Before signing ``message``: refuse a record of the origin the store has signed
        already (``E_CHAIN_BEHIND``); anything else passes."""
        if not message.startswith(PREFIX_RECORD):
            return
        payload = read_header(message[len(PREFIX_RECORD) :])
        if payload.origin != self.origin:
            return
        signed = self.watermark.read()
        if payload.seq <= signed:
            raise RecordError(
                ErrorCode.CHAIN_BEHIND,
                f"{self.origin} #{payload.seq}: #{signed} has been signed already; {self.remedy}",
            )
        after_commit(self.db, self.committed)

    def committed(self) -> None:
        """Raise the watermark to the head just committed (after the commit: never ahead)."""
        try:
            self.watermark.raise_to(self.head())
        except Exception:  # a watermark left behind protects less; it never refuses wrongly
            log.exception("could not raise the watermark %s", self.watermark.path)

    def behind(self) -> int | None:
        """The watermark when the store's head is below it (the store is behind), else None."""
        signed = self.watermark.read()
        return signed if self.head() < signed else None


@dataclass(frozen=True, repr=False)
class Watermarked(NodeKeys):
    """A store's keys that sign nothing its watermark says was signed already
    (:class:`SigningGuard`); otherwise the same keys."""

    guard: SigningGuard | None = field(default=None, compare=False)

    def sign(self, message: bytes) -> bytes:
        if self.guard is not None:
            self.guard.check(message)
        return super().sign(message)


def watermarked(keys: NodeKeys, guard: SigningGuard) -> Watermarked:
    """``keys`` whose record signatures ``guard`` checks."""
    return Watermarked(keys.sign_seed, keys.curve_secret, guard)


def guard_of(keys: object) -> SigningGuard | None:
    """The guard of ``keys`` if they are :class:`Watermarked`."""
    return keys.guard if isinstance(keys, Watermarked) else None
