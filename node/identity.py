"""A node's identity: creating its directory and keys, and installing its enrollment.

``init`` makes the directory, generates both key pairs on this machine (they never leave
it), writes ``node.toml`` and an enrollment request signed with the new signing key. The
request carries the one-time token central issued for the node's code (``tongban central
enroll-token``): given to ``init``, or later to ``request``, which signs the request again
with the token (a token is issued when the node is about to be enrolled, often after its
keys were made; a request without one is refused at central).
``enroll`` installs the bundle central returned: the trust anchor (checked against the
fingerprint the operator was given, when given), the certificates on the node's chain and
the current catalog — and then the node's own first record, ``node.enrolled``.

Directory layout::

    DIR/node.toml             configuration (docs/configuration.md)
    DIR/keys/node.key         private keys, mode 0600, directory 0700
    DIR/node.db               the store (SQLite, WAL)
    DIR/enroll-request.cbor   what to carry to central
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.admin import expected_parent, parse_tier, validate_node_code
from core.clock import Clock
from core.errors import EnrollmentError, ErrorCode, InputError, RecordError
from node import config as node_config
from node.store import NodeStore
from sync.record import keys, kinds, trust
from sync.record.enrollment import anchor_fingerprint as fingerprint_of
from sync.record.enrollment import make_request, normalize_token, parse_fingerprint, read_bundle
from sync.record.outcome import Status

REQUEST_FILE = "enroll-request.cbor"
SOFTWARE = "tongban 0.1.0"


@dataclass(frozen=True)
class InitResult:
    home: Path
    request_path: Path
    kid: bytes
    sign_fingerprint: str


@dataclass(frozen=True)
class EnrollResult:
    code: str
    anchor_fingerprint: str
    records: int
    cert_id: bytes


def prepare_directory(home: Path) -> None:
    """Create ``home`` (and ``home/keys`` with mode 0700); refuse a non-empty directory."""
    if home.exists() and any(home.iterdir()):
        raise InputError(ErrorCode.DIR_NOT_EMPTY, str(home))
    home.mkdir(parents=True, exist_ok=True)
    (home / "keys").mkdir(mode=0o700)


def init(
    home: Path,
    *,
    tier: str,
    code: str,
    name: str,
    parent: str,
    clock: Clock,
    random: Callable[[int], bytes] = os.urandom,
    token: str | None = None,
) -> InitResult:
    """Create a node directory with fresh keys and a signed enrollment request (carrying
    ``token``; without one it must be made again with :func:`request` before enrollment)."""
    tier_value = parse_tier(tier)
    validate_node_code(code, tier_value)
    if tier_value.value == "central":
        raise InputError(ErrorCode.TIER_MISMATCH, "central is created with 'tongban central init'")
    if tier_value.value == "department":
        raise InputError(ErrorCode.TIER_MISMATCH, "a department is created with 'tongban department init'")
    want = expected_parent(code, tier_value)
    if parent != want:
        raise InputError(ErrorCode.TIER_MISMATCH, f"the parent of {code} ({tier}) is {want}, not {parent}")
    if not name.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "name is empty")
    if token is not None:
        normalize_token(token)  # before anything is made
    prepare_directory(home)
    section = node_config.NodeSection(code=code, tier=tier_value.value, name=name.strip(), parent=parent)
    (home / node_config.CONFIG_FILE).write_text(node_config.render(section), encoding="utf-8")
    config = node_config.load(home)
    node_keys = keys.generate(random)
    keys.write_key_file(config.key_path, node_keys, clock.now())
    with NodeStore.open(config.database_path, clock, create=True):
        pass  # creates the store and runs its migrations
    request_path = _write_request(home, config, node_keys, clock, token)
    return InitResult(home, request_path, node_keys.kid, keys.fingerprint(node_keys.sign_public))


def request(home: Path, *, token: str, clock: Clock) -> Path:
    """Sign the node's enrollment request again, with ``token``; where it was written.

    Raises:
        EnrollmentError: ``E_ENROLL_TOKEN`` (not a token), ``E_ALREADY_ENROLLED``.
    """
    config = node_config.load(home)
    node_keys = keys.load_key_file(config.key_path)
    normalize_token(token)  # a typo is told here, not at central
    with NodeStore.open(config.database_path, clock) as store:
        if store.log.head(config.node.code) is not None:
            raise EnrollmentError(ErrorCode.ALREADY_ENROLLED, config.node.code)
    return _write_request(home, config, node_keys, clock, token)


def _write_request(
    home: Path, config: node_config.NodeConfig, node_keys: keys.NodeKeys, clock: Clock, token: str | None
) -> Path:
    section = config.node
    data = make_request(
        node_keys,
        code=section.code,
        tier=section.tier,
        name=section.name,
        parent=section.parent,
        sign_pk=node_keys.sign_public,
        curve_pk=node_keys.curve_public,
        ts=clock.now(),
        token=token,
    )
    # Readable by the node's account only: until central uses it up, its token enrolls the code.
    path = home / REQUEST_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)
    return path


def enroll(
    home: Path, bundle_data: bytes, *, clock: Clock, anchor_fingerprint: str | None = None
) -> EnrollResult:
    """Install central's bundle into the node at ``home``.

    Raises:
        EnrollmentError: ``E_ENROLL_BUNDLE`` (not for this node, or its certificate does
            not carry this node's keys), ``E_ENROLL_ANCHOR``, ``E_ALREADY_ENROLLED``.
    """
    config = node_config.load(home)
    node_keys = keys.load_key_file(config.key_path)
    bundle = read_bundle(bundle_data)
    if bundle.node != config.node.code:
        raise EnrollmentError(
            ErrorCode.ENROLL_BUNDLE, f"bundle is for {bundle.node}, this node is {config.node.code}"
        )
    with NodeStore.open(config.database_path, clock) as store:
        if store.log.head(config.node.code) is not None:
            raise EnrollmentError(ErrorCode.ALREADY_ENROLLED, config.node.code)
        expected = parse_fingerprint(anchor_fingerprint) if anchor_fingerprint else None
        try:
            anchor = store.log.install_anchor(bundle.anchor, expected_id=expected, source="bundle")
        except RecordError as exc:
            raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, exc.render("en")) from exc
        for envelope in bundle.records:
            outcome = store.log.ingest(envelope, "bundle")
            if outcome.status not in (Status.APPENDED, Status.DUPLICATE):
                raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, f"a bundled record was {outcome.status.value}")
        cert_id = _own_certificate(store, config, node_keys)
        store.log.append_local(
            node_keys,
            config.node.code,
            kinds.NODE_ENROLLED,
            {"cert": cert_id, "software": SOFTWARE},
            actor="sys:enroll",
        )
        return EnrollResult(
            code=config.node.code,
            anchor_fingerprint=fingerprint_of(anchor.id),
            records=store.log.count(),
            cert_id=cert_id,
        )


def _own_certificate(store: NodeStore, config: node_config.NodeConfig, node_keys: keys.NodeKeys) -> bytes:
    cert_id = trust.cert_of_key(store.db, config.node.code, node_keys.kid)
    cert = next((c for c in trust.certificates(store.db, config.node.code) if c.cert_id == cert_id), None)
    if cert is None:
        raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, "the bundle holds no certificate for this node's key")
    expected = (config.node.tier, config.node.parent, node_keys.curve_public)
    if (cert.tier, cert.parent, cert.curve_pk) != expected:
        raise EnrollmentError(
            ErrorCode.ENROLL_BUNDLE, "the certificate does not match this node's config or keys"
        )
    return cert.cert_id
