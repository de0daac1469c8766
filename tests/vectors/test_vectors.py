"""The record format is byte-exact against committed vectors, and they verify."""

from __future__ import annotations

import hashlib
import json

from nacl.signing import VerifyKey

from core.intake import Intake
from sync.record import kinds
from sync.record.envelope import PREFIX_RECORD, read_header, split
from tests.vectors.vectors import CENTRAL, FILE, TOWN, as_json, build


def test_vectors_are_byte_exact() -> None:
    committed = json.loads(FILE.read_text(encoding="utf-8"))
    assert as_json(build()) == committed


def test_vectors_verify_independently() -> None:
    """Checks written from the spec, not through the log: prefix, hash, signature."""
    committed = json.loads(FILE.read_text(encoding="utf-8"))["vectors"]
    signers = [CENTRAL, CENTRAL, TOWN, TOWN]
    for vector, signer in zip(committed, signers, strict=True):
        payload = bytes.fromhex(vector["payload"])
        sig = bytes.fromhex(vector["sig"])
        assert hashlib.sha256(PREFIX_RECORD + payload).hexdigest() == vector["id"]
        VerifyKey(signer.sign_public).verify(PREFIX_RECORD + payload, sig)
        assert split(bytes.fromhex(vector["envelope"])) == (payload, sig)
        header = read_header(payload)
        assert header.kid == hashlib.sha256(signer.sign_public).digest()[:8]
    assert bytes.fromhex(committed[0]["envelope"])[:1] == b"\x82"  # array of two


def test_the_intake_vector_with_files_passes_its_kind_check() -> None:
    """The body of the vector with scanned pages is one the record kinds accept."""
    name, record = build()[3]
    assert "scanned" in name
    kinds.check_body(record.kind, record.body)
    assert len(Intake.from_body(record.body).files) == 2
