"""Another city's items at our windows (异地代收): the mirror central keeps of a peer's
release, and the rules that choose, offer and admit its items (docs/federation.md §7).

A **mirror** (``peer.items``, signed by our central's ``peers`` key) is what our central
took from a peer city's signed ``catalog.release``: the items our cross-certification of
that city lets our windows take in for it, exactly as the peer's release defines them
(materials, time limit, guide), pinned to the peer catalog version our scope names::

    {"peer": tstr, "name": tstr, "cat": uint ≥ 1, "release": bstr(32),
     "items": [item, ...]}          # core.catalog item bodies, sorted by code, each once

``cat`` is the version of the peer's release mirrored, ``release`` its record id there.

Everything here is pure: :func:`choose` picks a release's items for a scope,
:func:`offerable` says whether a window may take one in now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.catalog import CatalogRelease, Item
from core.errors import AuthorityError, ErrorCode, RecordError, TongbanError
from core.federation import ACCEPT, DECIDE, JOINT_PART, PROXY_INTAKE, PeerState, Scope, ScopeItem

MAX_ITEMS = 1000
"""As many as a scope may name."""

TIERS = ("town", "village")
"""The windows that take another city's item in: a village or a town service center."""

_KEYS = frozenset({"peer", "name", "cat", "release", "items"})


def _refuse(detail: str) -> RecordError:
    return RecordError(ErrorCode.SCHEMA, f"peer.items: {detail}")


@dataclass(frozen=True)
class PeerItems:
    """A ``peer.items`` body: the items of city ``peer`` mirrored from its release ``cat``."""

    peer: str
    name: str
    cat: int
    release: bytes
    items: tuple[Item, ...]

    def get(self, code: str) -> Item | None:
        return next((i for i in self.items if i.code == code), None)

    def to_body(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "name": self.name,
            "cat": self.cat,
            "release": self.release,
            "items": [i.to_body() for i in self.items],
        }

    @classmethod
    def from_body(cls, body: object) -> PeerItems:
        if not isinstance(body, dict) or set(body) != _KEYS:
            raise _refuse(f"fields must be exactly {', '.join(sorted(_KEYS))}")
        peer, name, cat, release, raw = (body[k] for k in ("peer", "name", "cat", "release", "items"))
        if not isinstance(peer, str) or not peer or len(peer) > 64 or not peer.isprintable():
            raise _refuse("peer must be a network name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise _refuse("name must be 1-200 characters")
        if isinstance(cat, bool) or not isinstance(cat, int) or cat < 1:
            raise _refuse("cat must be a catalog version (1 or more)")
        if not isinstance(release, bytes) or len(release) != 32:
            raise _refuse("release must be a record id (32 bytes)")
        if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
            raise _refuse(f"items must be a list of at most {MAX_ITEMS}")
        try:
            items = tuple(Item.from_body(i) for i in raw)
        except TongbanError as exc:
            raise _refuse(exc.text("en")) from exc
        codes = [i.code for i in items]
        if codes != sorted(set(codes)):
            raise _refuse("items must be sorted by code, each once")
        return cls(peer, name, cat, release, items)

    def same_items(self, other: PeerItems | None) -> bool:
        """Whether ``other`` mirrors the same items at the same version (a new record is of no use)."""
        return (
            other is not None
            and other.cat == self.cat
            and other.to_body()["items"] == self.to_body()["items"]
        )


def taken_in_here(entry: ScopeItem) -> bool:
    """Whether a scope item is one of the peer's that our windows take in: the peer accepts
    and decides it, by 代收代办."""
    return not entry.ours and PROXY_INTAKE in entry.modes and {ACCEPT, DECIDE} <= entry.roles


def part_offered_here(entry: ScopeItem) -> bool:
    """Whether a scope item is one of the peer's that our windows add as a part of a joint
    application (多地联办): the peer decides it, as a part."""
    return not entry.ours and JOINT_PART in entry.modes and DECIDE in entry.roles


def choose(scope: Scope, release: CatalogRelease) -> tuple[Item, ...]:
    """The items of the peer's ``release`` that ``scope`` lets our windows take in, or add as
    a part of a joint application, pinned: an item the scope names at another version is not
    taken from this release."""
    return tuple(
        item
        for entry in scope.items
        if (taken_in_here(entry) or part_offered_here(entry)) and entry.cat == release.version
        if (item := release.get(entry.item)) is not None
    )


def offerable(state: PeerState | None, code: str, cat: int, now: int) -> ScopeItem:
    """The scope entry under which a window may take in the peer's item ``code`` of its
    catalog ``cat`` at ``now``: the newest cross-certification of the peer, in force and not
    revoked, lists it with 代收代办 at that version.

    Raises:
        AuthorityError: ``E_PEER_UNKNOWN``, ``E_PEER_REVOKED``, ``E_PEER_EXPIRED``, ``E_PEER_SCOPE``.
    """
    newest = state.newest if state is not None else None
    if state is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, code)
    revocation = state.revoked(newest, now)
    if revocation is not None:
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{state.net}: {revocation.reason}")
    if not newest.holds(now):
        raise AuthorityError(ErrorCode.PEER_EXPIRED, f"{state.net} #{newest.serial}")
    entry = newest.scope.get(code)
    if entry is None or not taken_in_here(entry) or entry.cat != cat:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{code}:{cat} of {state.net} is not taken in here")
    return entry


def offered_at(state: PeerState | None, code: str, cat: int, at: int) -> ScopeItem:
    """The scope entry under which the peer's item could be taken in at ``at`` (central's
    re-check of an intake at its time): a cross-certification valid then, not revoked by
    then, lists it with 代收代办 at that version.

    Raises:
        AuthorityError: ``E_PEER_UNKNOWN``, ``E_PEER_EXPIRED``, ``E_PEER_REVOKED``, ``E_PEER_SCOPE``.
    """
    if state is None or state.newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, code)
    cert = state.in_force_at(at)
    if cert is None:
        raise AuthorityError(ErrorCode.PEER_EXPIRED, f"{state.net}: none in force at {at}")
    revocation = state.revoked(cert, at)
    if revocation is not None:
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{state.net}: {revocation.reason}")
    entry = cert.scope.get(code)
    if entry is None or not taken_in_here(entry) or entry.cat != cat:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{code}:{cat} of {state.net} is not taken in here")
    return entry
