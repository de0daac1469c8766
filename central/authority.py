"""Central as the root of trust: the genesis, node certificates, revocations, catalog releases.

Every act here is one record appended to central's log, signed with central's key, and so
checkable by every node offline:

``init``
    creates central's keys and its genesis record (``net.genesis``), the network's trust
    anchor; its fingerprint is what node operators compare at enrollment.
``issue_enroll_token``
    issues the one-time token a node's enrollment request must carry (:mod:`central.enroll_tokens`).
``enroll``
    checks an enrollment request (proof of possession; tier and code shape; parent is
    central for the city hall and towns, an enrolled town for a village; no live
    certificate holds the code; then a valid unused token for the code) and appends a
    ``node.cert``, using the token up in the same transaction; writes the bundle.
``revoke_node``
    appends a ``cert.revoke`` with the last sequence number still trusted.
``publish_catalog``
    appends a ``catalog.release`` with version = previous + 1 and an expiry.
``publish_calendar``
    appends a ``calendar.release``: a year's holidays and adjusted working days, with
    version = previous + 1 (one sequence for every year).
``grant``
    appends a root ``grant.issue``: a town or the city hall may handle items in a mode.
``revoke_grant``
    appends a ``grant.revoke``: the grant stops authorizing intake from now on.
``rotate_key`` / ``rotate_root_key``
    name a new key for a role (``key.role``, signed by the root) or hand the root over to
    a new root key (``root.rotate``); see :mod:`central.keyring`.

Each record is signed with the key of its role (:mod:`sync.record.trust`): ``init``
names the catalog, certs, grants and heartbeat keys right after the genesis.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from central import config as central_config
from central import enroll_tokens
from central.keyring import REBUILDING, CentralKeyring, name_role_key, rotate_root
from central.store import CentralStore
from core.admin import Tier, expected_parent, parse_tier, tier_for_code, validate_node_code
from core.calendar import CalendarRelease, schedule_from_data
from core.catalog import CatalogRelease, Item, Mode, item_available
from core.clock import CHINA, Clock
from core.errors import AuthorityError, ConfigError, EnrollmentError, ErrorCode, InputError, TongbanError
from core.grants import Grant
from sync.projection import calendars
from sync.projection.catalog import current_catalog, newest_version
from sync.projection.delegation import issue_grant, split_by_mode
from sync.projection.delegation import renew_grants as delegation_renew
from sync.projection.delegation import revoke_grant as revoke_delegated_grant
from sync.projection.grants import StoreGrants
from sync.record import keys, kinds
from sync.record.db import transaction
from sync.record.enrollment import EnrollmentRequest, anchor_fingerprint, make_bundle, read_request
from sync.record.envelope import ZERO_ID, Payload, Record, seal
from sync.record.log import envelopes_of
from sync.record.trust import DELEGATED_ROLES, certificates, key_holder, unrevoked

DAY = 86_400
CERT_VALIDITY_DAYS = 365
CATALOG_VALIDITY_DAYS = 120
GRANT_VALIDITY_DAYS = 90


@dataclass(frozen=True)
class Central:
    """An opened central directory: config, keys, store.

    A context manager: ``with open_central(home, clock) as central`` closes its store.
    """

    config: central_config.CentralConfig
    keys: CentralKeyring
    store: CentralStore

    @property
    def code(self) -> str:
        return self.config.central.code

    def append(self, kind: str, body: dict[str, Any], actor: str) -> Record:
        return self.store.log.append_local(self.keys, self.code, kind, body, actor=actor)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Central:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_central(home: Path, clock: Clock) -> Central:
    """Open central's directory ``home``: its config, its store and its keys."""
    config = central_config.load(home)
    store = CentralStore.open(config.database_path, clock)
    try:
        keyring = keyring_of(config, store)
    except BaseException:
        store.close()
        raise
    return Central(config, keyring, store)


def keyring_of(config: central_config.CentralConfig, store: CentralStore) -> CentralKeyring:
    """Central's keys over ``store``, refusing to sign while it is rebuilt or behind its
    watermark (:class:`central.keyring.CentralKeyring`)."""
    code = config.central.code

    def head() -> int:
        own = store.log.head(code)
        return own.seq if own else 0

    return CentralKeyring(
        config.key_path, store.db, code=code, head=head, rebuilding=config.home / REBUILDING
    )


def init(
    home: Path,
    *,
    code: str,
    name: str,
    net: str | None,
    clock: Clock,
    random: Callable[[int], bytes] = os.urandom,
) -> str:
    """Create central's directory, keys and genesis record; returns the anchor fingerprint."""
    validate_node_code(code, Tier.CENTRAL)
    if not name.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "name is empty")
    net = net or f"cn-{code}"
    if home.exists() and any(home.iterdir()):
        raise InputError(ErrorCode.DIR_NOT_EMPTY, str(home))
    home.mkdir(parents=True, exist_ok=True)
    (home / "keys").mkdir(mode=0o700)
    section = central_config.CentralSection(code=code, name=name.strip(), net=net)
    (home / central_config.CONFIG_FILE).write_text(central_config.render(section), encoding="utf-8")
    config = central_config.load(home)
    config.bundle_dir.mkdir()
    central_keys = keys.generate(random)
    keys.write_key_file(config.key_path, central_keys, clock.now())
    genesis = seal(
        Payload(
            net=net,
            kind=kinds.NET_GENESIS,
            origin=code,
            kid=central_keys.kid,
            seq=1,
            prev=ZERO_ID,
            ts=clock.now(),
            body={
                "net": net,
                "code": code,
                "name": section.name,
                "sign_pk": central_keys.sign_public,
                "curve_pk": central_keys.curve_public,
            },
            actor="sys:init",
        ),
        central_keys,
    )
    with CentralStore.open(config.database_path, clock, create=True) as store:
        store.log.install_anchor(genesis.envelope, source="local")
        central = Central(config, keyring_of(config, store), store)
        for role in DELEGATED_ROLES:
            name_role_key(central.keys, central.append, role, clock.now(), random)
    return anchor_fingerprint(genesis.id)


def rotate_key(central: Central, role: str, random: Callable[[int], bytes] = os.urandom) -> Record:
    """Replace ``role``'s key; records signed with the old one after this are refused."""
    return name_role_key(central.keys, central.append, role, central.store.log.clock.now(), random)


def rotate_root_key(central: Central, random: Callable[[int], bytes] = os.urandom) -> Record:
    """Hand the root over to a new key (signed by the old root, proven by the new)."""
    now = central.store.log.clock.now()
    return rotate_root(central.keys, central.append, central.config.central.net, now, random)


def issue_enroll_token(
    central: Central,
    code: str,
    *,
    valid_hours: int = enroll_tokens.VALID_HOURS,
    random: Callable[[int], bytes] = os.urandom,
) -> tuple[str, int]:
    """A one-time token for enrolling ``code``, shown once (central keeps only its digest),
    and when it expires (:func:`central.enroll_tokens.issue`)."""
    return enroll_tokens.issue(central.store, central.code, code, valid_hours=valid_hours, random=random)


def enroll(
    central: Central, request_data: bytes, *, valid_days: int = CERT_VALIDITY_DAYS
) -> tuple[Record, bytes]:
    """Certify the node that made ``request_data``; returns its certificate and bundle.

    Raises:
        EnrollmentError: ``E_ENROLL_REQUEST``, ``E_ENROLL_POP``, ``E_ENROLL_TIER``,
            ``E_ENROLL_PARENT``, ``E_ENROLL_CODE_TAKEN``, then ``E_ENROLL_TOKEN`` or an
            ``E_ENROLL_TOKEN_*`` (:mod:`central.enroll_tokens`). Nothing is appended and no
            token used then; the refused request is noted (``enrollment_requests``).
    """
    request = read_request(request_data)
    try:
        _check_request(central, request)
        token = enroll_tokens.check(central.store, request)
    except EnrollmentError as exc:
        central.store.note_request(request.id, request.code, exc.code.value, None)
        raise
    with transaction(central.store.db):
        cert = _certify(central, request, valid_days)
        if not central.store.use_enrollment_token(token, central.store.log.clock.now(), cert.id):
            raise EnrollmentError(ErrorCode.ENROLL_TOKEN_USED, "used by another request meanwhile")
        central.store.note_request(request.id, request.code, "certified", cert.id)
    return cert, bundle_for(central, request.code)


def _certify(central: Central, request: EnrollmentRequest, valid_days: int) -> Record:
    now = central.store.log.clock.now()
    return central.append(
        kinds.NODE_CERT,
        {
            "node": request.code,
            "tier": request.tier,
            "parent": request.parent,
            "name": request.name,
            "sign_pk": request.sign_pk,
            "curve_pk": request.curve_pk,
            "nbf": now,
            "exp": now + valid_days * DAY,
            "request": request.raw,
        },
        actor="sys:enroll",
    )


def _check_request(central: Central, request: EnrollmentRequest) -> None:
    now = central.store.log.clock.now()
    try:
        tier = parse_tier(request.tier)
        validate_node_code(request.code, tier)
    except TongbanError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_TIER, exc.render("en")) from exc
    if tier is Tier.CENTRAL:
        raise EnrollmentError(ErrorCode.ENROLL_TIER, "central is not enrolled")
    if tier is Tier.DEPARTMENT:
        raise EnrollmentError(
            ErrorCode.ENROLL_TIER, "a department is enrolled with its items (enroll-department)"
        )
    if request.code[:6] != central.code:
        raise EnrollmentError(ErrorCode.ENROLL_PARENT, f"{request.code} is not in {central.code}")
    if request.parent != expected_parent(request.code, tier):
        raise EnrollmentError(
            ErrorCode.ENROLL_PARENT, f"the parent of {request.code} is not {request.parent}"
        )
    db = central.store.db
    if tier is Tier.VILLAGE:
        parents = certificates(db, request.parent)
        if not any(c.tier == Tier.TOWN.value and not c.revoked and c.exp > now for c in parents):
            raise EnrollmentError(ErrorCode.ENROLL_PARENT, f"town {request.parent} is not enrolled")
    if unrevoked(db, request.code):
        # Expired but unrevoked counts too: its key still signs. Revoke it first.
        raise EnrollmentError(
            ErrorCode.ENROLL_CODE_TAKEN, f"{request.code} (revoke the old certificate first)"
        )
    taken = key_holder(db, request.sign_pk, request.curve_pk)
    if taken is not None:
        raise EnrollmentError(ErrorCode.ENROLL_CODE_TAKEN, f"a key in this request is certified for {taken}")
    if not request.name.strip() or len(request.name) > 100 or not request.name.isprintable():
        raise EnrollmentError(ErrorCode.ENROLL_REQUEST, "the name must be 1-100 printable characters")


def bundle_for(central: Central, code: str) -> bytes:
    """The bundle for ``code``: the anchor and every record of central's own chain.

    Every node holds central's whole chain (certificates, revocations, catalog and
    calendar releases, grants, heartbeats, receipts): records of one origin are only
    accepted in sequence. Heartbeats (96 a day) and receipts to towns make it tens of
    thousands of small records a year, a few MB.

    A replacement node (the code was certified before, under a key now revoked) also gets
    every record central holds from the code: its new key continues the code's chain after
    them instead of forking it at #1, and its clerks see their cases and case numbers go on
    (docs/operations.md, "Replace a machine"). For a first enrollment there are none.
    """
    log = central.store.log
    anchor = log.anchor()
    if anchor is None:  # pragma: no cover - central always has its genesis
        raise ConfigError(ErrorCode.NOT_INITIALIZED, "central has no genesis record")
    chain = envelopes_of(central.store.db, central.code)
    own = envelopes_of(central.store.db, code)
    return make_bundle(code, chain[0], chain[1:] + own)


def revoke_node(
    central: Central,
    code: str,
    *,
    reason: str,
    last_good_seq: int | None = None,
    actor: str = "sys:revoke",
) -> list[Record]:
    """Revoke every live certificate of ``code``.

    ``last_good_seq`` defaults to the highest sequence number central holds from the node:
    everything central has seen stays valid, anything signed later with the old key is
    refused everywhere.
    """
    if not reason.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "a reason is required")
    now = central.store.log.clock.now()
    live = unrevoked(central.store.db, code)
    if not live:
        raise AuthorityError(ErrorCode.CERT_UNKNOWN, f"no live certificate for {code}")
    if last_good_seq is None:
        head = central.store.log.head(code)
        last_good_seq = head.seq if head else 0
    if last_good_seq < 0:
        raise InputError(ErrorCode.FIELD_INVALID, "last-good-seq must be 0 or more")
    return [
        central.append(
            kinds.CERT_REVOKE,
            {
                "node": code,
                "cert": cert.cert_id,
                "last_good_seq": last_good_seq,
                "effective": now,
                "reason": reason.strip(),
            },
            actor=actor,
        )
        for cert in live
    ]


def publish_catalog(
    central: Central,
    items: Sequence[Item],
    *,
    valid_days: int = CATALOG_VALIDITY_DAYS,
    actor: str = "sys:catalog",
) -> tuple[Record, CatalogRelease]:
    """Publish ``items`` as the next catalog release."""
    current = newest_version(central.store.db)
    now = central.store.log.clock.now()
    release = CatalogRelease(
        version=current + 1, issued_at=now, expires_at=now + valid_days * DAY, items=tuple(items)
    )
    record = central.append(kinds.CATALOG_RELEASE, release.to_body(), actor=actor)
    return record, release


def _catalog_and_tier(central: Central, aud: str) -> tuple[CatalogRelease, str]:
    catalog = current_catalog(central.store.db)
    if catalog is None:
        raise InputError(ErrorCode.ITEM_UNKNOWN, "publish a catalog release before granting")
    certs = unrevoked(central.store.db, aud)
    if not certs:
        raise AuthorityError(ErrorCode.CERT_UNKNOWN, f"{aud} is not enrolled")
    return catalog, certs[0].tier


def grant(
    central: Central,
    aud: str,
    items: Sequence[str],
    mode: Mode,
    *,
    valid_days: int = GRANT_VALIDITY_DAYS,
    depth: int = 1,
    actor: str = "sys:grant",
) -> Record:
    """Issue a root grant: ``aud`` may handle ``items`` in ``mode`` for ``valid_days``.

    The items must be in the current catalog release and offered at the grantee's tier in
    at least ``mode`` (``E_GRANT_ITEM`` / ``E_GRANT_MODE``).
    """
    catalog, tier = _catalog_and_tier(central, aud)
    for code in items:
        item = catalog.get(code)
        if item is None:
            raise AuthorityError(ErrorCode.GRANT_ITEM, f"{code} is not in catalog version {catalog.version}")
        offered = item_available(item, tier)
        if offered is None or mode > offered:
            raise AuthorityError(ErrorCode.GRANT_MODE, f"{code} at {tier}: {mode.value} asked")
    now = central.store.log.clock.now()
    return issue_grant(
        central.store.log,
        central.keys,
        central.code,
        aud=aud,
        items=items,
        mode=mode,
        nbf=now - DAY,
        exp=now + valid_days * DAY,
        depth=depth,
        cat=catalog.version,
        actor=actor,
    )


def grant_items(
    central: Central,
    aud: str,
    items: Sequence[str] | None,
    mode: Mode | None,
    *,
    valid_days: int = GRANT_VALIDITY_DAYS,
    depth: int = 1,
    actor: str = "sys:grant",
) -> list[tuple[Record, Mode, int]]:
    """Grant ``items`` (default: all the catalog offers at the grantee's tier) to ``aud``.

    With ``mode`` one grant; without, one grant per mode the catalog allows, each item in
    the strongest mode it is offered in at that tier.
    """
    catalog, tier = _catalog_and_tier(central, aud)
    codes = list(items) if items else [i.code for i in catalog.items]
    if mode is not None:
        record = grant(central, aud, codes, mode, valid_days=valid_days, depth=depth, actor=actor)
        return [(record, mode, len(codes))]
    out = []
    for group_mode, group in split_by_mode(catalog, tier, codes, Mode.SAME_POWER).items():
        record = grant(central, aud, group, group_mode, valid_days=valid_days, depth=depth, actor=actor)
        out.append((record, group_mode, len(group)))
    return out


def revoke_grant(central: Central, grant_id: bytes, reason: str, *, actor: str) -> Record:
    """Revoke a grant central holds, from now on (``grant.revoke``).

    Refused with ``E_GRANT_REVOKED`` when it is revoked already: a second revocation would
    change nothing but the log's length.
    """
    if StoreGrants(central.store.db).is_revoked(grant_id):
        raise AuthorityError(ErrorCode.GRANT_REVOKED, grant_id.hex()[:16])
    return revoke_delegated_grant(central.store.log, central.keys, central.code, grant_id, reason, actor)


def publish_calendar(
    central: Central, schedule_file: Path, *, actor: str = "sys:calendar"
) -> tuple[Record, CalendarRelease]:
    """Publish the year's schedule in a YAML file as the next calendar release.

    The file names ``year``, ``source`` (the State Council's notice), ``holidays`` and
    ``workdays`` (:func:`core.calendar.schedule_from_data`). The version is the previous
    one + 1, whatever the year. ``exp`` is the end of the following year, China time: a case
    taken in late in the year runs into the next one.
    """
    try:
        data = yaml.safe_load(schedule_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(ErrorCode.CALENDAR_INVALID, f"{schedule_file}: {exc}") from exc
    schedule = schedule_from_data(data)
    now = central.store.log.clock.now()
    end = int(dt.datetime(schedule.year + 1, 12, 31, 23, 59, 59, tzinfo=CHINA).timestamp())
    version = calendars.newest_version(central.store.db) + 1
    release = CalendarRelease(version=version, schedule=schedule, issued=now, exp=max(end, now + DAY))
    record = central.append(kinds.CALENDAR_RELEASE, release.to_body(), actor=actor)
    return record, release


def renew_grants(central: Central) -> list[Record]:
    """Renew central's root grants that have a third or less of their validity left.

    A renewed grant refers to the current catalog release when that release still offers
    every item at the grantee's tier in the grant's mode; otherwise to the one it had.
    """
    catalog = current_catalog(central.store.db)

    def cat_for(old: Grant) -> int:
        if catalog is None:
            return old.cat
        tier = tier_for_code(old.aud).value
        for code in old.items:
            item = catalog.get(code)
            offered = item_available(item, tier) if item is not None else None
            if offered is None or old.mode > offered:
                return old.cat
        return catalog.version

    return delegation_renew(central.store.log, central.keys, central.code, cat_for=cat_for)
