"""Another city's record carried byte for byte inside one of ours (docs/federation.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ErrorCode, RecordError

MAX_CARRIED = 512 * 1024
"""A carried foreign record with its chain: an envelope (at most 256 KiB) and a few certificates."""


@dataclass(frozen=True)
class Carried:
    """A record of another city, carried byte for byte inside one of ours: ``net`` is its
    city, ``env`` its envelope, ``chain`` the records that certify its signer there
    (:mod:`sync.record.foreign` checks them from the agreed root)."""

    net: str
    env: bytes
    chain: tuple[bytes, ...] = ()

    def to_body(self) -> dict[str, Any]:
        return {"net": self.net, "env": self.env, "chain": list(self.chain)}

    @classmethod
    def from_body(cls, body: object) -> Carried:
        if not isinstance(body, dict) or set(body) != {"net", "env", "chain"}:
            raise RecordError(ErrorCode.SCHEMA, "carried: fields must be exactly net, env, chain")
        net, env, chain = body["net"], body["env"], body["chain"]
        if not isinstance(net, str) or not net or len(net) > 64:
            raise RecordError(ErrorCode.SCHEMA, "carried: net must be a network name")
        if not isinstance(env, bytes) or not env:
            raise RecordError(ErrorCode.SCHEMA, "carried: env must be an envelope")
        if not isinstance(chain, list) or len(chain) > 4 or not all(isinstance(c, bytes) for c in chain):
            raise RecordError(ErrorCode.SCHEMA, "carried: chain must be a list of at most 4 envelopes")
        if len(env) + sum(len(c) for c in chain) > MAX_CARRIED:
            raise RecordError(ErrorCode.SCHEMA, "carried: too large")
        return cls(net, env, tuple(chain))
