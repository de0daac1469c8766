"""What a node holds from above — the catalog, its grants, central's heartbeat — and what they allow.

The screens show it (the items a clerk may take in, the banners at the top of every page)
and intake checks against it. Staleness never refuses a walk-in: an expired catalog or
grant, or a stale heartbeat, is a banner on the screen and a flag on the case. A fork of a
chain the node holds, or a store behind what it signed, is an error banner: the node's own
signing is refused then (``E_CHAIN_FORK``, ``E_CHAIN_BEHIND``), and the banner says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.admin import within
from core.catalog import CatalogRelease
from core.clock import Clock
from core.errors import ErrorCode, InputError
from core.grants import Grant
from node.finder import Keys, catalog_keys, peer_keys
from node.peer_window import peer_authority, peer_offers, split_key
from node.store import NodeStore
from sync.projection.calendars import HeldYears, held_years
from sync.projection.catalog import catalog_release, newest_version
from sync.projection.delegation import ItemAuthority, authority_for
from sync.projection.grants import StoreGrants
from sync.projection.heartbeat import heartbeat_flags, latest_heartbeat
from sync.projection.peer_items import peer_names
from sync.record import trust
from sync.record.forks import open_forks, refused
from sync.record.watermark import SigningGuard


@dataclass
class Banner:
    level: str  # "warn" or "error"
    code: str
    detail: str = ""
    key: str = ""  # the text to show, when a code has several (a fork: of this node, the root, another)

    @property
    def text_key(self) -> str:
        """The banner's text in ``banner.*`` of the node's texts."""
        return f"banner.{self.key or self.code}"


@dataclass(frozen=True)
class HeldItems:
    """The items a node may take in, as computed under ``key``, true until ``until``."""

    key: tuple[Any, ...]
    until: int
    items: tuple[ItemAuthority, ...]


MAX_KEPT = 3600
"""Seconds the items are kept at most, whatever the grants say."""


def _next_change(source: StoreGrants, held: list[Grant], now: int) -> int:
    """The first moment after ``now`` at which a grant held, or one up its chain, starts,
    ends or has a revocation take effect: the answer may change then, not before."""
    moments = [now + MAX_KEPT]
    seen: set[bytes] = set()
    for leaf in held:
        grant: Grant | None = leaf
        while grant is not None and grant.id not in seen:
            seen.add(grant.id)
            moments.extend((grant.nbf, grant.exp + 1))
            moments.extend(r.effective for r in source.revocations_of(grant.id))
            grant = source.grant(grant.parent) if grant.parent is not None else None
    return min(m for m in moments if m > now)


class Holdings:
    """The catalog and grants the node ``code`` (of ``tier``) holds in ``store``."""

    def __init__(
        self, store: NodeStore, code: str, tier: str, clock: Clock, guard: SigningGuard | None = None
    ) -> None:
        self.store = store
        self.db = store.db
        self.code = code
        self.tier = tier
        self.clock = clock
        self.guard = guard
        self._catalogs: dict[int, CatalogRelease] = {}  # a release never changes: parsed once
        self._names: tuple[int, dict[str, str]] | None = None  # (certificates held, names)
        self._items: HeldItems | None = None
        self._keys: tuple[int, dict[str, Keys]] | None = None

    def catalog(self) -> CatalogRelease | None:
        """The newest catalog release held."""
        version = newest_version(self.db)
        if not version:
            return None
        return self.release(version)

    def finder_keys(self) -> dict[str, Keys]:
        """What each item of the newest release is found by (:mod:`node.finder`): computed
        once per release."""
        catalog = self.catalog()
        if catalog is None:
            return {}
        if self._keys is None or self._keys[0] != catalog.version:
            self._keys = (catalog.version, catalog_keys(catalog))
        return {**self._keys[1], **peer_keys(self.peer_items())}

    def release(self, version: int) -> CatalogRelease | None:
        """The catalog release ``version``, if held (a case shows the release it was taken in under)."""
        if version not in self._catalogs:
            release = catalog_release(self.db, version)
            if release is None:
                return None
            self._catalogs[version] = release
        return self._catalogs[version]

    def node_names(self) -> dict[str, str]:
        """The name of every node this store holds a certificate for, by code (the newest
        certificate's): screens show 斜桥镇便民服务中心, not 330481107."""
        count = trust.certificate_count(self.db)
        if self._names is None or self._names[0] != count:
            names: dict[str, str] = {}
            for cert in trust.certificates(self.db):  # newest first within a code
                names.setdefault(cert.code, cert.name)
            self._names = (count, names)
        return {**self._names[1], **peer_names(self.db)}

    def calendar_years(self) -> HeldYears:
        """Which years deadlines are counted for, built in or published by central."""
        return held_years(self.db)

    def authority(self, item_code: str, at: int | None = None) -> ItemAuthority:
        """What this node may do with ``item_code`` at ``at`` (default: now); another
        city's item by its key ``CODE@NET`` (:mod:`node.peer_window`)."""
        if split_key(item_code) is not None:
            now = self.clock.now() if at is None else at
            return peer_authority(self.db, self.central, self.tier, item_code, now)
        catalog = self.catalog()
        if catalog is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, "no catalog release is held yet")
        item = catalog.get(item_code)
        if item is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, item_code)
        now = self.clock.now() if at is None else at
        return authority_for(self.db, self.store.log, self.code, self.tier, item, catalog, now)

    def items(self) -> list[ItemAuthority]:
        """Every catalog item this node holds a grant for (allowed or stale), catalog order.

        Checking the grant chain of every item takes a few hundred milliseconds, and every
        page that lists the items asks; so the answer is kept, under what it depends on —
        the catalog version, the grants and grant revocations held, the key directory —
        until the first moment a grant of the chains starts, ends or is revoked.
        """
        catalog = self.catalog()
        if catalog is None:
            return []
        now = self.clock.now()
        source = StoreGrants(self.db)
        key = (catalog.version, source.count(), source.revocation_count(), trust.directory_mark(self.db))
        cached = self._items
        if cached is not None and cached.key == key and now < cached.until:
            return list(cached.items)
        held = source.held_by(self.code)
        granted = {code for grant in held for code in grant.items}
        out = []
        for item in catalog.items:
            if item.code in granted:
                auth = authority_for(self.db, self.store.log, self.code, self.tier, item, catalog, now)
                if auth.mode is not None:
                    out.append(auth)
        self._items = HeldItems(key, _next_change(source, held, now), tuple(out))
        return out

    @property
    def central(self) -> str:
        """Our central's code (the anchor's origin): it carries another city's cases."""
        anchor = self.store.log.anchor()
        return anchor.origin if anchor else ""

    def peer_items(self) -> list[ItemAuthority]:
        """The other cities' items this window may take in now (异地代收)."""
        return peer_offers(self.db, self.central, self.tier, self.clock.now())

    def banners(self) -> list[Banner]:
        """Warnings for the top of every page: no/expired catalog, no/expired grants, the heartbeat."""
        now = self.clock.now()
        out: list[Banner] = []
        catalog = self.catalog()
        if catalog is None:
            out.append(Banner("error", ErrorCode.ITEM_UNKNOWN.value, "no catalog release is held yet"))
        elif catalog.is_expired(now):
            out.append(Banner("warn", ErrorCode.CATALOG_EXPIRED.value, f"version {catalog.version}"))
        grants = StoreGrants(self.db).held_by(self.code)
        if not grants:
            out.append(Banner("error", ErrorCode.GRANT_ITEM.value, "no grant is held by this node"))
        elif all(g.exp < now for g in grants):
            out.append(Banner("warn", ErrorCode.GRANT_EXPIRED.value, ""))
        latest = latest_heartbeat(self.db)
        for flag in heartbeat_flags(latest, now):
            level = "error" if flag is ErrorCode.CLOCK_BEHIND else "warn"
            out.append(Banner(level, flag.value, f"heartbeat #{latest.seq}" if latest else ""))
        out.extend(self.chain_banners())
        return out

    def chain_banners(self) -> list[Banner]:
        """Errors of the chains this node holds: a fork of its own (its key may be stolen),
        of the root's (central's), or of another node's; a store behind what it signed."""
        out: list[Banner] = []
        anchor = self.store.log.anchor()
        root = anchor.origin if anchor else ""
        fork = ErrorCode.CHAIN_FORK.value
        forked = open_forks(self.db)
        own = [f"#{f.seq}" for f in forked if f.origin == self.code]
        forged = refused(self.db, self.code, ErrorCode.CHAIN_FORK)
        if own or forged:
            out.append(Banner("error", fork, " ".join(own) or f"{forged} refused", "fork.own"))
        if any(f.origin == root for f in forked):
            seqs = " ".join(f"#{f.seq}" for f in forked if f.origin == root)
            out.append(Banner("error", fork, f"{root} {seqs}", "fork.root"))
        others = sorted({f.origin for f in forked} - {self.code, root})
        children = [o for o in others if within(o, self.code)]
        if children:  # a town's village: the town holds it frozen, central decides
            out.append(Banner("error", fork, " ".join(children), "fork.child"))
        if len(children) < len(others):
            out.append(Banner("error", fork, " ".join(o for o in others if o not in children), "fork.other"))
        behind = self.guard.behind() if self.guard is not None else None
        if behind is not None:
            out.append(Banner("error", ErrorCode.CHAIN_BEHIND.value, f"signed through #{behind}"))
        return out

    def staleness(self, now: int) -> list[str]:
        """The flags a case taken in at ``now`` carries for what is stale here (besides its grant)."""
        flags: list[str] = []
        catalog = self.catalog()
        if catalog is not None and catalog.is_expired(now):
            flags.append(ErrorCode.CATALOG_EXPIRED.value)
        flags.extend(flag.value for flag in heartbeat_flags(latest_heartbeat(self.db), now))
        return flags
