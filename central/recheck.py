"""Central re-checks every intake against the delegation chain as of its intake time.

A village decides alone whether it may take a case in, with what it holds: it may have
been offline when a grant was revoked, its grant may have expired, its clock may be
wrong. Central holds every grant and every revocation, so it runs the same algorithm
(:func:`core.grants.authorize`, through :func:`sync.projection.delegation`'s store source) again
for each case at the intake record's ``ts`` and keeps the verdict in ``intake_checks``:

``ok``
    the chain was valid at intake.
``stale``
    taken under expired or not-yet-valid authority, or a catalog the node did not hold
    (``E_GRANT_EXPIRED`` …): the walk-in was served, someone should look.
``refused``
    taken after a revocation's cut-off (``E_GRANT_REVOKED``: the node could not have
    known while offline) or under a chain that does not hold; or signed by a node after
    its certificate's cut-off (``E_CERT_REVOKED``).

The check is not a projection (it would slow ingest, and its answer changes when a
revocation arrives later): :func:`recheck` runs after ingest — central's timed duties
call it, and so does the dashboard before it reads — and checks the cases not checked
yet, plus every case at or after the effective time of a revocation that arrived since
the last run, every intake a certificate revocation has put past its cut-off since, and,
when grants arrived, the cases whose chain was broken (a village that fell back to central
sends its intakes before its town sends the grants). Deleting the table checks everything
again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.admin import is_within, tier_for_code
from core.catalog import Mode
from core.errors import ErrorCode, TongbanError
from core.grants import Verdict, authorize
from sync.projection.catalog import catalog_release
from sync.projection.grants import StoreGrants
from sync.record.db import transaction

BATCH = 500


@dataclass(frozen=True)
class Flagged:
    case_no: str
    node: str
    item: str
    received: int
    verdict: str
    code: str | None
    detail: str


def recheck(db: Database, root: str) -> int:
    """Check every case not checked yet, and those a new revocation may touch; how many."""
    conn = db.conn
    held = int(conn.execute("SELECT count(*) FROM grant_revocations").fetchone()[0])
    seen = conn.execute("SELECT value FROM central_state WHERE key = 'recheck_revocations'").fetchone()
    if seen is None or int(seen[0]) != held:
        since = _earliest_new_effective(db, int(seen[0]) if seen else 0)
        with transaction(db):
            conn.execute("DELETE FROM intake_checks WHERE received >= ?", (since,))
            conn.execute(
                "INSERT INTO central_state (key, value) VALUES ('recheck_revocations', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(held),),
            )
    _forget_outdated(db)
    checked = 0
    source = StoreGrants(db)
    catalogs: dict[int, object] = {}
    while True:
        rows = conn.execute(
            "SELECT c.case_no, c.node, c.item, c.mode, c.grant_id, c.cat, c.received, c.intake_id,"
            " EXISTS (SELECT 1 FROM quarantined q WHERE q.id = c.intake_id)"
            " FROM cases c LEFT JOIN intake_checks k ON k.case_no = c.case_no"
            " WHERE k.case_no IS NULL LIMIT ?",
            (BATCH,),
        ).fetchall()
        if not rows:
            return checked
        results: list[tuple[str, str, str, int, str, str | None, str]] = []
        for case_no, node, item, mode, grant_id, cat, received, _intake_id, quarantined in rows:
            verdict: str
            code: str | None
            if quarantined:
                verdict, code, detail = "refused", ErrorCode.CERT_REVOKED.value, "signed after the cut-off"
            elif grant_id is None:
                verdict, code, detail = "refused", ErrorCode.GRANT_ITEM.value, "no grant named at intake"
            else:
                if cat not in catalogs:
                    catalogs[cat] = catalog_release(db, cat)
                verdict, code, detail = _judge(
                    source, root, node, item, Mode(mode), bytes(grant_id), received, catalogs[cat]
                )
            results.append((case_no, node, item, received, verdict, code, detail))
        with transaction(db):
            conn.executemany(
                "INSERT OR REPLACE INTO intake_checks (case_no, node, item, received, verdict, code, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                results,
            )
        checked += len(results)


def _forget_outdated(db: Database) -> None:
    """Drop the verdicts that records arrived since may change: an intake signed after a
    certificate cut-off learnt since (``cert.revoke`` may also lower a cut-off), and a chain
    that did not hold while one of its grants had not reached central yet."""
    conn = db.conn
    grants = int(conn.execute("SELECT count(*) FROM grants").fetchone()[0])
    seen = conn.execute("SELECT value FROM central_state WHERE key = 'recheck_grants'").fetchone()
    with transaction(db):
        conn.execute(
            "DELETE FROM intake_checks WHERE coalesce(code, '') != ? AND case_no IN"
            " (SELECT c.case_no FROM quarantined q JOIN cases c ON c.intake_id = q.id)",
            (ErrorCode.CERT_REVOKED.value,),
        )
        if seen is None or int(seen[0]) != grants:
            conn.execute("DELETE FROM intake_checks WHERE code = ?", (ErrorCode.GRANT_CHAIN_BROKEN.value,))
            conn.execute(
                "INSERT INTO central_state (key, value) VALUES ('recheck_grants', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(grants),),
            )


def _earliest_new_effective(db: Database, seen: int) -> int:
    """The earliest effective time among revocations beyond the first ``seen`` held.

    Revocations are only ever added, so the rows past the first ``seen`` in insertion
    order are the new ones.
    """
    row = db.conn.execute(
        "SELECT min(effective) FROM"
        " (SELECT effective FROM grant_revocations ORDER BY rowid LIMIT -1 OFFSET ?)",
        (seen,),
    ).fetchone()
    return int(row[0]) if row[0] is not None else 0


def _judge(
    source: StoreGrants,
    root: str,
    node: str,
    item: str,
    mode: Mode,
    grant_id: bytes,
    at: int,
    catalog: object,
) -> tuple[str, str | None, str]:
    try:
        tier = tier_for_code(node).value
    except TongbanError as exc:
        return "refused", exc.code.value, exc.detail
    # A case's mode is proxy or direct; a same-power grant allows a direct intake.
    auth = authorize(
        grant_id,
        node=node,
        item=item,
        mode=mode,
        at=at,
        source=source,
        is_within=is_within,
        root=root,
        catalog=catalog,  # type: ignore[arg-type]
        tier=tier,
    )
    if auth.verdict is Verdict.OK:
        return "ok", None, ""
    code = auth.code.value if auth.code else None
    if auth.verdict is Verdict.STALE:
        return "stale", ",".join(f.value for f in auth.flags) or code, auth.detail
    return "refused", code, auth.detail


def flagged(db: Database, limit: int = 200) -> list[Flagged]:
    """Intakes central found taken under stale or broken authority, newest first."""
    rows = db.conn.execute(
        "SELECT case_no, node, item, received, verdict, code, detail FROM intake_checks"
        " WHERE verdict != 'ok' ORDER BY received DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [Flagged(*row) for row in rows]


def counts(db: Database) -> dict[str, int]:
    """How many checked intakes have each verdict."""
    rows = db.conn.execute("SELECT verdict, count(*) FROM intake_checks GROUP BY verdict").fetchall()
    return {verdict: n for verdict, n in rows} | {"pending": _pending(db)}


def _pending(db: Database) -> int:
    row = db.conn.execute(
        "SELECT count(*) FROM cases c LEFT JOIN intake_checks k ON k.case_no = c.case_no"
        " WHERE k.case_no IS NULL"
    ).fetchone()
    return int(row[0])
