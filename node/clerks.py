"""Clerk accounts, logins, sessions and device tokens of one node.

An account's existence, name, roles and whether it is active are records (``clerk.set``)
so that every change is signed, named with its actor, and visible at central. Secrets are
not: the argon2id password hash, failed-login counters, sessions and device tokens live
in the node's own tables and never leave it. Everything here works with no network.

Roles: ``clerk`` (全岗通 intake), ``approver`` (decides cases routed to this node),
``admin`` (manages accounts; at a town, sub-delegates items to its villages), ``auditor``
(read-only, may run the log verification).

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
from collections.abc import Callable
from dataclasses import dataclass

import nacl.exceptions
import nacl.pwhash
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from core.clock import Clock
from core.errors import AuthorityError, ErrorCode, InputError
from sync import kinds
from sync.case_projection import ROLES
from sync.db import execute_all, transaction
from sync.envelope import Signer
from sync.log import RecordLog

MIN_PASSWORD = 10
IDLE_SECONDS = 8 * 3600
MAX_SESSION_SECONDS = 12 * 3600
THROTTLE_AFTER = 3
THROTTLE_FIRST = 5
THROTTLE_MAX = 15 * 60
OPSLIMIT = 2
MEMLIMIT = 64 * 1024 * 1024
_USER = re.compile(r"[a-z][a-z0-9_.-]{1,31}")
_DUMMY_HASH: bytes | None = None


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


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def add_clerk_migrations(migrations: Migrations) -> None:
    @migrations(name="0002_clerk_secrets")
    def _secrets(db: Database) -> None:
        execute_all(
            db,
            [
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
                """
                CREATE TABLE device_tokens (
                    digest BLOB PRIMARY KEY, name TEXT NOT NULL UNIQUE, roles TEXT NOT NULL,
                    created INTEGER NOT NULL, active INTEGER NOT NULL, last_used INTEGER
                )
                """,
            ],
        )


@dataclass(frozen=True)
class Principal:
    """Who is acting: a clerk (``user``) or a device (``device:NAME``), with roles."""

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


class Clerks:
    """The accounts of the node ``code`` in the store ``db``."""

    def __init__(self, db: Database, log: RecordLog, code: str, clock: Clock) -> None:
        self.db = db
        self.log = log
        self.code = code
        self.clock = clock

    # -- accounts (records) ---------------------------------------------------------------

    def get(self, user: str) -> dict[str, object] | None:
        row = self.db.conn.execute(
            "SELECT user, name, roles, active FROM clerks WHERE node = ? AND user = ?", (self.code, user)
        ).fetchone()
        if row is None:
            return None
        return {"user": row[0], "name": row[1], "roles": json.loads(row[2]), "active": bool(row[3])}

    def all(self) -> list[dict[str, object]]:
        rows = self.db.conn.execute(
            "SELECT user, name, roles, active FROM clerks WHERE node = ? ORDER BY user", (self.code,)
        ).fetchall()
        return [{"user": u, "name": n, "roles": json.loads(r), "active": bool(a)} for u, n, r, a in rows]

    def add(
        self, signer: Signer, user: str, name: str, roles: list[str], password_hash: bytes, actor: str
    ) -> None:
        """Create an account (one transaction: the ``clerk.set`` record and the secret)."""
        if not _USER.fullmatch(user or ""):
            raise InputError(
                ErrorCode.FIELD_INVALID, "user name: 2–32 of a-z 0-9 _ . - starting with a letter"
            )
        if not name.strip() or len(name) > 50:
            raise InputError(ErrorCode.FIELD_INVALID, "display name: 1–50 characters")
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise InputError(ErrorCode.FIELD_INVALID, f"roles must be among {', '.join(ROLES)}")
        with transaction(self.db):
            if self.get(user) is not None:
                raise InputError(ErrorCode.ACCOUNT_EXISTS, user)
            self._record(signer, user, name.strip(), sorted(set(roles)), True, actor)
            self.db.conn.execute(
                "INSERT INTO clerk_secrets (user, hash, changed) VALUES (?, ?, ?)",
                (user, password_hash, self.clock.now()),
            )

    def set_active(self, signer: Signer, user: str, active: bool, actor: str) -> None:
        with transaction(self.db):
            account = self._existing(user)
            roles = [str(r) for r in account["roles"]]  # type: ignore[attr-defined]
            self._record(signer, user, str(account["name"]), roles, active, actor)
            if not active:
                self.db.conn.execute("DELETE FROM sessions WHERE user = ?", (user,))

    def set_roles(self, signer: Signer, user: str, roles: list[str], actor: str) -> None:
        if not roles or any(r not in ROLES for r in roles):
            raise InputError(ErrorCode.FIELD_INVALID, f"roles must be among {', '.join(ROLES)}")
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

    def _existing(self, user: str) -> dict[str, object]:
        account = self.get(user)
        if account is None:
            raise InputError(ErrorCode.ACCOUNT_UNKNOWN, user)
        return account

    def _record(
        self, signer: Signer, user: str, name: str, roles: list[str], active: bool, actor: str
    ) -> None:
        body = {"user": user, "name": name, "roles": roles, "active": active}
        self.log.append_local(signer, self.code, kinds.CLERK_SET, body, actor=actor)

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
                (_digest(token), user, csrf, now, now),
            )
        return token, csrf

    def session(self, token: str) -> Principal:
        """The principal of a session token; ``E_SESSION_EXPIRED`` when unknown or expired."""
        now = self.clock.now()
        row = self.db.conn.execute(
            "SELECT user, csrf, created, seen FROM sessions WHERE digest = ?", (_digest(token),)
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
                self.db.conn.execute("UPDATE sessions SET seen = ? WHERE digest = ?", (now, _digest(token)))
        roles = frozenset(str(r) for r in account["roles"])  # type: ignore[attr-defined]
        return Principal(str(user), str(account["name"]), roles, csrf)

    def end_session(self, token: str) -> None:
        with transaction(self.db):
            self.db.conn.execute("DELETE FROM sessions WHERE digest = ?", (_digest(token),))

    # -- device tokens --------------------------------------------------------------------

    def add_device(self, name: str, roles: list[str]) -> str:
        """A new device token (shown once); the store keeps only its SHA-256."""
        if not _USER.fullmatch(name or ""):
            raise InputError(
                ErrorCode.FIELD_INVALID, "device name: 2–32 of a-z 0-9 _ . - starting with a letter"
            )
        if not roles or any(r not in ("clerk", "auditor") for r in roles):
            raise InputError(ErrorCode.FIELD_INVALID, "a device may have the roles clerk and auditor")
        token = "tbd_" + secrets.token_urlsafe(32)
        with transaction(self.db):
            if self.db.conn.execute("SELECT 1 FROM device_tokens WHERE name = ?", (name,)).fetchone():
                raise InputError(ErrorCode.ACCOUNT_EXISTS, name)
            self.db.conn.execute(
                "INSERT INTO device_tokens (digest, name, roles, created, active) VALUES (?, ?, ?, ?, 1)",
                (_digest(token), name, json.dumps(sorted(set(roles))), self.clock.now()),
            )
        return token

    def disable_device(self, name: str) -> None:
        with transaction(self.db):
            cur = self.db.conn.execute("UPDATE device_tokens SET active = 0 WHERE name = ?", (name,))
            if cur.rowcount == 0:
                raise InputError(ErrorCode.ACCOUNT_UNKNOWN, name)

    def devices(self) -> list[dict[str, object]]:
        rows = self.db.conn.execute(
            "SELECT name, roles, created, active, last_used FROM device_tokens ORDER BY name"
        ).fetchall()
        return [
            {"name": n, "roles": json.loads(r), "created": c, "active": bool(a), "last_used": lu}
            for n, r, c, a, lu in rows
        ]

    def device(self, token: str) -> Principal:
        """The principal of a device token; ``E_TOKEN_INVALID`` when unknown or disabled."""
        row = self.db.conn.execute(
            "SELECT name, roles, active FROM device_tokens WHERE digest = ?", (_digest(token),)
        ).fetchone()
        if row is None or not row[2]:
            raise AuthorityError(ErrorCode.TOKEN_INVALID)
        return Principal(f"device:{row[0]}", str(row[0]), frozenset(json.loads(row[1])))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def _dummy_hash() -> bytes:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH
