"""Central's key files: the root key, one key per role, and their rotation.

``keys/central.key`` holds central's first root signing key (the genesis key every node
pins) and its CURVE transport key. Each role key named by a ``key.role`` record, and each
later root key, has a file of its own, ``keys/<role>-<kid>.key`` (mode 0600, written once,
never overwritten). :class:`CentralKeyring` picks, for a record kind, the file of the key
the log names as that role's current key (:mod:`sync.record.trust`), so a rotation needs
no configuration change and no node is touched: the rotation is a record that flows down.

The root key signs only key records; once the role keys exist it can be kept off the
machine (move its file away and bring it back for a rotation): signing anything else
never opens it, and a missing key file is ``E_KEY_MISSING`` with the file named.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from core.errors import ErrorCode, InputError, KeyFileError, RecordError, StoreError
from sync.record import keys, kinds
from sync.record.envelope import Record, Signer
from sync.record.trust import DELEGATED_ROLES, current_key, role_of, root_proof_message
from sync.record.watermark import SigningGuard, Watermark, beside, watermarked

Random = Callable[[int], bytes]


REBUILDING = "rebuilding"
"""The file in central's directory that says its store is being rebuilt from the network
(:mod:`central.rebuild`): while it is there, central signs nothing."""
RESTORE_HINT = (
    "central's store is older than what it signed: run tongban central rebuild DIR"
    " (a copy to put back goes through tongban central restore BACKUP DIR)"
)


class CentralKeyring:
    """Central's keys: CURVE from ``central.key``; signing keys chosen by record kind.

    Every signature of a record goes through two checks first: central is not being rebuilt
    (``E_CENTRAL_REBUILDING`` while ``rebuilding`` exists), and the record's seq is above
    the watermark of central's chain (``E_CHAIN_BEHIND``: a store put back to an older copy
    must not sign a seq twice, :mod:`sync.record.watermark`). ``head`` gives central's own
    head in its store; without it (and ``code``) no watermark is kept.
    """

    def __init__(
        self,
        key_path: Path,
        db: Database,
        *,
        code: str = "",
        head: Callable[[], int] | None = None,
        rebuilding: Path | None = None,
    ) -> None:
        self.transport = keys.load_key_file(key_path)
        self.directory = key_path.parent
        self._db = db
        self._loaded: dict[bytes, keys.NodeKeys] = {self.transport.kid: self.transport}
        self.rebuilding = rebuilding
        self.guard = (
            SigningGuard(Watermark(beside(key_path), code), db, head, remedy=RESTORE_HINT)
            if code and head is not None
            else None
        )
        self._guarded: dict[bytes, keys.NodeKeys] = {}

    def __repr__(self) -> str:
        return f"CentralKeyring({self.directory.name})"

    @property
    def curve_secret(self) -> bytes:
        return self.transport.curve_secret

    @property
    def curve_public(self) -> bytes:
        return self.transport.curve_public

    @property
    def kid(self) -> bytes:
        """The genesis key's id (central's certificate in the ``certs`` table)."""
        return self.transport.kid

    def signer_for(self, kind: str) -> Signer:
        role = role_of(kind)
        if role is None:
            raise RecordError(ErrorCode.KEY_ROLE, f"central signs no {kind} records")
        if self.rebuilding is not None and self.rebuilding.exists():
            raise StoreError(ErrorCode.CENTRAL_REBUILDING, f"see {self.rebuilding}")
        key = self.for_role(role)
        if self.guard is None:
            return key
        if key.kid not in self._guarded:
            self._guarded[key.kid] = watermarked(key, self.guard)
        return self._guarded[key.kid]

    def for_role(self, role: str) -> keys.NodeKeys:
        current = current_key(self._db, role)
        if current is None:
            raise KeyFileError(ErrorCode.KEY_MISSING, f"central's log names no {role} key")
        found = self._loaded.get(current.kid)
        if found is None:
            found = keys.load_key_file(self.path_for(role, current.kid))
            if found.kid != current.kid:
                raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{role} key file holds another key")
            self._loaded[current.kid] = found
        return found

    def path_for(self, role: str, kid: bytes) -> Path:
        if kid == self.transport.kid:
            return self.directory / "central.key"
        return self.directory / f"{role}-{kid.hex()}.key"

    def new_key(self, role: str, now: int, random: Random) -> keys.NodeKeys:
        """Generate a key for ``role`` and write its file (the record naming it comes next)."""
        fresh = keys.generate(random)
        keys.write_key_file(self.path_for(role, fresh.kid), fresh, now)
        self._loaded[fresh.kid] = fresh
        return fresh


AppendFn = Callable[[str, dict[str, object], str], Record]


def name_role_key(
    keyring: CentralKeyring, append: AppendFn, role: str, now: int, random: Random = os.urandom
) -> Record:
    """Generate a new key for ``role`` and append the ``key.role`` record naming it.

    The role's previous key (if any) is retired after this record's seq.
    """
    if role not in DELEGATED_ROLES:
        raise InputError(ErrorCode.FIELD_INVALID, f"role must be one of {', '.join(DELEGATED_ROLES)}")
    fresh = keyring.new_key(role, now, random)
    return append(kinds.KEY_ROLE, {"role": role, "sign_pk": fresh.sign_public}, "sys:keys")


def rotate_root(
    keyring: CentralKeyring, append: AppendFn, net: str, now: int, random: Random = os.urandom
) -> Record:
    """Hand the root over to a fresh key: a ``root.rotate`` signed by the current root,
    with the new key's proof of possession."""
    old = keyring.for_role("root")
    fresh = keyring.new_key("root", now, random)
    proof = fresh.sign(root_proof_message(net, old.kid, fresh.sign_public))
    return append(kinds.ROOT_ROTATE, {"sign_pk": fresh.sign_public, "proof": proof}, "sys:keys")
