"""The secret side of accounts, in a store's own tables: password hashes, login backoff, sessions.

Tables (:data:`ACCOUNT_TABLES`; a node's migration ``node/0002_clerk_secrets`` and
central's ``central/0002_accounts`` create them):

``clerk_secrets``
    one row per account that has a password: its argon2id hash, the failed logins since
    the last good one and until when the account is throttled.
``sessions``
    the SHA-256 of each session token, its user and CSRF token, when it started and when
    it was last seen.

The accounts themselves (names, roles, active) are records (:mod:`sync.projection.clerks`).
The policy — how long sessions last, how the backoff grows — is :mod:`web.accounts`'s;
here each writer is one transaction (a savepoint within a caller's).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from sync.record.db import transaction

# Frozen: the node's shipped migration ``0002_clerk_secrets`` created the same two tables;
# a change is a new migration.
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


@dataclass(frozen=True)
class Secret:
    """An account's password hash and login backoff."""

    hash: bytes
    failed: int  # failed logins since the last good one
    locked_until: int  # epoch s; 0 when not throttled


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    created: int
    seen: int


def secret(db: Database, user: str) -> Secret | None:
    row = db.conn.execute(
        "SELECT hash, failed, locked_until FROM clerk_secrets WHERE user = ?", (user,)
    ).fetchone()
    return Secret(bytes(row[0]), int(row[1]), int(row[2])) if row is not None else None


def add_secret(db: Database, user: str, password_hash: bytes, now: int) -> None:
    """The password of a new account."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO clerk_secrets (user, hash, changed) VALUES (?, ?, ?)", (user, password_hash, now)
        )


def replace_secret(db: Database, user: str, password_hash: bytes, now: int) -> None:
    """A new password for ``user``: the backoff is cleared and every session of ``user`` ends."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO clerk_secrets (user, hash, changed) VALUES (?, ?, ?)"
            " ON CONFLICT (user) DO UPDATE SET hash = excluded.hash, changed = excluded.changed,"
            " failed = 0, locked_until = 0",
            (user, password_hash, now),
        )
        db.conn.execute("DELETE FROM sessions WHERE user = ?", (user,))


def record_failure(db: Database, user: str, failed: int, locked_until: int) -> None:
    """A failed login of ``user``: the count so far and until when it is throttled."""
    with transaction(db):
        db.conn.execute(
            "UPDATE clerk_secrets SET failed = ?, locked_until = ? WHERE user = ?",
            (failed, locked_until, user),
        )


def start_session(
    db: Database, token_digest: bytes, user: str, csrf: str, now: int, *, idle_before: int
) -> None:
    """A session for ``user`` after a good login: the backoff is cleared, sessions last seen
    before ``idle_before`` (anyone's) are dropped."""
    with transaction(db):
        db.conn.execute("UPDATE clerk_secrets SET failed = 0, locked_until = 0 WHERE user = ?", (user,))
        db.conn.execute("DELETE FROM sessions WHERE seen < ?", (idle_before,))
        db.conn.execute(
            "INSERT INTO sessions (digest, user, csrf, created, seen) VALUES (?, ?, ?, ?, ?)",
            (token_digest, user, csrf, now, now),
        )


def session(db: Database, token_digest: bytes) -> Session | None:
    row = db.conn.execute(
        "SELECT user, csrf, created, seen FROM sessions WHERE digest = ?", (token_digest,)
    ).fetchone()
    return Session(str(row[0]), str(row[1]), int(row[2]), int(row[3])) if row is not None else None


def touch_session(db: Database, token_digest: bytes, now: int) -> None:
    """Note that the session was used at ``now``."""
    with transaction(db):
        db.conn.execute("UPDATE sessions SET seen = ? WHERE digest = ?", (now, token_digest))


def end_session(db: Database, token_digest: bytes) -> None:
    with transaction(db):
        db.conn.execute("DELETE FROM sessions WHERE digest = ?", (token_digest,))


def end_sessions_of(db: Database, user: str) -> None:
    """End every session of ``user`` (an account disabled)."""
    with transaction(db):
        db.conn.execute("DELETE FROM sessions WHERE user = ?", (user,))
