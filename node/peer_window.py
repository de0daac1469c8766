"""Another city's items at this window (异地代收): which mirrored items a clerk may take in now.

Our central mirrors a peer city's items from its signed release (``peer.items``,
:mod:`sync.projection.peer_items`); a village or town window offers one while the peer's
newest cross-certification is in force by the node's clock, is not revoked, and lists the
item for 代收代办 at the mirror's version (:func:`core.peer_items.offerable`). No grant is
needed: the case is a proxy case our central carries to the owning city, which decides it.
The window names such an item ``CODE@NET`` (:attr:`ItemAuthority.key`).
"""

from __future__ import annotations

from sqlite_utils import Database

from core.catalog import Mode
from core.errors import AuthorityError, ErrorCode, TongbanError
from core.grants import Authorization, Verdict
from core.peer_items import TIERS, offerable
from sync.projection.delegation import ItemAuthority
from sync.projection.peer_items import Mirrored, mirrored
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
    """The other cities' items this window may take in at ``now``, by city, then code."""
    if tier not in TIERS:
        return []
    states = peer_states(db)
    out = []
    for held in mirrored(db):
        try:
            offerable(states.get(held.peer), held.item.code, held.cat, now)
        except TongbanError:
            continue
        out.append(_offer(held, central))
    return out


def peer_authority(db: Database, central: str, tier: str, key: str, now: int) -> ItemAuthority:
    """What this window may do with the other city's item ``key`` (``CODE@NET``) at ``now``.

    Raises:
        AuthorityError: ``E_PEER_SCOPE`` (not mirrored, not at a village or town window, or
            outside the scope), ``E_PEER_UNKNOWN``, ``E_PEER_REVOKED``, ``E_PEER_EXPIRED``.
    """
    parts = split_key(key)
    found = next((m for m in mirrored(db) if parts and (m.item.code, m.peer) == parts), None)
    if found is None:
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"{key} is not an item mirrored here")
    if tier not in TIERS:
        raise AuthorityError(
            ErrorCode.PEER_SCOPE,
            f"{key}: only a village or town window takes in another city's item",
            zh="异地代收事项只能在村（社区）或镇（街道）便民服务中心受理",
        )
    offerable(peer_states(db).get(found.peer), found.item.code, found.cat, now)
    return _offer(found, central)
