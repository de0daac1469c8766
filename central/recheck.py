"""Central re-checks every intake against the delegation chain as of its intake time.

A village decides alone whether it may take a case in, with what it holds: it may have
been offline when a grant was revoked, its grant may have expired, its clock may be
wrong. Central holds every grant and every revocation, so it runs the same algorithm
(:func:`core.grants.authorize`, through :func:`sync.projection.delegation`'s store source) again
for each case at the intake record's ``ts`` and keeps the verdict in ``intake_checks``
(:class:`central.store.CentralStore`):

``ok``
    the chain was valid at intake.
``stale``
    taken under expired or not-yet-valid authority, or a catalog the node did not hold
    (``E_GRANT_EXPIRED`` …): the walk-in was served, someone should look.
``refused``
    taken after a revocation's cut-off (``E_GRANT_REVOKED``: the node could not have
    known while offline) or under a chain that does not hold; or signed by a node after
    its certificate's cut-off (``E_CERT_REVOKED``); or dated when no honest node signs
    (``E_BACKDATED``, below).

Another city's item (异地代收, an intake with ``owner``) names no grant: it is ``ok`` when
our cross-certification of that city in force at the intake's time, and not revoked by
then, lists the item for 代收代办 at the intake's version (:func:`core.peer_items.offered_at`).

**Backdating.** An intake's time is its author's clock, and grants are judged at that
time, so a stolen key (or a node that sets its clock back) could take a case in "before" a
revocation. Two witnesses bound the time, and an intake outside either is ``refused``:

* the record before it in its node's chain: a later record is not older (by more than
  :data:`CLOCK_SKEW`, a clock corrected backwards);
* the parent's receipts (``link.receipt``): the intake existed when the first receipt that
  covers its seq was signed, and a node that held it was offline no longer than
  ``max_offline_days`` (``central.toml [recheck]``, default 30), so it was signed no
  earlier than that before the receipt. Until a covering receipt reaches central, the
  newest receipt held for the node stands in (the intake was signed after it). A node
  honestly offline for longer than ``max_offline_days`` has its intakes of that time
  flagged too: someone should look.

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

from central.config import RecheckSection
from central.store import CentralStore, IntakeCheck, Unchecked
from core.admin import is_within, tier_for_code
from core.catalog import CatalogRelease, Mode
from core.errors import ErrorCode, TongbanError
from core.grants import Verdict, authorize
from core.peer_items import offered_at
from sync.projection.catalog import catalog_release
from sync.projection.grants import StoreGrants
from sync.projection.peers import peer_state
from sync.projection.status import first_witness
from sync.record.log import ChainPlace, chain_places, stored_record

BATCH = 500
DAY = 86_400
CLOCK_SKEW = 300
"""Seconds an intake may be dated before the record before it (a clock set right)."""
MAX_OFFLINE_DAYS = RecheckSection().max_offline_days


def recheck(store: CentralStore, root: str, *, max_offline_days: int = MAX_OFFLINE_DAYS) -> int:
    """Check every case not checked yet, and those a new revocation may touch; how many.

    ``max_offline_days``: how long before its first receipt an intake may have been signed
    (``central.toml [recheck]``)."""
    grants = StoreGrants(store.db)
    held = grants.revocation_count()
    seen = store.recheck_seen("revocations")
    if seen is None or seen != held:
        store.forget_checks_since(grants.earliest_effective_after(seen or 0), held)
    store.forget_outdated_checks(grants.count())
    checked = 0
    catalogs: dict[int, CatalogRelease | None] = {}
    while True:
        batch = store.unchecked_intakes(BATCH)
        if not batch:
            return checked
        results = []
        places = chain_places(store.db, [case.intake_id for case in batch])
        for case in batch:
            if case.cat not in catalogs:
                catalogs[case.cat] = catalog_release(store.db, case.cat)
            dated = _backdated(store, case, places.get(case.intake_id), max_offline_days * DAY)
            owner = _owner(store, case)
            if owner is not None and not case.quarantined and not dated:
                results.append(_check_peer(store, case, owner))
            else:
                results.append(_check(case, grants, root, catalogs[case.cat], dated))
        store.record_checks(results)
        checked += len(results)


def _backdated(store: CentralStore, case: Unchecked, place: ChainPlace | None, max_offline: int) -> str:
    """Why ``case``'s intake is dated when no honest node signs it ("": it is not)."""
    if place is None:
        return ""
    signed = case.received
    if place.before_ts is not None and signed < place.before_ts - CLOCK_SKEW:
        return f"signed {_span(place.before_ts - signed)} before the record before it in {case.node}'s chain"
    witnessed = first_witness(store.db, case.node, place.seq)
    if witnessed is not None and signed < witnessed - max_offline:
        return (
            f"signed {_span(witnessed - signed)} before the first receipt for it;"
            f" a node is offline {max_offline // DAY} days at most"
        )
    return ""


def _span(seconds: int) -> str:
    return f"{seconds / DAY:.1f} days" if seconds >= DAY else f"{seconds // 60} min"


def _check(
    case: Unchecked, source: StoreGrants, root: str, catalog: CatalogRelease | None, backdated: str = ""
) -> IntakeCheck:
    code: str | None
    if case.quarantined:
        verdict, code, detail = "refused", ErrorCode.CERT_REVOKED.value, "signed after the cut-off"
    elif backdated:
        verdict, code, detail = "refused", ErrorCode.BACKDATED.value, backdated
    elif case.grant_id is None:
        verdict, code, detail = "refused", ErrorCode.GRANT_ITEM.value, "no grant named at intake"
    else:
        verdict, code, detail = _judge(source, root, case, case.grant_id, catalog)
    return IntakeCheck(case.case_no, case.node, case.item, case.received, verdict, code, detail)


def _owner(store: CentralStore, case: Unchecked) -> str | None:
    """The city whose item a grant-less case is (异地代收), read from its intake."""
    if case.grant_id is not None:
        return None
    record = stored_record(store.db, case.intake_id)
    owner = record.body.get("owner") if record is not None else None
    return owner if isinstance(owner, str) else None


def _check_peer(store: CentralStore, case: Unchecked, owner: str) -> IntakeCheck:
    """Another city's item needs no grant: the agreement in force at the intake's time
    listed it for 代收代办 at its version (the mirror was checked at ingest)."""
    try:
        offered_at(peer_state(store.db, owner), case.item, case.cat, case.received)
        verdict, code, detail = "ok", None, ""
    except TongbanError as exc:
        verdict, code, detail = "refused", exc.code.value, exc.detail
    return IntakeCheck(case.case_no, case.node, case.item, case.received, verdict, code, detail)


def _judge(
    source: StoreGrants, root: str, case: Unchecked, grant_id: bytes, catalog: CatalogRelease | None
) -> tuple[str, str | None, str]:
    try:
        tier = tier_for_code(case.node).value
    except TongbanError as exc:
        return "refused", exc.code.value, exc.detail
    # A case's mode is proxy or direct; a same-power grant allows a direct intake.
    auth = authorize(
        grant_id,
        node=case.node,
        item=case.item,
        mode=Mode(case.mode),
        at=case.received,
        source=source,
        is_within=is_within,
        root=root,
        catalog=catalog,
        tier=tier,
    )
    if auth.verdict is Verdict.OK:
        return "ok", None, ""
    code = auth.code.value if auth.code else None
    if auth.verdict is Verdict.STALE:
        return "stale", ",".join(f.value for f in auth.flags) or code, auth.detail
    return "refused", code, auth.detail


def flagged(store: CentralStore, limit: int = 200) -> list[IntakeCheck]:
    """Intakes central found taken under stale or broken authority, newest first."""
    return store.flagged_intakes(limit)


def counts(store: CentralStore) -> dict[str, int]:
    """How many checked intakes have each verdict, and how many wait (``pending``)."""
    return store.check_counts()
