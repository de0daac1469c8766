"""Accounts, logins and sessions of one store (a node's clerks, central's operators).

An account's existence, name, roles and whether it is active are records (``clerk.set``)
so that every change is signed, named with its actor, and visible at central. Secrets are
not: the argon2id password hash, failed-login counters and sessions live in the store's
own tables (:data:`ACCOUNT_TABLES`) and never leave it. Everything here works with no
network.

:class:`Accounts` is parameterised by the roles its owner knows (a node's clerk roles,
central's operator roles) and by how the owner writes a record: a node signs with its
key, central with the key of the record's role. It never signs anything by hand.

Login: a wrong password counts against the account; from the third failure on, the
account is throttled for 5 s, doubling up to 15 min (``E_LOGIN_THROTTLED``). An unknown
user costs the same hash work as a known one. Sessions expire after 8 idle hours and at
the latest 12 hours after login (a working day); each carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import nacl.exceptions
import nacl.pwhash
from sqlite_utils import Database

from core.clock import Clock
from core.errors import AuthorityError, ErrorCode, InputError
from sync.record import kinds
from sync.record.db import transaction

MIN_PASSWORD = 10
IDLE_SECONDS = 8 * 3600
MAX_SESSION_SECONDS = 12 * 3600
THROTTLE_AFTER = 3
THROTTLE_FIRST = 5
THROTTLE_MAX = 15 * 60
OPSLIMIT = 2
MEMLIMIT = 64 * 1024 * 1024
USER_NAME = re.compile(r"[a-z][a-z0-9_.-]{1,31}")
_DUMMY_HASH: bytes | None = None

# The two tables :class:`Accounts` needs, as a migration creates them. Frozen: the node's
# shipped migration ``0002_clerk_secrets`` created the same two; a change is a new migration.
ACCOUNT_TABLES = (
    """
    CREATE TABLE clerk_secrets (
        user TEXT PRIMARY KEY, hash BLOB NOT NULL, failed INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE sessions (
        digest BLOB PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL,
        created INTEGER NOT NULL, seen INTEGER NOT NULL
    )
    """,
)


def hash_password(password: str, *, opslimit: int = OPSLIMIT, memlimit: int = MEMLIMIT) -> bytes:
    check_password(password)
    return nacl.pwhash.argon2id.str(password.encode(), opslimit=opslimit, memlimit=memlimit)


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InputError(ErrorCode.PASSWORD_WEAK)
    if len(password) > 200:
        raise InputError(ErrorCode.FIELD_TOO_LONG, "password")


def verify_password(stored: bytes, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(stored, password.encode()))
    except nacl.exceptions.InvalidkeyError:
        return False


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def digest(token: str) -> bytes:
    """What the store keeps of a session or device token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Principal:
    """Who is acting: a person (``user``) or a device (``device:NAME``), with roles."""

    actor: str
    name: str
    roles: frozenset[str]
    csrf: str = ""

    def has(self, role: str) -> bool:
        return role in self.roles

    def require(self, *roles: str) -> None:
        """Refuse (``E_ROLE``) unless the principal has one of ``roles``."""
        if not self.roles.intersection(roles):
            raise AuthorityError(ErrorCode.ROLE, f"{self.actor} needs one of: {', '.join(roles)}")


S = TypeVar("S")
RecordWriter = Callable[[S, str, dict[str, Any], str], object]
"""Appends one record of the owner: ``write(signer, kind, body, actor)``."""


class Accounts(Generic[S]):
    """The accounts of ``owner`` (a node code or central's code) in the store ``db``.

    ``write`` appends the owner's ``clerk.set`` records; its first argument is what the
    caller of :meth:`add` and friends passes as ``signer`` (a node's keys, an opened
    central).
    """

    def __init__(
        self, db: Database, clock: Clock, *, owner: str, roles: Sequence[str], write: RecordWriter[S]
    ) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.roles = tuple(roles)
        self._write = write

    # -- accounts (records) ---------------------------------------------------------------

    def get(self, user: str) -> dict[str, object] | None:
        row = self.db.conn.execute(
            "SELECT user, name, roles, active FROM clerks WHERE node = ? AND user = ?", (self.owner, user)
        ).fetchone()
        if row is None:
            return None
        return {"user": row[0], "name": row[1], "roles": json.loads(row[2]), "active": bool(row[3])}

    def all(self) -> list[dict[str, object]]:
        rows = self.db.conn.execute(
            "SELECT user, name, roles, active FROM clerks WHERE node = ? ORDER BY user", (self.owner,)
        ).fetchall()
        return [{"user": u, "name": n, "roles": json.loads(r), "active": bool(a)} for u, n, r, a in rows]

    def add(
        self, signer: S, user: str, name: str, roles: list[str], password_hash: bytes, actor: str
    ) -> None:
        """Create an account (one transaction: the ``clerk.set`` record and the secret)."""
        if not USER_NAME.fullmatch(user or ""):
            raise InputError(
                ErrorCode.FIELD_INVALID, "user name: 2–32 of a-z 0-9 _ . - starting with a letter"
            )
        if not name.strip() or len(name) > 50:
            raise InputError(ErrorCode.FIELD_INVALID, "display name: 1–50 characters")
        self._check_roles(roles)
        with transaction(self.db):
            if self.get(user) is not None:
                raise InputError(ErrorCode.ACCOUNT_EXISTS, user)
            self._record(signer, user, name.strip(), sorted(set(roles)), True, actor)
            self.db.conn.execute(
                "INSERT INTO clerk_secrets (user, hash, changed) VALUES (?, ?, ?)",
                (user, password_hash, self.clock.now()),
            )

    def set_active(self, signer: S, user: str, active: bool, actor: str) -> None:
        with transaction(self.db):
            account = self._existing(user)
            roles = [str(r) for r in account["roles"]]  # type: ignore[attr-defined]
            self._record(signer, user, str(account["name"]), roles, active, actor)
            if not active:
                self.db.conn.execute("DELETE FROM sessions WHERE user = ?", (user,))

    def set_roles(self, signer: S, user: str, roles: list[str], actor: str) -> None:
        self._check_roles(roles)
        with transaction(self.db):
            account = self._existing(user)
            self._record(
                signer, user, str(account["name"]), sorted(set(roles)), bool(account["active"]), actor
            )

    def set_password(self, user: str, password_hash: bytes) -> None:
        with transaction(self.db):
            self._existing(user)
            self.db.conn.execute(
                "INSERT INTO clerk_secrets (user, hash, changed) VALUES (?, ?, ?)"
                " ON CONFLICT (user) DO UPDATE SET hash = excluded.hash, changed = excluded.changed,"
                " failed = 0, locked_until = 0",
                (user, password_hash, self.clock.now()),
            )
            self.db.conn.execute("DELETE FROM sessions WHERE user = ?", (user,))

    def _check_roles(self, roles: list[str]) -> None:
        if not roles or any(r not in self.roles for r in roles):
            raise InputError(ErrorCode.FIELD_INVALID, f"roles must be among {', '.join(self.roles)}")

    def _existing(self, user: str) -> dict[str, object]:
        account = self.get(user)
        if account is None:
            raise InputError(ErrorCode.ACCOUNT_UNKNOWN, user)
        return account

    def _record(self, signer: S, user: str, name: str, roles: list[str], active: bool, actor: str) -> None:
        body: dict[str, Any] = {"user": user, "name": name, "roles": roles, "active": active}
        self._write(signer, kinds.CLERK_SET, body, actor)

    # -- login and sessions ---------------------------------------------------------------

    def check_login(
        self, user: str, password: str, verify: Callable[[bytes, str], bool] | None = None
    ) -> None:
        """Raise unless ``user`` may log in with ``password`` now; counts failures.

        ``verify`` checks a password against a stored hash (default :func:`verify_password`);
        the web service passes one that runs off the event loop.
        """
        verify = verify or verify_password
        now = self.clock.now()
        row = self.db.conn.execute(
            "SELECT hash, failed, locked_until FROM clerk_secrets WHERE user = ?", (user,)
        ).fetchone()
        account = self.get(user)
        if row is None or account is None:
            verify(_dummy_hash(), password)  # the same work as for a real account
            raise AuthorityError(ErrorCode.LOGIN_FAILED)
        stored, failed, locked_until = row
        if locked_until > now:
            raise AuthorityError(ErrorCode.LOGIN_THROTTLED, f"{locked_until - now} s")
        if not verify(bytes(stored), password):
            failed += 1
            lock = 0
            if failed >= THROTTLE_AFTER:
                lock = now + min(THROTTLE_MAX, THROTTLE_FIRST * 2 ** (failed - THROTTLE_AFTER))
            with transaction(self.db):
                self.db.conn.execute(
                    "UPDATE clerk_secrets SET failed = ?, locked_until = ? WHERE user = ?",
                    (failed, lock, user),
                )
            raise AuthorityError(ErrorCode.LOGIN_FAILED)
        if not account["active"]:
            raise AuthorityError(ErrorCode.ACCOUNT_DISABLED, user)

    def start_session(self, user: str) -> tuple[str, str]:
        """A new session for ``user`` (after :meth:`check_login`): (token, csrf)."""
        now = self.clock.now()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with transaction(self.db):
            self.db.conn.execute(
                "UPDATE clerk_secrets SET failed = 0, locked_until = 0 WHERE user = ?", (user,)
            )
            self.db.conn.execute("DELETE FROM sessions WHERE seen < ?", (now - IDLE_SECONDS,))
            self.db.conn.execute(
                "INSERT INTO sessions (digest, user, csrf, created, seen) VALUES (?, ?, ?, ?, ?)",
                (digest(token), user, csrf, now, now),
            )
        return token, csrf

    def session(self, token: str) -> Principal:
        """The principal of a session token; ``E_SESSION_EXPIRED`` when unknown or expired."""
        now = self.clock.now()
        row = self.db.conn.execute(
            "SELECT user, csrf, created, seen FROM sessions WHERE digest = ?", (digest(token),)
        ).fetchone()
        if row is None:
            raise AuthorityError(ErrorCode.SESSION_EXPIRED)
        user, csrf, created, seen = row
        account = self.get(user)
        if account is None or not account["active"]:
            raise AuthorityError(ErrorCode.ACCOUNT_DISABLED, user)
        if now - seen > IDLE_SECONDS or now - created > MAX_SESSION_SECONDS:
            self.end_session(token)
            raise AuthorityError(ErrorCode.SESSION_EXPIRED)
        if now - seen > 60:  # keep writes off the hot path: note activity once a minute
            with transaction(self.db):
                self.db.conn.execute("UPDATE sessions SET seen = ? WHERE digest = ?", (now, digest(token)))
        roles = frozenset(str(r) for r in account["roles"])  # type: ignore[attr-defined]
        return Principal(str(user), str(account["name"]), roles, csrf)

    def end_session(self, token: str) -> None:
        with transaction(self.db):
            self.db.conn.execute("DELETE FROM sessions WHERE digest = ?", (digest(token),))


def _dummy_hash() -> bytes:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH
