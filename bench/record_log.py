"""Record-log ingest rate against the bare Ed25519 verify rate, in the same run.

Ingest does everything a real arrival does on a real SQLite file: strict decoding, key
lookup, signature check, canonical re-encoding, schema and chain checks, the append and
the projections, one transaction per record (the worst case; sync batches). The baseline
is PyNaCl verifying the same signed bytes with nothing else, on one core.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey

from core.clock import FixedClock
from sync.record import kinds
from sync.record.db import open_database
from sync.record.envelope import PREFIX_RECORD, ZERO_ID, Payload, seal, split
from sync.record.keys import generate
from sync.record.log import RecordLog
from sync.schema import log_migrations

RECORDS = 3000


def run(records: int = RECORDS) -> dict[str, Any]:
    clock = FixedClock(step=1)
    central, town = generate(), generate()
    with tempfile.TemporaryDirectory() as tmp:
        source = RecordLog(open_database(Path(tmp) / "src.db", [log_migrations]), clock)
        target = RecordLog(open_database(Path(tmp) / "dst.db", [log_migrations]), clock)
        genesis = _genesis(central, clock)
        source.install_anchor(genesis)
        target.install_anchor(genesis)
        cert = source.append_local(
            central,
            "330481",
            kinds.NODE_CERT,
            {
                "node": "330481104",
                "tier": "town",
                "parent": "330481",
                "name": "斜桥镇",
                "sign_pk": town.sign_public,
                "curve_pk": town.curve_public,
                "nbf": 0,
                "exp": 2**40,
                "request": b"",
            },
        )
        target.ingest(cert.envelope, "bench")
        for i in range(records):
            source.append_local(
                town, "330481104", kinds.NODE_ENROLLED, {"cert": cert.id, "software": f"r{i}"}
            )
        envelopes = [e for _, e in source.envelopes() if e not in (genesis, cert.envelope)]
        started = time.perf_counter()
        for envelope in envelopes:
            target.ingest(envelope, "bench")
        ingest_rate = len(envelopes) / (time.perf_counter() - started)
        verify_key = VerifyKey(town.sign_public)
        pairs = [split(e) for e in envelopes]
        started = time.perf_counter()
        for payload, sig in pairs:
            verify_key.verify(PREFIX_RECORD + payload, sig)
        verify_rate = len(pairs) / (time.perf_counter() - started)
        assert target.count() == len(envelopes) + 2
    return {
        "records": len(envelopes),
        "figures": [
            {
                "name": "ingest, one transaction per record",
                "value": ingest_rate,
                "baseline": verify_rate,
                "unit": "records/s",
                "ratio": ingest_rate / verify_rate,
            }
        ],
    }


def _genesis(keys: Any, clock: FixedClock) -> bytes:
    body = {
        "net": "cn-330481",
        "code": "330481",
        "name": "海宁市",
        "sign_pk": keys.sign_public,
        "curve_pk": keys.curve_public,
    }
    payload = Payload("cn-330481", kinds.NET_GENESIS, "330481", keys.kid, 1, ZERO_ID, clock.now(), body)
    return seal(payload, keys).envelope
