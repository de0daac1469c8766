"""Golden envelope vectors: fixed keys, fixed clock, byte-exact output.

``python -m tests.vectors.vectors`` rewrites ``envelopes.json``; the test compares a fresh
build against the committed file, so any change to the wire format shows up as a diff
that must be made on purpose (and documented in docs/record-format.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sync.record import kinds
from sync.record.envelope import ZERO_ID, Payload, Record, seal
from sync.record.keys import NodeKeys

HERE = Path(__file__).parent
FILE = HERE / "envelopes.json"
NET = "cn-330481"
CENTRAL = NodeKeys(sign_seed=bytes(range(32)), curve_secret=bytes(range(32, 64)))
TOWN = NodeKeys(sign_seed=bytes(range(64, 96)), curve_secret=bytes(range(96, 128)))
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def build() -> list[tuple[str, Record]]:
    genesis = seal(
        Payload(
            net=NET,
            kind=kinds.NET_GENESIS,
            origin="330481",
            kid=CENTRAL.kid,
            seq=1,
            prev=ZERO_ID,
            ts=T0,
            body={
                "net": NET,
                "code": "330481",
                "name": "海宁市",
                "sign_pk": CENTRAL.sign_public,
                "curve_pk": CENTRAL.curve_public,
            },
            actor="sys:init",
        ),
        CENTRAL,
    )
    cert = seal(
        Payload(
            net=NET,
            kind=kinds.NODE_CERT,
            origin="330481",
            kid=CENTRAL.kid,
            seq=2,
            prev=genesis.id,
            ts=T0 + 60,
            body={
                "node": "330481104",
                "tier": "town",
                "parent": "330481",
                "name": "斜桥镇便民服务中心",
                "sign_pk": TOWN.sign_public,
                "curve_pk": TOWN.curve_public,
                "nbf": T0 + 60,
                "exp": T0 + 60 + 365 * 86_400,
                "request": b"",
            },
            actor="sys:enroll",
        ),
        CENTRAL,
    )
    enrolled = seal(
        Payload(
            net=NET,
            kind=kinds.NODE_ENROLLED,
            origin="330481104",
            kid=TOWN.kid,
            seq=1,
            prev=cert.id,
            ts=T0 + 120,
            body={"cert": cert.id, "software": "tongban 0.1.0"},
            refs={},
            actor="sys:enroll",
        ),
        TOWN,
    )
    intake = seal(
        Payload(
            net=NET,
            kind=kinds.CASE_INTAKE,
            origin="330481104",
            kid=TOWN.kid,
            seq=2,
            prev=enrolled.id,
            ts=T0 + 180,
            body={
                "case": "330481104-20260101-0001",
                "item": "GA-0001",
                "item_name": "居住证办理",
                "cat": 1,
                "mode": "direct",
                "decider": "330481104",
                "applicant": {
                    "name": "王秀英",
                    "doc_type": "resident_id",
                    "doc_no": "11010519491231002X",
                    "phone": "13800138000",
                },
                "materials": ["id_card"],
                "notes": "",
                "limit": 7,
                "deadline": "2026-01-12",
                "flags": [],
                # the scanned pages: the signature covers each page's hash
                "files": [
                    {
                        "sha256": bytes(range(32)),
                        "size": 251_904,
                        "type": "image/jpeg",
                        "material": "id_card",
                    },
                    {
                        "sha256": bytes(range(32, 64)),
                        "size": 88_412,
                        "type": "application/pdf",
                        "material": "id_card",
                    },
                ],
            },
            actor="wangli",
        ),
        TOWN,
    )
    return [
        ("genesis", genesis),
        ("town certificate", cert),
        ("town enrolled", enrolled),
        ("town case intake with two scanned pages", intake),
    ]


def as_json(records: list[tuple[str, Record]]) -> dict[str, Any]:
    return {
        "keys": {
            "central_sign_seed": CENTRAL.sign_seed.hex(),
            "town_sign_seed": TOWN.sign_seed.hex(),
            "central_kid": CENTRAL.kid.hex(),
            "town_kid": TOWN.kid.hex(),
        },
        "vectors": [
            {
                "name": name,
                "payload": record.payload_bytes.hex(),
                "sig": record.sig.hex(),
                "id": record.id.hex(),
                "envelope": record.envelope.hex(),
            }
            for name, record in records
        ],
    }


if __name__ == "__main__":
    FILE.write_text(json.dumps(as_json(build()), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
