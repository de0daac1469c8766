"""Central rebuilt from the network: its store put back together from what the nodes hold.

Central was "the one center whose loss cannot be repaired from elsewhere"; but every node
holds the root's chain whole, and the towns hold their subtrees. So with central's key
files (backed up offline) and a store to start from — an older copy of central's store, in
place or given as the seed, or a fresh store seeded with the root's chain taken from any
node's store or bundle and verified record by record — central collects the rest over the
ordinary links:

1. :func:`begin` marks central as rebuilding (the file ``rebuilding`` in its directory,
   written before anything else) and puts the store in place. While the file is there
   central signs nothing — no heartbeat, no receipt, no certificate, no web write: each is
   refused with ``E_CENTRAL_REBUILDING`` (:class:`central.keyring.CentralKeyring`).
2. Central's sync endpoint runs as usual. Each child's up phase carries the root's records
   central lacks (a parent admits root records from a child: they are central's own,
   checked with central's keys) and its subtree's records; the up checkpoints live at
   central, so an older copy re-receives from where it was, and a fresh store from the
   start. :func:`progress` says, for each direct child and each node that synced with
   central before, whether it has completed a session since the rebuild began, and how
   far it holds the root's chain.
3. :func:`finish`, once every one of them has (or when the operator says so after a
   bounded wait), removes the mark: central signs on after the highest root record any
   node held, so it never signs a seq twice. Should central's watermark (its key
   directory survived) say it signed further than the network holds, it does not finish
   unless the operator accepts that loss.

What can be lost: root records signed in the seconds before the loss that reached no node
(they were only in the lost store), and what children had sent up that they no longer hold.
Such a record surfacing later — from a node that was offline, or a copy — is a fork of the
root: an alarm at every node that sees it and at central (docs/operations.md).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from central import config as central_config
from central.authority import Central
from central.backup import PagesRestored, restore_files
from central.keyring import REBUILDING
from central.store import CentralStore
from core.clock import Clock
from core.errors import ErrorCode, StoreError
from sync.link.store import peers_seen
from sync.record import keys, kinds
from sync.record.db import copy_database, open_readonly
from sync.record.enrollment import read_bundle
from sync.record.log import anchor_of, decode_stored, envelopes_of, stored_record
from sync.record.trust import certificates
from sync.record.watermark import Watermark, beside

SQLITE_HEADER = b"SQLite format 3\x00"
CHUNK = 512


@dataclass(frozen=True)
class Rebuild:
    """A rebuild under way: when it began, from what, and central's root head then."""

    started: int
    seed: str
    root_at_start: int


@dataclass(frozen=True)
class ChildProgress:
    """A node central waits for: whether it has synced since the rebuild began, and the
    seq of the root's chain it held at the end of its last session with central."""

    code: str
    name: str
    synced: bool
    root_seq: int | None


def marker(home: Path) -> Path:
    return home / REBUILDING


def state(home: Path) -> Rebuild | None:
    """The rebuild under way at central's directory ``home``, if one is."""
    path = marker(home)
    if not path.is_file():
        return None
    fields = dict(
        line.split(": ", 1) for line in path.read_text(encoding="utf-8").splitlines() if ": " in line
    )
    return Rebuild(int(fields.get("started", "0")), fields.get("seed", ""), int(fields.get("root", "0")))


def begin(home: Path, clock: Clock, *, seed: Path | None = None) -> Rebuild:
    """Mark central as rebuilding and put a store in place: the one there (an older copy),
    or one made from ``seed``. A rebuild under way is taken up where it is."""
    config = central_config.load(home)
    found = state(home)
    if found is not None:
        return found
    store_path = config.database_path
    if not store_path.exists() and seed is None:
        raise StoreError(
            ErrorCode.STORE_MISSING,
            f"{store_path}: give --seed (an older copy of central's store, a node's store or a bundle)",
        )
    label = str(seed or store_path)
    _mark(home, Rebuild(clock.now(), label, 0))  # before the store is touched
    if not store_path.exists():
        assert seed is not None
        _seed(config, seed, clock)
    return _started(config, clock, label)


def restore(home: Path, backup: Path, clock: Clock) -> tuple[Rebuild, PagesRestored]:
    """Put the copy ``backup`` of central's store in place, with the scanned pages it says
    central holds (:func:`central.backup.restore_files`, each checked by its hash), and
    begin a rebuild from it: a copy is never signed on from as it is (what central signed
    after it is elsewhere). The store it replaces is kept beside it
    (``central.db.replaced-TIME``)."""
    config = central_config.load(home)
    _mark(home, Rebuild(clock.now(), str(backup), 0))  # before the store is touched
    store_path = config.database_path
    if store_path.exists():
        aside = store_path.with_name(f"{store_path.name}.replaced-{clock.now()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{store_path}{suffix}")
            if source.exists():
                shutil.move(source, Path(f"{aside}{suffix}"))
    _copy(backup, store_path)
    rebuild = _started(config, clock, str(backup))
    with CentralStore.open(store_path, clock) as store:
        pages = restore_files(store.db, store.files, backup)
    return rebuild, pages


def _started(config: central_config.CentralConfig, clock: Clock, label: str) -> Rebuild:
    """The store in place is checked to be central's of this network; the rebuild's mark
    says where it started."""
    with CentralStore.open(config.database_path, clock) as store:
        _check_network(config, store.db)
        head = store.log.head(config.central.code)
    rebuild = Rebuild(clock.now(), label, head.seq if head else 0)
    _mark(config.home, rebuild)
    return rebuild


def _copy(source: Path, target: Path) -> None:
    conn = open_readonly(source)
    try:
        copy_database(Database(conn), target)
    finally:
        conn.close()


def progress(central: Central, rebuild: Rebuild) -> list[ChildProgress]:
    """The nodes central waits for, by code: every direct child with a live certificate and
    every node that had synced with central before (from an older copy's link table)."""
    db = central.store.db
    now = central.store.log.clock.now()
    live = {c.code: c for c in certificates(db) if c.code != central.code and c.live(now)}
    seen = peers_seen(db)
    waited = {code for code, cert in live.items() if cert.parent == central.code} | (set(seen) & set(live))
    rows = []
    for code in sorted(waited):
        last, heads = seen.get(code, (0, {}))
        rows.append(ChildProgress(code, live[code].name, last >= rebuild.started, heads.get(central.code)))
    return rows


def root_head(central: Central) -> int:
    head = central.store.log.head(central.code)
    return head.seq if head else 0


def signed_beyond(central: Central) -> int | None:
    """Central's watermark, when it says central signed further than its store now holds."""
    signed = Watermark(beside(central.config.key_path), central.code).read()
    return signed if signed > root_head(central) else None


def finish(central: Central, *, accept_loss: bool = False) -> int:
    """End the rebuild: central signs again, after the root head its store now holds; the
    head. Refused while central's watermark is above it, unless ``accept_loss``: the
    records between were signed and reached no node that synced (if one surfaces, it is a
    fork of the root)."""
    head = root_head(central)
    beyond = signed_beyond(central)
    if beyond is not None:
        if not accept_loss:
            raise StoreError(
                ErrorCode.CENTRAL_REBUILDING,
                f"central signed up to #{beyond}, the network gave back #{head}: wait for the nodes"
                " that have not synced, or accept the loss",
            )
        Watermark(beside(central.config.key_path), central.code).lower_to(head)
    marker(central.config.home).unlink(missing_ok=True)
    return head


def _mark(home: Path, rebuild: Rebuild) -> None:
    path = marker(home)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(
        "# Central is being rebuilt from the network (tongban central rebuild): it signs nothing.\n"
        f"started: {rebuild.started}\nseed: {rebuild.seed}\nroot: {rebuild.root_at_start}\n",
        encoding="utf-8",
    )
    temporary.replace(path)


def _seed(config: central_config.CentralConfig, seed: Path, clock: Clock) -> None:
    """A fresh store holding the root's chain from ``seed`` (an older copy of central's
    store is put in place as it is), every record verified as it is ingested."""
    chain = _root_chain(seed, config.central.code)
    if chain is None:  # central's own store: taken whole
        _copy(seed, config.database_path)
        return
    with CentralStore.open(config.database_path, clock, create=True) as store:
        genesis = store.log.install_anchor(chain[0], source="seed")
        if genesis.body["sign_pk"] != keys.load_key_file(config.key_path).sign_public:
            raise StoreError(ErrorCode.STORE_CONFLICT, f"{seed} holds another network's root")
        for start in range(1, len(chain), CHUNK):
            for outcome in store.log.ingest_many(chain[start : start + CHUNK], "seed"):
                if outcome.status.value not in ("appended", "duplicate"):
                    raise StoreError(
                        ErrorCode.STORE_CONFLICT, f"{seed}: a root record {outcome.status.value}"
                    )


def _root_chain(seed: Path, root: str) -> list[bytes] | None:
    """The root's chain in ``seed`` (a node's store or a bundle), genesis first; None when
    ``seed`` is a store of central's own (it has central's tables)."""
    with open(seed, "rb") as handle:
        is_store = handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    if not is_store:
        bundle = read_bundle(seed.read_bytes())
        chain = [bundle.anchor, *(r for r in bundle.records if decode_stored(r).origin == root)]
        return sorted(chain, key=lambda envelope: decode_stored(envelope).seq)
    conn = open_readonly(seed)
    try:
        db = Database(conn)
        if "enrollment_requests" in db.table_names():
            return None
        anchor = anchor_of(db)
        if anchor is None or anchor.origin != root:
            raise StoreError(ErrorCode.STORE_CONFLICT, f"{seed} holds no chain of central {root}")
        return envelopes_of(db, root)
    finally:
        conn.close()


def _check_network(config: central_config.CentralConfig, db: Database) -> None:
    """The store in place is central's of this network: its genesis is signed by
    central's root key on file."""
    anchor = anchor_of(db)
    genesis = stored_record(db, anchor.genesis_id) if anchor is not None else None
    own = keys.load_key_file(config.key_path).sign_public
    if genesis is None or genesis.kind != kinds.NET_GENESIS or genesis.body.get("sign_pk") != own:
        raise StoreError(
            ErrorCode.STORE_CONFLICT, f"{config.database_path} is not central's store of this key"
        )
