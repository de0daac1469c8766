"""Accounts, logins and sessions of one store (a node's clerks, central's operators).

An account's existence, name, roles and whether it is active are records (``clerk.set``)
so that every change is signed, named with its actor, and visible at central. Secrets are
not: the argon2id password hash, failed-login counters and sessions live in the store's
own tables (:mod:`web.account_store`) and never leave it. Everything here works with no
network.

:class:`Accounts` is parameterised by the roles its owner knows (a node's clerk roles,
central's operator roles) and by how the owner writes a record: a node signs with its
key, central with the key of the record's role. It never signs anything by hand.

Login: a failure counts against the pair (user name, source address), never against the
account as such, so failures from one address never slow down another: from the third
failure in a row the pair is throttled for 5 s, doubling up to 15 min
(``E_LOGIN_THROTTLED``); a good login from that address, a new password or an admin's
unlock (:meth:`Accounts.unlock`) clears it. Nothing tells a name that exists from one that
does not: both answer ``E_LOGIN_FAILED`` after the same hash work and count alike, a
throttled pair answers ``E_LOGIN_THROTTLED`` whether the name exists or not, after waiting
as long as a hash takes (without hashing: a throttled requester costs no CPU), and a
disabled account answers exactly as a wrong password does. Sessions expire after 8 idle
hours and at the latest 12 hours after login (a working day); each carries its own CSRF
token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import nacl.exceptions
import nacl.pwhash
from sqlite_utils import Database

from core.clock import Clock
from core.errors import AuthorityError, ErrorCode, InputError, StoreError
from core.intake import clean_name
from sync.projection import clerks
from sync.record import kinds
from sync.record.db import transaction
from web import account_store
from web.account_store import ACCOUNT_TABLES

__all__ = ["ACCOUNT_TABLES", "Accounts", "Principal", "csrf_ok", "digest", "hash_password", "verify_password"]

MIN_PASSWORD = 10
IDLE_SECONDS = 8 * 3600
MAX_SESSION_SECONDS = 12 * 3600
THROTTLE_AFTER = 3
THROTTLE_FIRST = 5
THROTTLE_MAX = 15 * 60
OPSLIMIT = 2
MEMLIMIT = 64 * 1024 * 1024
USER_NAME = re.compile(r"[a-z][a-z0-9_.-]{1,31}")
MAX_DISPLAY_NAME = 50
MAX_KEY = 64  # of a user name or a source address kept with failed logins
_DUMMY_HASH: bytes | None = None
_HASH_SECONDS: deque[float] = deque(maxlen=15)  # how long the last verifications took


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
        """The account ``user``: user, name, roles, active."""
        return clerks.account(self.db, self.owner, user)

    def all(self) -> list[dict[str, object]]:
        """Every account, by user name."""
        return clerks.accounts(self.db, self.owner)

    def add(
        self, signer: S, user: str, name: str, roles: list[str], password_hash: bytes, actor: str
    ) -> None:
        """Create an account (one transaction: the ``clerk.set`` record and the secret)."""
        if not USER_NAME.fullmatch(user or ""):
            raise InputError(
                ErrorCode.FIELD_INVALID, "user name: 2–32 of a-z 0-9 _ . - starting with a letter"
            )
        display = clean_name("display name", name, limit=MAX_DISPLAY_NAME)
        self._check_roles(roles)
        with transaction(self.db):
            if self.get(user) is not None:
                raise InputError(ErrorCode.ACCOUNT_EXISTS, user)
            self._record(signer, user, display, sorted(set(roles)), True, actor)
            account_store.add_secret(self.db, user, password_hash, self.clock.now())

    def set_active(self, signer: S, user: str, active: bool, actor: str) -> None:
        with transaction(self.db):
            account = self._existing(user)
            roles = [str(r) for r in account["roles"]]
            self._record(signer, user, str(account["name"]), roles, active, actor)
            if not active:
                account_store.end_sessions_of(self.db, user)

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
            account_store.replace_secret(self.db, user, password_hash, self.clock.now())

    def _check_roles(self, roles: list[str]) -> None:
        if not roles or any(r not in self.roles for r in roles):
            raise InputError(ErrorCode.FIELD_INVALID, f"roles must be among {', '.join(self.roles)}")

    def _existing(self, user: str) -> dict[str, Any]:
        account = clerks.account(self.db, self.owner, user)
        if account is None:
            raise InputError(ErrorCode.ACCOUNT_UNKNOWN, user)
        return account

    def _record(self, signer: S, user: str, name: str, roles: list[str], active: bool, actor: str) -> None:
        body: dict[str, Any] = {"user": user, "name": name, "roles": roles, "active": active}
        self._write(signer, kinds.CLERK_SET, body, actor)

    # -- login and sessions ---------------------------------------------------------------

    def check_login(
        self,
        user: str,
        password: str,
        source: str,
        verify: Callable[[bytes, str], bool] | None = None,
    ) -> None:
        """Raise unless ``user`` may log in with ``password`` from ``source`` (the client's
        address) now; counts the failures of the pair (module docstring).

        ``verify`` checks a password against a stored hash (default :func:`verify_password`);
        the web service passes one that runs off the event loop.
        """
        verify = verify or verify_password
        user, source = user[:MAX_KEY], source[:MAX_KEY]  # what anyone sends is kept bounded
        now = self.clock.now()
        backoff = account_store.failures(self.db, user, source)
        if backoff is not None and backoff.locked_until > now:
            time.sleep(hash_seconds())  # answer when a hash would have: the name stays unknown
            wait = backoff.locked_until - now
            raise AuthorityError(ErrorCode.LOGIN_THROTTLED, f"try again in {wait} s", zh=f"{wait} 秒后可再试")
        stored = account_store.secret(self.db, user)
        account = self.get(user)
        right = _timed(verify, stored.hash if stored is not None else _dummy_hash(), password)
        if not (right and stored is not None and account is not None and account["active"]):
            failed = (backoff.failed if backoff is not None else 0) + 1
            account_store.record_failure(self.db, user, source, failed, throttled_until(failed, now), now)
            raise AuthorityError(ErrorCode.LOGIN_FAILED)
        if backoff is not None:
            account_store.clear_failures(self.db, user, source)

    def unlock(self, user: str) -> int:
        """An admin's unlock: forget every failed login of ``user`` (from every source);
        how many sources were throttled or counting."""
        self._existing(user)
        return account_store.clear_failures(self.db, user)

    def backed_off(self) -> dict[str, int]:
        """The accounts throttled from some source: how many sources each."""
        return account_store.backed_off(self.db, THROTTLE_AFTER)

    def start_session(self, user: str) -> tuple[str, str]:
        """A new session for ``user`` (after :meth:`check_login`): (token, csrf)."""
        now = self.clock.now()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        account_store.start_session(self.db, digest(token), user, csrf, now, idle_before=now - IDLE_SECONDS)
        return token, csrf

    def session(self, token: str) -> Principal:
        """The principal of a session token; ``E_SESSION_EXPIRED`` when unknown or expired."""
        now = self.clock.now()
        found = account_store.session(self.db, digest(token))
        if found is None:
            raise AuthorityError(ErrorCode.SESSION_EXPIRED)
        account = clerks.account(self.db, self.owner, found.user)
        if account is None or not account["active"]:
            raise AuthorityError(ErrorCode.ACCOUNT_DISABLED, found.user)
        if now - found.seen > IDLE_SECONDS or now - found.created > MAX_SESSION_SECONDS:
            self.end_session(token)
            raise AuthorityError(ErrorCode.SESSION_EXPIRED)
        if now - found.seen > 60:  # keep writes off the hot path: note activity once a minute
            with contextlib.suppress(StoreError):  # a store that cannot be written can still be read
                account_store.touch_session(self.db, digest(token), now)
        roles = frozenset(str(r) for r in account["roles"])
        return Principal(found.user, str(account["name"]), roles, found.csrf)

    def end_session(self, token: str) -> None:
        account_store.end_session(self.db, digest(token))


def throttled_until(failed: int, now: int) -> int:
    """Until when an account with ``failed`` failed logins in a row is throttled (0: it is not)."""
    if failed < THROTTLE_AFTER:
        return 0
    return now + min(THROTTLE_MAX, THROTTLE_FIRST * int(2 ** (failed - THROTTLE_AFTER)))


def hash_seconds() -> float:
    """How long a password verification takes here: the median of the last few."""
    if not _HASH_SECONDS:
        _timed(verify_password, _dummy_hash(), "")
    return statistics.median(_HASH_SECONDS)


def _timed(verify: Callable[[bytes, str], bool], stored: bytes, password: str) -> bool:
    started = time.monotonic()
    try:
        return verify(stored, password)
    finally:
        _HASH_SECONDS.append(time.monotonic() - started)


def _dummy_hash() -> bytes:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH
