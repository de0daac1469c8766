"""Delegation grants, revocations, and the one algorithm that decides whether they authorize.

A grant says "node ``aud`` may handle items ``items`` in mode ``mode`` from ``nbf`` to
``exp``", signed by its issuer (the record's ``origin``). Central issues root grants;
a holder with ``depth`` ≥ 1 may issue sub-grants that only narrow its own (SPKI
intersection, UCAN principal alignment; notes (c)). This module owns the grant and
revocation bodies, the narrowing rule (:func:`check_narrowing`) and the verification
algorithm (:func:`authorize`), the same code at every node and at central.

It does no I/O and verifies no signatures: the record layer has verified each grant's and
revocation's signature, its issuer's certificate at the record's ``ts`` and its ``net``
before anything here sees it. Data comes in through :class:`GrantSource`; the subtree
relation (derived from certificates, not string prefixes) through an ``is_within``
callable.

Body of a ``grant`` record (canonical CBOR, text keys)::

    {"aud": tstr,            # grantee node code
     "items": [tstr, ...],   # item codes, sorted, unique, at least one
     "mode": "proxy" | "direct" | "same_power",
     "nbf": uint, "exp": uint,          # nbf < exp; valid for nbf <= t <= exp
     "depth": uint,                     # remaining re-delegation depth
     "parent": bstr(32),                # id of the grant this narrows; ABSENT for root grants
     "cat": uint}                       # catalog version the item codes refer to

Body of a ``revocation`` record::

    {"target": bstr(32), "effective": uint, "reason": tstr}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Any, Protocol

from core.catalog import CatalogRelease, Mode, item_available
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError, error

ID_SIZE = 32  # SHA-256 record ids
MAX_CHAIN = 4  # root → town → village needs 2; 4 leaves room, and bounds the walk
_ITEM = re.compile(r"[A-Z]{2,4}-[0-9]{4}")

IsWithin = Callable[[str, str], bool]
"""``is_within(code, ancestor)``: whether ``code`` is ``ancestor`` or lies in its subtree."""


def _invalid(message: str) -> InputError:
    return InputError(ErrorCode.GRANT_INVALID, detail=message)


def _uint(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{name} must be a non-negative integer, not {value!r}")
    return value


def _id(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != ID_SIZE:
        raise _invalid(f"{name} must be {ID_SIZE} bytes")
    return value


def _code(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"{name} must be a non-empty node code")
    return value


def _exact(where: str, body: object, required: frozenset[str], optional: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid(f"{where}: expected a map, not {type(body).__name__}")
    unknown = sorted(str(k) for k in body if k not in required | optional)
    if unknown:
        raise _invalid(f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise _invalid(f"{where}: missing field(s) {', '.join(missing)}")
    return body


@dataclass(frozen=True)
class Grant:
    """A delegation grant as carried by one ``grant`` record.

    ``id``, ``issuer`` and ``ts`` come from the record envelope (id, origin, ts); the other
    fields are the body.
    """

    id: bytes
    issuer: str
    ts: int
    aud: str
    items: tuple[str, ...]
    mode: Mode
    nbf: int
    exp: int
    depth: int
    parent: bytes | None
    cat: int

    def __post_init__(self) -> None:
        _id("id", self.id)
        _code("issuer", self.issuer)
        _uint("ts", self.ts)
        _code("aud", self.aud)
        if not isinstance(self.items, tuple) or not self.items:
            raise _invalid("items must be a non-empty tuple of item codes")
        for code in self.items:
            if not isinstance(code, str) or not _ITEM.fullmatch(code):
                raise _invalid(f"items: {code!r} is not an item code")
        if list(self.items) != sorted(set(self.items)):
            raise _invalid("items must be sorted and unique")
        if not isinstance(self.mode, Mode):
            raise _invalid("mode must be a Mode")
        _uint("nbf", self.nbf)
        _uint("exp", self.exp)
        if self.exp <= self.nbf:
            raise _invalid("exp must be after nbf")
        _uint("depth", self.depth)
        if self.parent is not None:
            _id("parent", self.parent)
        if _uint("cat", self.cat) < 1:
            raise _invalid("cat must be a catalog version (at least 1)")

    @property
    def is_root(self) -> bool:
        """Issued by the root itself: no parent grant."""
        return self.parent is None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "aud": self.aud,
            "items": list(self.items),
            "mode": self.mode.value,
            "nbf": self.nbf,
            "exp": self.exp,
            "depth": self.depth,
            "cat": self.cat,
        }
        # Absent rather than null: one grant, one encoding.
        if self.parent is not None:
            body["parent"] = self.parent
        return body

    @classmethod
    def from_body(cls, body: object, *, id: bytes, issuer: str, ts: int) -> Grant:
        """The grant in ``body`` of the record ``id`` by ``issuer`` at ``ts``, checked strictly."""
        b = _exact("grant", body, _GRANT_REQUIRED, frozenset({"parent"}))
        items = b["items"]
        if not isinstance(items, list):
            raise _invalid("items must be a list")
        mode = b["mode"]
        if not isinstance(mode, str) or mode not in {m.value for m in Mode}:
            raise _invalid(f"mode must be proxy, direct or same_power, not {mode!r}")
        if "parent" in b and b["parent"] is None:
            raise _invalid("parent must be absent for a root grant, not null")
        return cls(
            id=id,
            issuer=issuer,
            ts=ts,
            aud=b["aud"],
            items=tuple(items),
            mode=Mode(mode),
            nbf=b["nbf"],
            exp=b["exp"],
            depth=b["depth"],
            parent=b.get("parent"),
            cat=b["cat"],
        )


_GRANT_REQUIRED = frozenset({"aud", "items", "mode", "nbf", "exp", "depth", "cat"})


@dataclass(frozen=True)
class Revocation:
    """An irreversible revocation of grant ``target`` from ``effective`` on.

    Valid when issued by the target's issuer, by an issuer above it in the chain, or by
    the root (UCAN's rule); :func:`authorize` ignores any other.
    """

    target: bytes
    effective: int
    reason: str
    issuer: str

    def __post_init__(self) -> None:
        _id("target", self.target)
        _uint("effective", self.effective)
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise _invalid("a revocation needs a reason")
        _code("issuer", self.issuer)

    def to_body(self) -> dict[str, Any]:
        return {"target": self.target, "effective": self.effective, "reason": self.reason}

    @classmethod
    def from_body(cls, body: object, *, issuer: str) -> Revocation:
        b = _exact("revocation", body, frozenset({"target", "effective", "reason"}), frozenset())
        return cls(target=b["target"], effective=b["effective"], reason=b["reason"], issuer=issuer)


class GrantSource(Protocol):
    """What :func:`authorize` reads: grants by id, and the revocations naming a grant."""

    def grant(self, grant_id: bytes) -> Grant | None: ...

    def revocations_of(self, grant_id: bytes) -> Iterable[Revocation]: ...


def _widens(message: str) -> AuthorityError:
    return AuthorityError(ErrorCode.GRANT_WIDENS, detail=message)


def check_narrowing(child: Grant, parent: Grant) -> None:
    """Require ``child`` to be a lawful sub-grant of ``parent``.

    Raises:
        AuthorityError: ``E_GRANT_AUDIENCE`` when the child's issuer is not the parent's
            grantee (principal alignment); ``E_GRANT_DEPTH`` when the parent allows no
            re-delegation or the child keeps too much depth; ``E_GRANT_WIDENS`` when the
            child adds items, a stronger mode, or validity outside the parent's.
    """
    if child.issuer != parent.aud:
        raise AuthorityError(
            ErrorCode.GRANT_AUDIENCE,
            detail=f"sub-grant issued by {child.issuer}, but the parent grant was given to {parent.aud}",
        )
    if parent.depth < 1:
        raise AuthorityError(ErrorCode.GRANT_DEPTH, detail=f"parent grant to {parent.aud} has depth 0")
    if child.depth > parent.depth - 1:
        raise AuthorityError(
            ErrorCode.GRANT_DEPTH, detail=f"sub-grant depth {child.depth} > parent depth {parent.depth} - 1"
        )
    extra = sorted(set(child.items) - set(parent.items))
    if extra:
        raise _widens(f"items not in the parent grant: {', '.join(extra)}")
    if child.mode > parent.mode:
        raise _widens(f"mode {child.mode.value} is stronger than the parent's {parent.mode.value}")
    if child.nbf < parent.nbf or child.exp > parent.exp:
        raise _widens(
            f"validity [{child.nbf}, {child.exp}] is outside the parent's [{parent.nbf}, {parent.exp}]"
        )


class Verdict(StrEnum):
    OK = "ok"
    STALE = "stale"  # accept the intake, flag it stale-authority; the town or central decides
    REFUSED = "refused"


@dataclass(frozen=True)
class Authorization:
    """The outcome of :func:`authorize`.

    ``code``/``detail`` explain a STALE or REFUSED verdict (the first reason found);
    ``flags`` lists every staleness code seen. ``chain`` holds the grant ids checked,
    leaf first.
    """

    verdict: Verdict
    code: ErrorCode | None = None
    detail: str = ""
    flags: tuple[ErrorCode, ...] = ()
    chain: tuple[bytes, ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    @property
    def accepted(self) -> bool:
        """Whether the intake goes ahead (OK, or STALE with a flag)."""
        return self.verdict is not Verdict.REFUSED

    def raise_if_refused(self) -> None:
        if self.verdict is Verdict.REFUSED:
            raise error(self.code or ErrorCode.NOT_AUTHORIZED, self.detail)


class _Refused(Exception):
    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _collect_chain(leaf: Grant, source: GrantSource, root: str) -> list[Grant]:
    chain = [leaf]
    while chain[-1].parent is not None:
        if len(chain) >= MAX_CHAIN:
            raise _Refused(ErrorCode.GRANT_CHAIN_BROKEN, f"chain longer than {MAX_CHAIN} grants")
        parent_id = chain[-1].parent
        parent = source.grant(parent_id)
        if parent is None:
            raise _Refused(ErrorCode.GRANT_CHAIN_BROKEN, f"parent grant {parent_id.hex()[:16]} is not held")
        if parent.id != parent_id:
            raise _Refused(
                ErrorCode.GRANT_CHAIN_BROKEN, f"source returned the wrong grant for {parent_id.hex()}"
            )
        chain.append(parent)
    top = chain[-1]
    if top.issuer != root:
        raise _Refused(
            ErrorCode.GRANT_CHAIN_BROKEN, f"the chain starts at {top.issuer}, not at the root {root}"
        )
    return chain


def _check_revocations(chain: list[Grant], source: GrantSource, root: str, at: int) -> None:
    # Who may revoke chain[i]: its own issuer, every issuer above it, and the root.
    for i, g in enumerate(chain):
        revokers = {root} | {a.issuer for a in chain[i:]}
        for r in source.revocations_of(g.id):
            if r.target == g.id and r.issuer in revokers and r.effective <= at:
                raise _Refused(
                    ErrorCode.GRANT_REVOKED,
                    f"grant {g.id.hex()[:16]} to {g.aud} revoked by {r.issuer} at {r.effective}: {r.reason}",
                )


def _check_link(g: Grant, is_within: IsWithin) -> None:
    if g.aud == g.issuer:
        raise _Refused(ErrorCode.GRANT_AUDIENCE, f"{g.issuer} granted to itself")
    try:
        inside = is_within(g.aud, g.issuer)
    except TongbanError as exc:  # a malformed code (E_ADMIN_CODE): the grant cannot hold
        raise _Refused(ErrorCode.GRANT_AUDIENCE, f"{g.aud} under {g.issuer}: {exc.text('en')}") from exc
    if not inside:
        raise _Refused(ErrorCode.GRANT_AUDIENCE, f"{g.aud} is not inside the area of its granter {g.issuer}")


def _check_leaf(
    leaf: Grant, node: str, item: str, mode: Mode, catalog: CatalogRelease | None, tier: str | None
) -> ErrorCode | None:
    if leaf.aud != node:
        raise _Refused(ErrorCode.GRANT_AUDIENCE, f"the grant is for {leaf.aud}, not for {node}")
    if item not in leaf.items:
        raise _Refused(ErrorCode.GRANT_ITEM, f"{item} is not among the items granted to {node}")
    if mode > leaf.mode:
        raise _Refused(ErrorCode.GRANT_MODE, f"{item}: {mode.value} asked, {leaf.mode.value} granted")
    if tier is None:
        return None
    if catalog is None or catalog.version != leaf.cat:
        return ErrorCode.GRANT_CATALOG  # not held yet: degrade, like expiry
    entry = catalog.get(item)
    if entry is None:
        raise _Refused(ErrorCode.GRANT_ITEM, f"{item} is not in catalog version {leaf.cat}")
    allowed = item_available(entry, tier)
    if allowed is None or mode > allowed:
        shown = allowed.value if allowed is not None else "not offered"
        raise _Refused(ErrorCode.GRANT_MODE, f"{item} at {tier}: {mode.value} asked, catalog says {shown}")
    return None


def authorize(
    leaf: Grant | bytes,
    *,
    node: str,
    item: str,
    mode: Mode,
    at: int,
    source: GrantSource,
    is_within: IsWithin,
    root: str,
    catalog: CatalogRelease | None = None,
    tier: str | None = None,
) -> Authorization:
    """Whether ``node`` may handle ``item`` in ``mode`` at time ``at`` under grant ``leaf``.

    The algorithm of notes (c), on grants whose signatures, issuer certificates and
    ``net`` the record layer has already checked:

    1. Walk from the leaf through ``parent`` ids to a root grant, at most
       :data:`MAX_CHAIN` grants; the root grant must be issued by ``root``.
    2. No grant in the chain may have a revocation effective at or before ``at`` issued
       by its own issuer, an issuer above it, or the root.
    3. Every grant's ``aud`` lies inside its issuer's subtree (``is_within``), and is not
       the issuer itself.
    4. Each link narrows its parent (:func:`check_narrowing`: principal alignment,
       depth, items ⊆, mode ≤, validity ⊆).
    5. The leaf is for ``node``, lists ``item``, and allows ``mode``.
    6. If ``tier`` is given, the catalog release the leaf refers to (``catalog``, whose
       version must equal ``leaf.cat``) must offer ``item`` at ``tier`` in ``mode``.
    7. ``nbf <= at <= exp`` for every grant in the chain.

    **Degrade, don't refuse.** A village may have been offline for days or have a wrong
    clock, so a failure of step 7 alone (``E_GRANT_EXPIRED``, ``E_GRANT_NOT_YET_VALID``)
    or a catalog release not held yet (``E_GRANT_CATALOG``) gives ``STALE``: the clerk
    takes the walk-in, the record is flagged stale-authority, and the town or central
    decides. Everything a node *knows* to be wrong (a revocation it holds, a broken or
    foreign chain, widening, an item or mode not granted) gives ``REFUSED``. Refusals
    take precedence over staleness. Central re-runs this with ``at`` = the record's
    ``ts``; judging backdating against receipt times is central's policy, not this
    function's.
    """
    try:
        if isinstance(leaf, bytes):
            found = source.grant(leaf)
            if found is None:
                raise _Refused(ErrorCode.GRANT_CHAIN_BROKEN, f"grant {leaf.hex()[:16]} is not held")
            leaf = found
        chain = _collect_chain(leaf, source, root)
        _check_revocations(chain, source, root, at)
        for g in chain:
            _check_link(g, is_within)
        for child, parent in pairwise(chain):
            try:
                check_narrowing(child, parent)
            except AuthorityError as exc:
                raise _Refused(exc.code, exc.detail) from exc
        flags: list[ErrorCode] = []
        details: list[str] = []
        catalog_flag = _check_leaf(leaf, node, item, mode, catalog, tier)
        for g in chain:
            if at < g.nbf:
                flags.append(ErrorCode.GRANT_NOT_YET_VALID)
                details.append(f"grant to {g.aud} valid from {g.nbf}, now {at}")
            elif at > g.exp:
                flags.append(ErrorCode.GRANT_EXPIRED)
                details.append(f"grant to {g.aud} expired at {g.exp}, now {at}")
        if catalog_flag is not None:
            flags.append(catalog_flag)
            details.append(f"catalog version {leaf.cat} is not held")
    except _Refused as refusal:
        return Authorization(Verdict.REFUSED, refusal.code, refusal.detail)
    ids = tuple(g.id for g in chain)
    if flags:
        return Authorization(Verdict.STALE, flags[0], "; ".join(details), tuple(dict.fromkeys(flags)), ids)
    return Authorization(Verdict.OK, chain=ids)


def decider_for(
    chain: Sequence[Grant], node: str, mode: Mode, root: str, department: str | None = None
) -> str:
    """The one party that decides a case taken in at ``node`` under ``chain`` (leaf first).

    A direct (or same-power) case is decided where it was taken in. A proxy case goes up
    the chain to the first grantee whose grant lets it decide the item (mode direct or
    stronger); when no grant in the chain does, ``department`` decides — the department
    whose certificate names the item (:mod:`core.departments`), if one does — else the root.
    """
    if mode is not Mode.PROXY:
        return node
    for grant in chain[1:]:
        if grant.mode >= Mode.DIRECT:
            return grant.aud
    return department or root
