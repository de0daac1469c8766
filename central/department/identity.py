"""A department's identity: its directory and keys, and installing its enrollment.

``init`` makes the directory, generates both key pairs on this machine (they never leave
it), writes ``department.toml`` and an enrollment request signed with the new signing key.
``enroll`` installs the bundle central returned — the trust anchor (checked against the
fingerprint the operator was given), central's chain with the department's certificate —
and appends the department's first record, ``node.enrolled``.

Directory layout::

    DIR/department.toml         configuration (docs/configuration.md)
    DIR/keys/department.key     private keys, mode 0600, directory 0700
    DIR/department.db           the store (SQLite, WAL)
    DIR/enroll-request.cbor     what to carry to central
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from central.department import config as department_config
from central.department.store import DepartmentStore
from core.admin import Tier
from core.clock import Clock
from core.departments import check_department_code
from core.errors import EnrollmentError, ErrorCode, InputError, RecordError
from sync.record import keys, kinds, trust
from sync.record.enrollment import make_request, parse_fingerprint, read_bundle
from sync.record.outcome import Status

REQUEST_FILE = "enroll-request.cbor"
SOFTWARE = "tongban 0.1.0 department"


@dataclass(frozen=True)
class InitResult:
    home: Path
    request_path: Path
    sign_fingerprint: str


def init(
    home: Path,
    *,
    code: str,
    name: str,
    parent: str,
    clock: Clock,
    amqp: department_config.AmqpSection | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> InitResult:
    """Create a department directory with fresh keys and a signed enrollment request."""
    check_department_code(code)
    if parent != code[:6]:
        raise InputError(ErrorCode.TIER_MISMATCH, f"the parent of {code} is {code[:6]}, not {parent}")
    if not name.strip():
        raise InputError(ErrorCode.FIELD_INVALID, "name is empty")
    if home.exists() and any(home.iterdir()):
        raise InputError(ErrorCode.DIR_NOT_EMPTY, str(home))
    home.mkdir(parents=True, exist_ok=True)
    (home / "keys").mkdir(mode=0o700)
    section = department_config.DepartmentSection(code=code, name=name.strip(), parent=parent)
    (home / department_config.CONFIG_FILE).write_text(
        department_config.render(section, amqp), encoding="utf-8"
    )
    config = department_config.load(home)
    own = keys.generate(random)
    keys.write_key_file(config.key_path, own, clock.now())
    with DepartmentStore.open(config.database_path, clock, create=True):
        pass  # creates the store and runs its migrations
    request = make_request(
        own,
        code=code,
        tier=Tier.DEPARTMENT.value,
        name=section.name,
        parent=parent,
        sign_pk=own.sign_public,
        curve_pk=own.curve_public,
        ts=clock.now(),
    )
    request_path = home / REQUEST_FILE
    request_path.write_bytes(request)
    return InitResult(home, request_path, keys.fingerprint(own.sign_public))


def enroll(home: Path, bundle_data: bytes, *, clock: Clock, anchor_fingerprint: str | None = None) -> bytes:
    """Install central's bundle into the department at ``home``; the certificate's id.

    Raises:
        EnrollmentError: ``E_ENROLL_BUNDLE`` (not for this department, or no certificate of
            its key), ``E_ENROLL_ANCHOR``, ``E_ALREADY_ENROLLED``.
    """
    config = department_config.load(home)
    own = keys.load_key_file(config.key_path)
    bundle = read_bundle(bundle_data)
    if bundle.node != config.code:
        raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, f"bundle is for {bundle.node}, this is {config.code}")
    with DepartmentStore.open(config.database_path, clock) as store:
        if store.log.head(config.code) is not None:
            raise EnrollmentError(ErrorCode.ALREADY_ENROLLED, config.code)
        expected = parse_fingerprint(anchor_fingerprint) if anchor_fingerprint else None
        try:
            store.log.install_anchor(bundle.anchor, expected_id=expected, source="bundle")
        except RecordError as exc:
            raise EnrollmentError(ErrorCode.ENROLL_ANCHOR, exc.render("en")) from exc
        for envelope in bundle.records:
            outcome = store.log.ingest(envelope, "bundle")
            if outcome.status not in (Status.APPENDED, Status.DUPLICATE):
                raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, f"a bundled record was {outcome.status.value}")
        cert_id = trust.cert_of_key(store.db, config.code, own.kid)
        certs = [c for c in trust.certificates(store.db, config.code) if c.cert_id == cert_id]
        if not certs or certs[0].tier != Tier.DEPARTMENT.value or certs[0].curve_pk != own.curve_public:
            raise EnrollmentError(ErrorCode.ENROLL_BUNDLE, "the bundle holds no certificate for this key")
        store.log.append_local(
            own,
            config.code,
            kinds.NODE_ENROLLED,
            {"cert": certs[0].cert_id, "software": SOFTWARE},
            actor="sys:enroll",
        )
        return certs[0].cert_id
