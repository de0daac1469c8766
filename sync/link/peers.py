"""Who may connect to a parent: the children whose certificates it holds, live, by CURVE key.

The parent's ZAP handler (:mod:`sync.link.endpoint`) admits a key only if it belongs to a
certificate the parent holds that is unrevoked, inside its validity, and of a node within
the parent's subtree. Any other key is refused, and the refusal says why: the key's
certificate was revoked (``E_SYNC_PEER_REVOKED``), it expired or is not valid yet
(``E_CERT_EXPIRED``, ``E_CERT_NOT_YET_VALID``: counted under that node's code, so an
operator sees whose renewal is due), or no certificate holds it (``E_SYNC_PEER_UNKNOWN``,
all strangers under one counter).
"""

from __future__ import annotations

from typing import Any

from zmq.utils import z85

from core.admin import within
from core.errors import ErrorCode
from sync.link.parent_session import Peer
from sync.link.transport import UNKNOWN_PEER
from sync.record import trust
from sync.record.log import RecordLog

NOT_LIVE = {
    ErrorCode.SYNC_PEER_REVOKED: "the certificate is no longer valid",
    ErrorCode.CERT_EXPIRED: "the certificate has expired",
    ErrorCode.CERT_NOT_YET_VALID: "the certificate is not valid yet",
    ErrorCode.SYNC_PEER_UNKNOWN: "no live certificate",
}
"""What a message from a connection whose key is no longer live is told, by code."""


class PeerDirectory:
    """The children a parent admits, by CURVE key, from its ``certs`` table."""

    def __init__(self, log: RecordLog, code: str) -> None:
        self.log = log
        self.code = code
        self._mark: tuple[Any, ...] | None = None
        self.live: dict[bytes, Peer] = {}
        self.revoked: dict[bytes, str] = {}
        self.expired: dict[bytes, tuple[str, ErrorCode]] = {}
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the certificates if any changed (or a certificate expired); whether it did."""
        now = self.log.clock.now()
        mark = (trust.directory_mark(self.log.db), now // 60)
        if mark == self._mark:
            return False
        self._mark = mark
        live: dict[bytes, Peer] = {}
        revoked: dict[bytes, str] = {}
        expired: dict[bytes, tuple[str, ErrorCode]] = {}
        for cert in trust.certificates(self.log.db):
            if cert.code == self.code or not within(cert.code, self.code) or cert.tier == "department":
                continue  # a department links to central over its broker, never over ZeroMQ
            if cert.revoked:
                revoked[cert.curve_pk] = cert.code
            elif cert.live(now):
                live[cert.curve_pk] = Peer(cert.code, cert.cert_id, cert.curve_pk)
            else:  # expired, or not valid yet: its renewal, or a clock, to see to
                why = ErrorCode.CERT_EXPIRED if cert.exp <= now else ErrorCode.CERT_NOT_YET_VALID
                expired[cert.curve_pk] = (cert.code, why)
        self.live, self.revoked, self.expired = live, revoked, expired
        return True

    def refusal(self, key: bytes) -> tuple[str, ErrorCode]:
        """Who a key that is not live belongs to (or :data:`UNKNOWN_PEER`), and why it is
        refused: revoked, expired, or no certificate at all."""
        if key in self.revoked:
            return self.revoked[key], ErrorCode.SYNC_PEER_REVOKED
        if key in self.expired:
            return self.expired[key]
        return UNKNOWN_PEER, ErrorCode.SYNC_PEER_UNKNOWN

    def by_user_id(self, user_id: str | None) -> Peer | None:
        return self.live.get(_key_of(user_id))

    def refusal_of_user_id(self, user_id: str | None) -> tuple[str, ErrorCode]:
        """:meth:`refusal` of the key ZAP gave a connection (a certificate revoked or expired
        since the handshake)."""
        return self.refusal(_key_of(user_id))


def _key_of(user_id: str | None) -> bytes:
    """The CURVE key ZAP gave a connection as its ``User-Id`` (b"" if none)."""
    if not user_id:
        return b""
    try:
        return bytes(z85.decode(user_id.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        return b""
