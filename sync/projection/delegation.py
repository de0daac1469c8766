"""Delegation as stored: issuing grants, reading them back, and asking what they authorize.

Central issues root grants and a town issues sub-grants to its villages with the same
function, :func:`issue_grant`; it refuses a grant that would not survive ingest (a widening
sub-grant is refused where it is made, before anything is signed). :class:`StoreGrants`
(:mod:`sync.projection.grants`) is the :class:`core.grants.GrantSource` over a store's
``grants`` tables, and
:func:`authority_for` runs :func:`core.grants.authorize` over every grant a node holds for
an item and keeps the best verdict; a proxy case no grantee of its chain decides goes to the
department that decides the item (:mod:`sync.projection.departments`), else to the root.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from core.admin import is_within
from core.catalog import CatalogRelease, Item, Mode, item_available
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from core.grants import Authorization, Grant, Verdict, authorize, check_narrowing, decider_for
from sync.projection.catalog import catalog_release
from sync.projection.departments import department_for
from sync.projection.grants import StoreGrants
from sync.record import kinds, trust
from sync.record.db import transaction
from sync.record.envelope import Keyring, Record, Signer
from sync.record.log import RecordLog

DAY = 86_400
log_ = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemAuthority:
    """What a node may do with one item now, and under which grant."""

    item: Item
    mode: Mode | None  # the case mode an intake would get (direct / proxy); None: not allowed
    auth: Authorization
    grant: Grant | None
    decider: str | None
    owner: str | None = None  # 异地代收: another city's item (its net), mirrored from its release
    owner_name: str = ""  # that city's name
    owner_cat: int = 0  # the version of its catalog the item is pinned to

    @property
    def allowed(self) -> bool:
        return self.mode is not None and self.auth.accepted

    @property
    def key(self) -> str:
        """What the window names the item by: its code, or ``CODE@NET`` for another city's
        (two cities' catalogs may use the same code)."""
        return f"{self.item.code}@{self.owner}" if self.owner else self.item.code


def authority_for(
    db: Database, log: RecordLog, node: str, tier: str, item: Item, catalog: CatalogRelease, at: int
) -> ItemAuthority:
    """The best authority ``node`` holds for ``item`` at time ``at``: OK over STALE over REFUSED."""
    anchor = log.anchor()
    root = anchor.origin if anchor else ""
    source = StoreGrants(db)
    offered = item_available(item, tier)
    department = department_for(db, item, at)  # decides what would go up to the root
    best: ItemAuthority | None = None
    for grant in source.held_by(node):
        if item.code not in grant.items:
            continue
        mode = min(grant.mode, offered) if offered is not None else grant.mode
        cat = catalog if catalog.version == grant.cat else catalog_release(db, grant.cat)
        auth = authorize(
            grant,
            node=node,
            item=item.code,
            mode=mode,
            at=at,
            source=source,
            is_within=is_within,
            root=root,
            catalog=cat,
            tier=tier,
        )
        case_mode = Mode.DIRECT if mode is Mode.SAME_POWER else mode
        chain = [g for g in (source.grant(gid) for gid in auth.chain) if g is not None]
        decider = decider_for(chain, node, case_mode, root, department) if auth.accepted else None
        candidate = ItemAuthority(item, case_mode if auth.accepted else None, auth, grant, decider)
        if best is None or _rank(candidate) > _rank(best):
            best = candidate
    if best is None:
        refusal = Authorization(
            Verdict.REFUSED, ErrorCode.GRANT_ITEM, f"no grant for {item.code} held by {node}"
        )
        return ItemAuthority(item, None, refusal, None, None)
    return best


def _rank(a: ItemAuthority) -> tuple[int, int]:
    order = {Verdict.OK: 2, Verdict.STALE: 1, Verdict.REFUSED: 0}
    return (order[a.auth.verdict], a.grant.exp if a.grant else 0)


def issue_grant(
    log: RecordLog,
    signer: Signer | Keyring,
    origin: str,
    *,
    aud: str,
    items: Sequence[str],
    mode: Mode,
    nbf: int,
    exp: int,
    depth: int,
    cat: int,
    parent: bytes | None = None,
    actor: str,
) -> Record:
    """Sign and append a grant from ``origin``; refused before signing if it would not hold.

    Raises:
        AuthorityError: ``E_GRANT_WIDENS``, ``E_GRANT_DEPTH``, ``E_GRANT_AUDIENCE``,
            ``E_GRANT_CHAIN_BROKEN`` (parent not held, or not held by ``origin``).
        InputError: ``E_GRANT_INVALID`` for a malformed grant.
    """
    draft = Grant(
        id=b"\0" * 32,
        issuer=origin,
        ts=log.clock.now(),
        aud=aud,
        items=tuple(sorted(set(items))),
        mode=mode,
        nbf=nbf,
        exp=exp,
        depth=depth,
        parent=parent,
        cat=cat,
    )
    if aud == origin or not is_within(aud, origin):
        raise AuthorityError(ErrorCode.GRANT_AUDIENCE, f"{aud} is not inside the area of {origin}")
    if parent is not None:
        held = StoreGrants(log.db).grant(parent)
        if held is None or held.aud != origin:
            raise AuthorityError(
                ErrorCode.GRANT_CHAIN_BROKEN, "the parent grant is not one of this node's grants"
            )
        check_narrowing(draft, held)
    body = draft.to_body()
    return log.append_local(signer, origin, kinds.GRANT_ISSUE, body, actor=actor)


def revoke_grant(
    log: RecordLog, signer: Signer | Keyring, origin: str, target: bytes, reason: str, actor: str
) -> Record:
    """Revoke ``target`` from now on, and with it every earlier grant of its line (same
    issuer, grantee, items and mode) still unrevoked and unexpired: a renewal overlaps its
    predecessor, which would otherwise go on authorizing. Returns the target's revocation."""
    if not reason.strip():
        raise InputError(ErrorCode.FIELD_REQUIRED, "reason")
    source = StoreGrants(log.db)
    grant = source.grant(target)
    if grant is None:
        raise InputError(ErrorCode.GRANT_INVALID, f"grant {target.hex()[:16]} is not held")
    now = log.clock.now()
    line = [
        g.id
        for g, revoked in source.issued_by(grant.issuer)
        if not revoked
        and g.id != target
        and (g.aud, g.items, g.mode) == (grant.aud, grant.items, grant.mode)
        and g.exp >= now
    ]
    body = {"target": target, "effective": now, "reason": reason.strip()}
    with transaction(log.db):
        record = log.append_local(signer, origin, kinds.GRANT_REVOKE, body, actor=actor)
        for older in line:
            body = {"target": older, "effective": now, "reason": reason.strip()}
            log.append_local(signer, origin, kinds.GRANT_REVOKE, body, actor=actor)
    return record


def split_by_mode(
    catalog: CatalogRelease, tier: str, items: Iterable[str], cap: Mode
) -> dict[Mode, list[str]]:
    """``items`` grouped by the mode they can be granted in at ``tier``, at most ``cap``.

    One grant has one mode, so delegating a set of items takes one grant per group. Items
    not offered at ``tier`` are left out.
    """
    groups: dict[Mode, list[str]] = {}
    for code in sorted(set(items)):
        item = catalog.get(code)
        offered = item_available(item, tier) if item is not None else None
        if offered is None:
            continue
        groups.setdefault(min(offered, cap), []).append(code)
    return groups


RENEW_WHEN_LEFT = 3
"""A grant is renewed when less than a third of its validity is left (short grants,
auto-renewed: a revocation that a node misses stops mattering soon)."""


@dataclass(frozen=True)
class Renewal:
    grant: Grant  # the newest unrevoked grant of its line (same grantee, items, mode)
    parent: Grant | None  # the grant to renew under (None: a root grant)


def renewals_due(db: Database, issuer: str, now: int) -> list[Renewal]:
    """The grants ``issuer`` should renew now.

    Grants to the same grantee for the same items in the same mode form a line; only the
    newest grant of a line is renewed, when a third or less of its validity is left (or it
    has expired), and not when it is revoked: revoking it ends the line. A sub-grant is
    renewed under the issuer's best current grant that still covers it (unrevoked, depth
    left, items and mode included); when there is none, or it would not extend the
    validity, it is left to expire. Nothing is renewed for a grantee with no unrevoked
    certificate.
    """
    source = StoreGrants(db)
    # The line's newest grant (issued_by lists newest first) speaks for it: when that one
    # is revoked the line ends, and an older grant still unrevoked is not renewed instead.
    newest: dict[tuple[str, tuple[str, ...], Mode], tuple[Grant, bool]] = {}
    for grant, revoked in source.issued_by(issuer):
        newest.setdefault((grant.aud, grant.items, grant.mode), (grant, revoked))
    live = trust.live_codes(db)
    # A grantee whose every certificate is revoked gets nothing renewed.
    lines = {key: grant for key, (grant, revoked) in newest.items() if not revoked and grant.aud in live}
    holdings = [g for g in source.held_by(issuer) if g.depth >= 1 and not list(source.revocations_of(g.id))]
    due = []
    for grant in lines.values():
        if grant.exp - now > (grant.exp - grant.nbf) // RENEW_WHEN_LEFT:
            continue
        if grant.parent is None:
            due.append(Renewal(grant, None))
            continue
        covering = [
            p
            for p in holdings
            if p.exp > now
            and set(grant.items) <= set(p.items)
            and grant.mode <= p.mode
            and grant.depth <= p.depth - 1
        ]
        best = max(covering, key=lambda p: p.exp, default=None)
        if best is not None and best.exp > grant.exp:
            due.append(Renewal(grant, best))
    return due


def renew_grants(
    log: RecordLog,
    signer: Signer | Keyring,
    issuer: str,
    *,
    cat_for: Callable[[Grant], int] | None = None,
) -> list[Record]:
    """Renew every grant :func:`renewals_due` names, for the same span as before.

    ``cat_for``: the catalog version a renewed root grant refers to (central moves it to
    its current release when that still offers every item); a sub-grant takes its new
    parent's.
    """
    now = log.clock.now()
    made = []
    for due in renewals_due(log.db, issuer, now):
        grant, parent = due.grant, due.parent
        span = grant.exp - grant.nbf
        nbf, exp = now - DAY, now + span - DAY
        if parent is not None:
            nbf, exp = max(parent.nbf, nbf), min(parent.exp, exp)
        try:
            record = issue_grant(
                log,
                signer,
                issuer,
                aud=grant.aud,
                items=grant.items,
                mode=grant.mode,
                nbf=nbf,
                exp=exp,
                depth=grant.depth,
                cat=parent.cat if parent is not None else (cat_for(grant) if cat_for else grant.cat),
                parent=parent.id if parent is not None else None,
                actor="sys:renew",
            )
        except TongbanError as exc:  # this one is left to expire, visibly; the others go on
            log_.warning("grant %s to %s not renewed: %s", grant.id.hex()[:16], grant.aud, exc.render("en"))
            continue
        made.append(record)
    return made
