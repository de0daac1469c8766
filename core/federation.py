"""Federated cities: the cross-certifications one city signs about another, and the rule
that admits or refuses a foreign city's act against them (docs/federation.md).

Each city is its own trust domain: its network (``net``) and its central's root. Two cities
federate by an agreement each side's operator confirms after comparing the other's root
fingerprint out of band; each side then signs, with its own central's keys, a
**cross-certification** (``peer.cert``) about the other. It is

* directional — ours about them says nothing of theirs about us;
* scoped — items of the peer's catalog (each with the catalog version it comes from), the
  modes (``proxy_intake`` 代收代办, ``joint_part`` 多地联办) and the roles the peer's nodes
  may play on cases of those items;
* short-lived — ``exp - nbf`` at most :data:`MAX_VALIDITY` (30 days), renewed while the
  agreement holds, each renewal or change of scope with ``serial`` + 1;
* revocable (``peer.revoke``: every serial up to the one named ends at ``effective``);
* never transitive — only our own city's records certify a peer, and a peer's record is
  admitted only when the peer itself carries it.

Everything here is pure: the store's projection (:mod:`sync.projection.peers`) reads the
records into a :class:`FederationState`; :func:`admit` decides an act; :func:`check_succession`
is what the projection asks before it takes a new cross-certification.

The order of :func:`admit`'s checks, and each refusal's code::

    addressed to another city                                E_PEER_MISADDRESSED
    a third city's record, passed on by a peer               E_PEER_TRANSITIVE
    no cross-certification of the city                       E_PEER_UNKNOWN
    the agreement revoked                                    E_PEER_REVOKED
    signed under another root than the agreement's           E_PEER_ROOT_CHANGED
    no cross-certification in force when the case began      E_PEER_EXPIRED
    the peer's node revoked by the peer                      E_PEER_NODE_REVOKED
    a message already received                               E_PEER_REPLAY
    a decision on one of our own items                       E_PEER_OWN_ITEM
    item, version, mode or role outside the scope            E_PEER_SCOPE
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import AuthorityError, ErrorCode, RecordError

DAY = 86_400
MAX_VALIDITY = 30 * DAY
"""The longest a cross-certification may be valid: renewals keep an agreement alive."""

PROXY_INTAKE = "proxy_intake"  # 代收代办: one city's window takes in the other's item
JOINT_PART = "joint_part"  # 多地联办: each city's department decides its part of one case
MODES = (PROXY_INTAKE, JOINT_PART)

ACCEPT = "accept"  # 受理: the owning city's acceptance receipt (starts its time limit)
DECIDE = "decide"  # 审批: the decision (or a part's decision)
DELIVER = "deliver"  # 送达: the result sent back to the window
INTAKE = "intake"  # 代收: the peer's window takes in one of OUR items on our behalf
ROLES = (ACCEPT, DECIDE, DELIVER, INTAKE)

MODE_LABELS: dict[str, tuple[str, str]] = {
    PROXY_INTAKE: ("代收代办", "proxy intake"),
    JOINT_PART: ("多地联办", "joint handling"),
}
"""Each mode's name (Chinese, English): the screens' one source."""
ROLE_LABELS: dict[str, tuple[str, str]] = {
    ACCEPT: ("受理", "acceptance"),
    DECIDE: ("审批", "decision"),
    DELIVER: ("送达", "delivery"),
    INTAKE: ("代收（本市事项由对方窗口收件）", "intake of our item at their window"),
}
"""Each role's name (Chinese, English)."""

IN_FORCE, EXPIRING, EXPIRED, REVOKED = "in_force", "expiring", "expired", "revoked"
STANDING_LABELS: dict[str, tuple[str, str]] = {
    IN_FORCE: ("在效", "in force"),
    EXPIRING: ("即将到期", "expiring"),
    EXPIRED: ("已过期", "expired"),
    REVOKED: ("已撤销", "revoked"),
}
"""Where an agreement stands (:meth:`PeerState.standing`), by name (Chinese, English)."""
EXPIRING_WITHIN = 7 * DAY
"""An agreement whose newest cross-certification ends this soon is shown as expiring."""
RENEW_WHEN_LEFT = 3
"""Central renews a cross-certification when less than a third of its validity is left,
as it renews its root grants: a renewal that fails once is tried again long before the end."""

MAX_SCOPE_ITEMS = 1000


def _refuse(detail: str) -> RecordError:
    return RecordError(ErrorCode.SCHEMA, f"peer.cert: {detail}")


def _uint(body: Mapping[str, Any], name: str, what: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(ErrorCode.SCHEMA, f"{what}: {name} must be a non-negative integer")
    return value


def _text(body: Mapping[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise RecordError(ErrorCode.SCHEMA, f"{what}: {name} must be 1-200 characters")
    return value


def _names(value: object, allowed: tuple[str, ...], what: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or len(set(value)) != len(value):
        raise _refuse(f"{what} must be a non-empty list without repeats")
    if value != sorted(value) or any(v not in allowed for v in value):
        raise _refuse(f"{what} must be sorted names among {', '.join(allowed)}")
    return frozenset(value)


@dataclass(frozen=True)
class ScopeItem:
    """One item the peer's nodes may act on here: an item of the peer's catalog its nodes
    accept, decide and deliver on cases we take in (roles ``accept``, ``decide``,
    ``deliver``), or one of our own items the peer's windows take in for us (role
    ``intake`` alone, ``cat`` then our catalog's version)."""

    item: str
    cat: int  # the version of the peer's catalog the item comes from
    modes: frozenset[str]
    roles: frozenset[str]

    def to_body(self) -> dict[str, Any]:
        return {"item": self.item, "cat": self.cat, "modes": sorted(self.modes), "roles": sorted(self.roles)}

    @classmethod
    def from_body(cls, body: object) -> ScopeItem:
        if not isinstance(body, dict) or set(body) != {"item", "cat", "modes", "roles"}:
            raise _refuse("each scope item has exactly item, cat, modes, roles")
        item = body["item"]
        if not isinstance(item, str) or not item or len(item) > 64 or not item.isprintable():
            raise _refuse("an item code must be 1-64 printable characters")
        roles = _names(body["roles"], ROLES, "roles")
        if INTAKE in roles and len(roles) > 1:
            raise _refuse("intake (our item, taken in by the peer) goes with no other role")
        return cls(item, _uint(body, "cat", "peer.cert scope"), _names(body["modes"], MODES, "modes"), roles)

    @property
    def ours(self) -> bool:
        """An item of our own catalog, which the peer takes in for us."""
        return INTAKE in self.roles


@dataclass(frozen=True)
class Scope:
    """What a cross-certification lets the peer do: items (sorted by code, each once)."""

    items: tuple[ScopeItem, ...]

    def get(self, code: str) -> ScopeItem | None:
        return next((i for i in self.items if i.item == code), None)

    def to_body(self) -> dict[str, Any]:
        return {"items": [i.to_body() for i in self.items]}

    @classmethod
    def from_body(cls, body: object) -> Scope:
        if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
            raise _refuse("scope must be exactly {items: [...]}")
        items = tuple(ScopeItem.from_body(i) for i in body["items"])
        codes = [i.item for i in items]
        if not items or len(items) > MAX_SCOPE_ITEMS:
            raise _refuse(f"scope lists 1 to {MAX_SCOPE_ITEMS} items")
        if codes != sorted(set(codes)):
            raise _refuse("scope items must be sorted by code, each once")
        return cls(items)


@dataclass(frozen=True)
class CrossCert:
    """A ``peer.cert``: our city recognises the city ``peer`` within ``scope``."""

    peer: str  # the other city's net
    name: str
    root_pk: bytes  # the peer's root signing key: what the operators compared
    agreement: bytes  # SHA-256 of the confirmed proposal; kept by every renewal
    serial: int
    nbf: int
    exp: int
    scope: Scope
    issued_at: int = 0  # the record's place in our chain (its seq), 0 when not yet issued

    def to_body(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "name": self.name,
            "root_pk": self.root_pk,
            "agreement": self.agreement,
            "serial": self.serial,
            "nbf": self.nbf,
            "exp": self.exp,
            "scope": self.scope.to_body(),
        }

    @classmethod
    def from_body(cls, body: object, issued_at: int = 0) -> CrossCert:
        fields = {"peer", "name", "root_pk", "agreement", "serial", "nbf", "exp", "scope"}
        if not isinstance(body, dict) or set(body) != fields:
            raise _refuse(f"fields must be exactly {', '.join(sorted(fields))}")
        for name in ("root_pk", "agreement"):
            if not isinstance(body[name], bytes) or len(body[name]) != 32:
                raise _refuse(f"{name} must be 32 bytes")
        cert = cls(
            peer=_text(body, "peer", "peer.cert"),
            name=_text(body, "name", "peer.cert"),
            root_pk=body["root_pk"],
            agreement=body["agreement"],
            serial=_uint(body, "serial", "peer.cert"),
            nbf=_uint(body, "nbf", "peer.cert"),
            exp=_uint(body, "exp", "peer.cert"),
            scope=Scope.from_body(body["scope"]),
            issued_at=issued_at,
        )
        if cert.serial < 1:
            raise _refuse("serial starts at 1")
        if not cert.nbf < cert.exp <= cert.nbf + MAX_VALIDITY:
            raise _refuse("exp must be after nbf and at most 30 days after it")
        return cert

    def holds(self, at: int) -> bool:
        return self.nbf <= at < self.exp


@dataclass(frozen=True)
class PeerRevocation:
    """A ``peer.revoke``: every cross-certification of ``peer`` up to ``serial`` ends at
    ``effective``. A later agreement (a higher serial, confirmed again) is not touched."""

    peer: str
    serial: int
    effective: int
    reason: str

    def to_body(self) -> dict[str, Any]:
        return {"peer": self.peer, "serial": self.serial, "effective": self.effective, "reason": self.reason}

    @classmethod
    def from_body(cls, body: object) -> PeerRevocation:
        if not isinstance(body, dict) or set(body) != {"peer", "serial", "effective", "reason"}:
            raise RecordError(
                ErrorCode.SCHEMA, "peer.revoke: fields must be exactly peer, serial, effective, reason"
            )
        revocation = cls(
            _text(body, "peer", "peer.revoke"),
            _uint(body, "serial", "peer.revoke"),
            _uint(body, "effective", "peer.revoke"),
            _text(body, "reason", "peer.revoke"),
        )
        if revocation.serial < 1:
            raise RecordError(ErrorCode.SCHEMA, "peer.revoke: serial starts at 1")
        return revocation

    def covers(self, cert: CrossCert, now: int) -> bool:
        return cert.serial <= self.serial and self.effective <= now


@dataclass(frozen=True)
class PeerState:
    """What a store holds about one peer city: our cross-certifications of it (by serial),
    our revocations, and the peer's own revoked nodes (code → last good seq) as far as its
    records have reached this store."""

    net: str
    certs: tuple[CrossCert, ...]
    revocations: tuple[PeerRevocation, ...] = ()
    revoked_nodes: Mapping[str, int] = field(default_factory=dict)

    @property
    def newest(self) -> CrossCert | None:
        return max(self.certs, key=lambda c: c.serial, default=None)

    def revoked(self, cert: CrossCert, now: int) -> PeerRevocation | None:
        return next((r for r in self.revocations if r.covers(cert, now)), None)

    @property
    def ended(self) -> PeerRevocation | None:
        """The revocation that ends the agreement as it stands (covering the newest serial,
        whenever it takes effect); None while the agreement holds."""
        newest = self.newest
        if newest is None:
            return None
        return next((r for r in self.revocations if r.serial >= newest.serial), None)

    def standing(self, now: int) -> str:
        """:data:`REVOKED`, :data:`EXPIRED`, :data:`EXPIRING` (ends within
        :data:`EXPIRING_WITHIN`) or :data:`IN_FORCE`, judged on the newest serial."""
        newest = self.newest
        if newest is None or self.revoked(newest, now) is not None:
            return REVOKED
        if now >= newest.exp:
            return EXPIRED
        return EXPIRING if newest.exp - now <= EXPIRING_WITHIN else IN_FORCE

    def renews_at(self) -> int | None:
        """When central's timer renews the newest serial: once a third or less of its
        validity is left (None: the agreement is revoked, nothing is renewed)."""
        newest = self.newest
        if newest is None or self.ended is not None:
            return None
        return newest.exp - (newest.exp - newest.nbf) // RENEW_WHEN_LEFT

    def renewal_due(self, now: int) -> CrossCert | None:
        """The newest cross-certification, when central should renew it now (:meth:`renews_at`
        has come) and it still holds.

        An expired one is not renewed by the timer: the agreement lapsed (central was stopped
        past its end), and an operator renews it by hand after looking at why.
        """
        at = self.renews_at()
        newest = self.newest
        if at is None or newest is None or not newest.holds(now) or now < at:
            return None
        return newest

    def in_force_at(self, at: int) -> CrossCert | None:
        """The newest cross-certification valid at ``at``."""
        held = [c for c in self.certs if c.holds(at)]
        return max(held, key=lambda c: c.serial, default=None)


@dataclass(frozen=True)
class FederationState:
    """Everything :func:`admit` reads: our net, the peers, our own items, the messages seen."""

    home: str  # our net
    peers: Mapping[str, PeerState]
    own_items: frozenset[str] = frozenset()
    seen: frozenset[bytes] = frozenset()  # ids of cross-city messages already taken


@dataclass(frozen=True)
class ForeignClaim:
    """A foreign city's act, as a store sees it once the record's signature has checked.

    ``case_started`` is when the case began as our side recorded it (our window's intake,
    or our central's receipt of the peer's acceptance), never the peer's word; for an act
    that opens a case it is now.
    """

    id: bytes  # the message's id (its record id): the replay cache's key
    net: str  # the city whose record it is (the record's own net)
    via: str  # the city that carried it to us
    to: str  # the city it is addressed to
    origin: str  # the peer's node that signed it
    seq: int  # its place in that node's chain
    root_pk: bytes  # the peer root its signer's certificate chains to
    item: str
    item_net: str  # the city whose catalog the item belongs to
    cat: int  # that catalog's version
    mode: str
    role: str
    case_started: int


def admit(state: FederationState, claim: ForeignClaim, now: int) -> CrossCert:
    """The cross-certification under which ``claim`` is admitted; raises the refusal else.

    Raises:
        AuthorityError: one of the codes in the module docstring, in that order.
    """
    if claim.to != state.home:
        raise AuthorityError(
            ErrorCode.PEER_MISADDRESSED, f"addressed to {claim.to}, this city is {state.home}"
        )
    if claim.via != claim.net:
        raise AuthorityError(ErrorCode.PEER_TRANSITIVE, f"a record of {claim.net} carried by {claim.via}")
    peer = state.peers.get(claim.net)
    newest = peer.newest if peer is not None else None
    if peer is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, claim.net)
    revocation = peer.revoked(newest, now)
    if revocation is not None:
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{claim.net}: {revocation.reason}")
    if claim.root_pk != newest.root_pk:
        raise AuthorityError(ErrorCode.PEER_ROOT_CHANGED, f"{claim.net}: the agreement's root is another key")
    started = min(claim.case_started, now)
    governing = peer.in_force_at(started)
    if governing is None:
        raise AuthorityError(ErrorCode.PEER_EXPIRED, f"{claim.net}: none in force at {started}")
    revocation = peer.revoked(governing, now)
    if revocation is not None:
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{claim.net}: {revocation.reason}")
    last_good = peer.revoked_nodes.get(claim.origin)
    if last_good is not None and claim.seq > last_good:
        raise AuthorityError(ErrorCode.PEER_NODE_REVOKED, f"{claim.origin} #{claim.seq} > #{last_good}")
    if claim.id in state.seen:
        raise AuthorityError(ErrorCode.PEER_REPLAY, claim.id.hex()[:16])
    own = claim.item_net == state.home or (claim.item_net != claim.net and claim.item in state.own_items)
    if own and claim.role != INTAKE:
        raise AuthorityError(ErrorCode.PEER_OWN_ITEM, f"{claim.item} is an item of {state.home}")
    _check_scope(governing, claim, state.home)
    return governing


def _check_scope(cert: CrossCert, claim: ForeignClaim, home: str) -> None:
    entry = cert.scope.get(claim.item)
    owner = home if claim.role == INTAKE else claim.net
    if claim.item_net != owner or entry is None or entry.ours != (claim.role == INTAKE):
        raise AuthorityError(
            ErrorCode.PEER_SCOPE, f"item {claim.item} of {claim.item_net} is not in the scope"
        )
    if entry.cat != claim.cat:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE, f"{claim.item}: catalog version {claim.cat}, agreed {entry.cat}"
        )
    if claim.mode not in entry.modes:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{claim.item}: mode {claim.mode} not given")
    if claim.role not in entry.roles:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{claim.item}: role {claim.role} not given")


def check_succession(home: str, held: PeerState | None, new: CrossCert) -> None:
    """Refuse a cross-certification that may not follow what is held of its peer.

    About our own city: ``E_SCHEMA``. A serial not above every serial held (or revoked):
    ``E_PEER_ROLLBACK``. The same agreement with another root key: ``E_PEER_ROOT_CHANGED``
    (a peer's new root needs a new agreement, confirmed against its fingerprint again).
    """
    if new.peer == home:
        raise RecordError(ErrorCode.SCHEMA, "peer.cert: a city does not certify itself")
    if held is None:
        return
    top = max([c.serial for c in held.certs] + [r.serial for r in held.revocations], default=0)
    if new.serial <= top:
        raise AuthorityError(ErrorCode.PEER_ROLLBACK, f"{new.peer}: serial {new.serial}, held {top}")
    newest = held.newest
    if newest is not None and newest.agreement == new.agreement and newest.root_pk != new.root_pk:
        raise AuthorityError(ErrorCode.PEER_ROOT_CHANGED, f"{new.peer}: a renewal may not change the root")


def check_revocation(held: PeerState | None, revocation: PeerRevocation) -> None:
    """Refuse a ``peer.revoke`` of a peer never certified, or of a serial never issued."""
    newest = held.newest if held is not None else None
    if newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, f"peer.revoke of {revocation.peer}")
    if revocation.serial > newest.serial:
        raise RecordError(ErrorCode.SCHEMA, f"peer.revoke: serial {revocation.serial} was never issued")


def admit_link(home: str, held: PeerState | None, *, net: str, to: str, now: int) -> CrossCert:
    """The cross-certification that lets the central of ``net`` link with ours (``home``) now.

    A link carries cross-city messages, so it needs what a new case needs: our newest
    cross-certification of the peer in force now and not revoked. The receiving side asks
    it of a HELLO (``to`` the city the pusher addressed), the pushing side of itself before
    it connects.

    Raises:
        AuthorityError: ``E_PEER_MISADDRESSED`` (``to`` is not ``home``), ``E_PEER_UNKNOWN``
            (no cross-certification of ``net`` held), ``E_PEER_REVOKED``, ``E_PEER_EXPIRED``.
    """
    if to != home:
        raise AuthorityError(ErrorCode.PEER_MISADDRESSED, f"addressed to {to}, this city is {home}")
    newest = held.newest if held is not None and held.net == net else None
    if held is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, net)
    revocation = held.revoked(newest, now)
    if revocation is not None:
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{net}: {revocation.reason}")
    if not newest.holds(now):
        raise AuthorityError(
            ErrorCode.PEER_EXPIRED, f"{net}: #{newest.serial} holds {newest.nbf}-{newest.exp}"
        )
    return newest
