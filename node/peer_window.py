"""Another city's items at this window (异地代收): which mirrored items a clerk may take in now.

Our central mirrors a peer city's items from its signed release (``peer.items``,
:mod:`sync.projection.peer_items`); a village or town window offers one while the peer's
newest cross-certification is in force by the node's clock, is not revoked, and lists the
item for 代收代办 at a version a mirror held has listed it at (:func:`core.peer_items.offerable`). No grant is
needed: the case is a proxy case our central carries to the owning city, which decides it.
The window names such an item ``CODE@NET`` (:attr:`ItemAuthority.key`). The items a
peer decides as a part of a joint application (多地联办) are offered on the intake form of
one of ours (:func:`part_offers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from core.catalog import Mode
from core.errors import AuthorityError, ErrorCode, TongbanError
from core.grants import Authorization, Verdict
from core.peer_items import TIERS, offerable, part_offered_here
from sync.projection.delegation import ItemAuthority
from sync.projection.peer_items import Mirrored, mirrored_item, mirrored_versions, peer_names
from sync.projection.peers import peer_states

OK = Authorization(Verdict.OK)


def split_key(key: str) -> tuple[str, str] | None:
    """(code, net) of a window's key for another city's item; None for one of ours."""
    code, at, net = key.partition("@")
    return (code, net) if at and code and net else None


def _offer(held: Mirrored, central: str) -> ItemAuthority:
    return ItemAuthority(
        held.item, Mode.PROXY, OK, None, central, owner=held.peer, owner_name=held.name, owner_cat=held.cat
    )


def peer_offers(db: Database, central: str, tier: str, now: int) -> list[ItemAuthority]:
    """The other cities' items this window may take in at ``now``, by city, then code:
    each at the version the scope in force pins it to, as a mirror of that release has it."""
    if tier not in TIERS:
        return []
    states = peer_states(db)
    out = []
    for held in mirrored_versions(db):
        try:
            offerable(states.get(held.peer), held.item.code, held.cat, now)
        except TongbanError:
            continue
        out.append(_offer(held, central))
    return out


def peer_authority(db: Database, central: str, tier: str, key: str, now: int) -> ItemAuthority:
    """What this window may do with the other city's item ``key`` (``CODE@NET``) at ``now``.

    Raises:
        AuthorityError: ``E_PEER_SCOPE`` (not mirrored at the version the scope pins, not at a
            village or town window), ``E_PEER_UNKNOWN``, ``E_PEER_REVOKED``, ``E_PEER_EXPIRED``.
    """
    code, net = split_key(key) or ("", "")
    state = peer_states(db).get(net)
    newest = state.newest if state is not None else None
    entry = newest.scope.get(code) if newest is not None else None
    item = mirrored_item(db, net, code, entry.cat) if entry is not None else None
    if entry is None or item is None:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{key} is not an item mirrored here")
    if tier not in TIERS:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE,
            f"{key}: only a village or town window takes in another city's item",
            zh="异地代收事项只能在村（社区）或镇（街道）便民服务中心受理",
        )
    offerable(state, code, entry.cat, now)
    name = peer_names(db).get(net, newest.name if newest is not None else net)
    return _offer(Mirrored(net, name, entry.cat, item, 0), central)


@dataclass(frozen=True)
class PartOffer:
    """Another city's item a window may add as a part of a joint application (多地联办)."""

    city: str  # its net
    city_name: str
    item: str
    cat: int
    name: str

    @property
    def value(self) -> str:
        """What the intake form posts for it (``city|item|cat|name``, node.intake.parts_of_form)."""
        return f"{self.city}|{self.item}|{self.cat}|{self.name}"


def part_offers(db: Database, tier: str, now: int) -> list[PartOffer]:
    """The other cities' parts a village or town window may add now: the peer's newest
    cross-certification in force and not revoked lists the item for 多地联办, by city, then code."""
    if tier not in TIERS:
        return []
    out = []
    for net, state in sorted(peer_states(db).items()):
        newest = state.newest
        if newest is None or state.revoked(newest, now) is not None or not newest.holds(now):
            continue
        for entry in newest.scope.items:
            if part_offered_here(entry):
                item = mirrored_item(db, net, entry.item, entry.cat)
                out.append(
                    PartOffer(net, newest.name, entry.item, entry.cat, item.name if item else entry.item)
                )
    return out
