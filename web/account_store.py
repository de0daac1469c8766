"""The secret side of accounts, in a store's own tables: password hashes, login backoff, sessions.

Tables (:data:`ACCOUNT_TABLES`: a node's migration ``node/0002_clerk_secrets``, central's
``central/0002_accounts`` and a department's ``department/0001_accounts`` create them;
:data:`LOGIN_FAILURE_TABLES`: the node's ``node/0003_login_failures``, central's
``central/0006_login_failures`` and the department's ``department/0001_accounts``):

``clerk_secrets``
    one row per account that has a password: its argon2id hash. (Its columns ``failed``
    and ``locked_until`` are no longer written: the backoff is per source, below.)
``sessions``
    the SHA-256 of each session token, its user and CSRF token, when it started and when
    it was last seen.
``login_failures``
    the failed logins of one user name from one source address since the last good one,
    until when that pair is throttled, and when it last failed; for names that exist and
    names that do not alike. Bounded: rows idle for :data:`FAILURES_KEPT_SECONDS` are
    swept, and at most :data:`FAILURES_KEPT_ROWS` are kept (the oldest go first).

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


LOGIN_FAILURE_TABLES = (
    """
    CREATE TABLE login_failures (
        user TEXT NOT NULL, source TEXT NOT NULL, failed INTEGER NOT NULL,
        locked_until INTEGER NOT NULL, last INTEGER NOT NULL,
        PRIMARY KEY (user, source)
    )
    """,
    "CREATE INDEX login_failures_last ON login_failures (last)",
)

FAILURES_KEPT_SECONDS = 86_400
"""A (user, source) pair with no failure for a day starts again from nothing."""
FAILURES_KEPT_ROWS = 10_000
"""At most this many pairs are kept; a flood of names or addresses evicts the oldest."""


@dataclass(frozen=True)
class Secret:
    """An account's password hash."""

    hash: bytes


@dataclass(frozen=True)
class Failures:
    """The failed logins of one (user, source) pair since its last good one."""

    failed: int
    locked_until: int  # epoch s; 0 when not throttled


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    created: int
    seen: int


def secret(db: Database, user: str) -> Secret | None:
    row = db.conn.execute("SELECT hash FROM clerk_secrets WHERE user = ?", (user,)).fetchone()
    return Secret(bytes(row[0])) if row is not None else None


def add_secret(db: Database, user: str, password_hash: bytes, now: int) -> None:
    """The password of a new account."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO clerk_secrets (user, hash, changed) VALUES (?, ?, ?)", (user, password_hash, now)
        )


def secrets_with_dates(db: Database) -> list[tuple[str, bytes, int]]:
    """Every account's password hash and when it was set, by user."""
    rows = db.conn.execute("SELECT user, hash, changed FROM clerk_secrets ORDER BY user").fetchall()
    return [(user, bytes(hashed), changed) for user, hashed, changed in rows]


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
        db.conn.execute("DELETE FROM login_failures WHERE user = ?", (user,))


# -- the login backoff, per (user, source) ---------------------------------------------------


def failures(db: Database, user: str, source: str) -> Failures | None:
    """The failed logins of ``user`` from ``source`` since the last good one, if any."""
    row = db.conn.execute(
        "SELECT failed, locked_until FROM login_failures WHERE user = ? AND source = ?", (user, source)
    ).fetchone()
    return Failures(int(row[0]), int(row[1])) if row is not None else None


def record_failure(db: Database, user: str, source: str, failed: int, locked_until: int, now: int) -> None:
    """A failed login of ``user`` from ``source``: the count so far and until when the pair
    is throttled. Sweeps pairs idle for a day, and the oldest past the row cap."""
    with transaction(db):
        db.conn.execute(
            "INSERT INTO login_failures (user, source, failed, locked_until, last) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user, source) DO UPDATE SET failed = excluded.failed,"
            " locked_until = excluded.locked_until, last = excluded.last",
            (user, source, failed, locked_until, now),
        )
        db.conn.execute(
            "DELETE FROM login_failures WHERE last < ? AND locked_until < ?",
            (now - FAILURES_KEPT_SECONDS, now),
        )
        db.conn.execute(
            "DELETE FROM login_failures WHERE rowid IN"
            " (SELECT rowid FROM login_failures ORDER BY last DESC LIMIT -1 OFFSET ?)",
            (FAILURES_KEPT_ROWS,),
        )


def clear_failures(db: Database, user: str, source: str | None = None) -> int:
    """Forget the failed logins of ``user`` from ``source`` (every source when None);
    how many pairs were forgotten."""
    with transaction(db):
        if source is None:
            cur = db.conn.execute("DELETE FROM login_failures WHERE user = ?", (user,))
        else:
            cur = db.conn.execute("DELETE FROM login_failures WHERE user = ? AND source = ?", (user, source))
        return int(cur.rowcount)


def backed_off(db: Database, at_least: int) -> dict[str, int]:
    """The user names with ``at_least`` failed logins in a row from some source: how many
    sources each."""
    rows = db.conn.execute(
        "SELECT user, count(*) FROM login_failures WHERE failed >= ? GROUP BY user", (at_least,)
    ).fetchall()
    return {str(user): int(n) for user, n in rows}


def start_session(
    db: Database, token_digest: bytes, user: str, csrf: str, now: int, *, idle_before: int
) -> None:
    """A session for ``user`` after a good login; sessions last seen before ``idle_before``
    (anyone's) are dropped."""
    with transaction(db):
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
