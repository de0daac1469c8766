"""Another city's items, mirrored from its signed catalog release (异地代收, docs/federation.md).

:func:`mirror` takes a peer city's ``catalog.release`` envelope with the chain that
certifies its signer there, checks it from the root our agreement names
(:func:`sync.record.foreign.open_foreign`), and appends a ``peer.items`` record (signed with
our ``peers`` key) listing the items our scope lets our windows take in for that city,
pinned to the version the scope names. :func:`release_for_peers` is the other direction:
our newest release and its chain, for a peer central to mirror. The link between centrals
calls both; ``tongban central peer items`` and ``export-release`` carry a release by hand.
"""

from __future__ import annotations

from central.authority import Central
from core.catalog import CatalogRelease
from core.errors import AuthorityError, ErrorCode, InputError, RecordError, TongbanError
from core.peer_items import PeerItems, choose
from sync.projection.peer_items import mirrored_item, newest_mirror
from sync.projection.peers import peer_state
from sync.record import codec, kinds
from sync.record.envelope import Record
from sync.record.foreign import open_foreign
from sync.record.log import decode_stored, envelopes_of_kind, stored_record
from sync.record.trust import central_signing_key

MAX_RELEASE_FILE = 4 * 1024 * 1024
"""A carried release file: one envelope (at most 256 KiB) and its chain, with room."""


def mirror(central: Central, peer: str, release_env: bytes, chain: list[bytes]) -> Record | None:
    """Mirror the items of ``peer``'s release ``release_env`` our scope names at its version.

    Returns the ``peer.items`` appended, or None when the items chosen are mirrored at that
    version already, or none are (an item the scope pins to another version is not taken
    from this release; a window offers only what the scope in force names, so a mirror is
    never emptied by an older or unrelated release).

    Raises:
        AuthorityError: ``E_PEER_UNKNOWN``, ``E_PEER_REVOKED``, ``E_PEER_EXPIRED`` (no
            agreement in force), ``E_PEER_CHAIN`` (not a release signed by the peer's catalog
            key or root, along a chain from the agreed root).
        RecordError: ``E_SIGNATURE_INVALID``, a codec code, or ``E_SCHEMA`` (not a release).
    """
    db = central.store.db
    now = central.store.log.clock.now()
    held = peer_state(db, peer)
    newest = held.newest if held is not None else None
    if held is None or newest is None:
        raise AuthorityError(ErrorCode.PEER_UNKNOWN, peer)
    revocation = held.revoked(newest, now)
    if revocation is not None:
        raise AuthorityError(ErrorCode.PEER_REVOKED, f"{peer}: {revocation.reason}")
    if not newest.holds(now):
        raise AuthorityError(ErrorCode.PEER_EXPIRED, f"{peer} #{newest.serial}")
    foreign = open_foreign(release_env, chain, peer, newest.root_pk)
    record = foreign.record
    if record.kind != kinds.CATALOG_RELEASE:
        raise AuthorityError(ErrorCode.PEER_CHAIN, f"a {record.kind} of {peer}, not a catalog release")
    if foreign.signer_role not in ("catalog", "root"):
        raise AuthorityError(
            ErrorCode.PEER_CHAIN, f"{peer}'s release signed by {foreign.certified or foreign.signer_role}"
        )
    try:
        release = CatalogRelease.from_body(record.body)
    except TongbanError as exc:
        raise RecordError(ErrorCode.SCHEMA, f"{peer}'s release: {exc.text('en')}") from exc
    chosen = PeerItems(peer, newest.name, release.version, record.id, choose(newest.scope, release))
    if not chosen.items or chosen.same_items(newest_mirror(db, peer)) or _held(central, chosen):
        return None
    return central.append(kinds.PEER_ITEMS, chosen.to_body(), "sys:peers")


def _held(central: Central, chosen: PeerItems) -> bool:
    """Whether every item chosen is mirrored at that version already (a release's items never
    change: a mirror of it again would add nothing a window offers)."""
    db = central.store.db
    return all(
        (held := mirrored_item(db, chosen.peer, item.code, chosen.cat)) is not None
        and held.to_body() == item.to_body()
        for item in chosen.items
    )


def release_for_peers(central: Central) -> tuple[bytes, list[bytes]] | None:
    """Our newest catalog release and its chain (the ``key.role`` naming the catalog key
    that signed it; empty when the root signed it); None before the first release."""
    db = central.store.db
    ours = [
        r
        for r in map(decode_stored, envelopes_of_kind(db, kinds.CATALOG_RELEASE))
        if r.origin == central.code
    ]
    if not ours:
        return None
    release = max(ours, key=lambda r: r.seq)
    key = central_signing_key(db, release.payload.kid)
    if key is None or key.role == "root":
        return release.envelope, []
    named = stored_record(db, key.cert_id)
    return release.envelope, [named.envelope] if named is not None else []


def release_file(central: Central) -> bytes:
    """What ``tongban central peer export-release`` writes: the CBOR map {release, chain}."""
    found = release_for_peers(central)
    if found is None:
        raise InputError(ErrorCode.ITEM_UNKNOWN, "publish a catalog release first")
    envelope, chain = found
    return codec.encode({"release": envelope, "chain": chain})


def read_release_file(data: bytes) -> tuple[bytes, list[bytes]]:
    """The release and chain of a file ``export-release`` wrote (``E_SCHEMA`` for another)."""
    value = codec.decode(data, max_size=MAX_RELEASE_FILE)
    if not isinstance(value, dict) or set(value) != {"release", "chain"}:
        raise RecordError(ErrorCode.SCHEMA, "a release file is a map of exactly release and chain")
    release, chain = value["release"], value["chain"]
    if (
        not isinstance(release, bytes)
        or not isinstance(chain, list)
        or not all(isinstance(c, bytes) for c in chain)
    ):
        raise RecordError(ErrorCode.SCHEMA, "a release file holds an envelope and a list of envelopes")
    return release, chain
