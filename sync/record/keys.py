"""Node key files: an Ed25519 signing key and a separate CURVE (X25519) transport key pair.

Keys are generated on the machine that uses them and never leave it. The file is text, so
an operator can see what it is, versioned, written once with mode 0600 and never
overwritten::

    # Tongban node keys. SECRET: never copy this file to another machine.
    format: tongban-keys/1
    created: 1764000000
    sign-seed: <64 hex>          Ed25519 seed (32 bytes)
    sign-public: <64 hex>        Ed25519 public key
    curve-secret: <64 hex>       X25519 secret key for CURVE
    curve-public: <64 hex>       X25519 public key

The public halves are stored for the operator's eyes and checked against the secrets on
load; a mismatch means the file was edited and is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from core.errors import ErrorCode, KeyFileError

FORMAT = "tongban-keys/1"
_FIELDS = ("format", "created", "sign-seed", "sign-public", "curve-secret", "curve-public")


@dataclass(frozen=True)
class NodeKeys:
    """A node's private keys. ``repr`` never shows the secrets."""

    sign_seed: bytes
    curve_secret: bytes

    def __repr__(self) -> str:
        return f"NodeKeys(kid={self.kid.hex()})"

    @cached_property
    def _signing_key(self) -> SigningKey:
        # Deriving the key pair from the seed costs as much as a signature: do it once.
        return SigningKey(self.sign_seed)

    @cached_property
    def sign_public(self) -> bytes:
        return bytes(self._signing_key.verify_key)

    @cached_property
    def kid(self) -> bytes:
        return hashlib.sha256(self.sign_public).digest()[:8]

    @cached_property
    def curve_public(self) -> bytes:
        return bytes(PrivateKey(self.curve_secret).public_key)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message``."""
        return self._signing_key.sign(message).signature


def generate(random: Callable[[int], bytes] = os.urandom) -> NodeKeys:
    """Fresh keys from ``random`` (injected so vectors can use fixed bytes)."""
    return NodeKeys(sign_seed=random(32), curve_secret=random(32))


def fingerprint(public_key: bytes) -> str:
    """A short, readable fingerprint of a public key for operators to compare."""
    digest = hashlib.sha256(public_key).hexdigest()[:20]
    return ":".join(digest[i : i + 4] for i in range(0, 20, 4))


def write_key_file(path: Path, keys: NodeKeys, created: int) -> None:
    """Write ``keys`` to a new file with mode 0600; an existing file is never touched."""
    text = (
        "# Tongban node keys. SECRET: never copy this file to another machine.\n"
        f"format: {FORMAT}\n"
        f"created: {created}\n"
        f"sign-seed: {keys.sign_seed.hex()}\n"
        f"sign-public: {keys.sign_public.hex()}\n"
        f"curve-secret: {keys.curve_secret.hex()}\n"
        f"curve-public: {keys.curve_public.hex()}\n"
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(ErrorCode.KEY_FILE_EXISTS, str(path)) from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def load_key_file(path: Path) -> NodeKeys:
    """Read and check a key file.

    Raises:
        KeyFileError: ``E_KEY_FILE_MISSING``, ``E_KEY_FILE_MODE`` (readable by group or
            others), or ``E_KEY_FILE_FORMAT`` (unknown format, edited public keys).
    """
    try:
        mode = path.stat().st_mode
        raw = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise KeyFileError(ErrorCode.KEY_FILE_MISSING, str(path)) from exc
    except (UnicodeDecodeError, OSError) as exc:
        raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: {exc}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(ErrorCode.KEY_FILE_MODE, f"{path} is mode {stat.S_IMODE(mode):04o}")
    fields: dict[str, str] = {}
    for line in raw.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep or name.strip() not in _FIELDS or name.strip() in fields:
            raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: unexpected line {name.strip()!r}")
        fields[name.strip()] = value.strip()
    if fields.get("format") != FORMAT:
        raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: format is not {FORMAT}")
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: missing {', '.join(missing)}")
    try:
        keys = NodeKeys(bytes.fromhex(fields["sign-seed"]), bytes.fromhex(fields["curve-secret"]))
        publics = (bytes.fromhex(fields["sign-public"]), bytes.fromhex(fields["curve-public"]))
    except ValueError as exc:
        raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: not hex") from exc
    if len(keys.sign_seed) != 32 or len(keys.curve_secret) != 32:
        raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: secrets must be 32 bytes")
    if publics != (keys.sign_public, keys.curve_public):
        raise KeyFileError(ErrorCode.KEY_FILE_FORMAT, f"{path}: public keys do not match the secrets")
    return keys
