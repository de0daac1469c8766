"""File refs in record bodies: the field is absent when empty, strict when present."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest

from core.cases import CaseEvent, Event
from core.catalog import Mode
from core.documents import DocType
from core.errors import ErrorCode, InputError, RecordError
from core.files import (
    DECISION_MATERIAL,
    MAX_CASE_FILE_BYTES,
    MAX_FILE_BYTES,
    MAX_FILES_PER_RECORD,
    PDF,
    FileRef,
    check_case_total,
    refs_from_body,
    refs_to_body,
)
from core.intake import Applicant, Intake
from sync.record import kinds

SHA_A = hashlib.sha256(b"page a").digest()
SHA_B = hashlib.sha256(b"page b").digest()
REF_A = FileRef(SHA_A, 1234, "image/jpeg", "id_card")
REF_B = FileRef(SHA_B, 99, PDF, "application_form")


def intake(files: tuple[FileRef, ...] = ()) -> Intake:
    return Intake(
        case="330481104201-20261123-0001",
        item="GA-0001",
        item_name="居住证办理",
        cat=3,
        mode=Mode.PROXY,
        decider="330481104",
        applicant=Applicant("王秀英", DocType.RESIDENT_ID, "11010519491231002X", "13800138000"),
        materials=("id_card", "application_form"),
        notes="",
        limit=7,
        deadline=date(2026, 12, 2),
        files=files,
    )


def test_an_intake_without_files_has_the_body_it_always_had() -> None:
    assert "files" not in intake().to_body()
    assert Intake.from_body(intake().to_body()) == intake()


def test_an_intake_with_files_lists_them_in_page_order_and_reads_back() -> None:
    body = intake((REF_B, REF_A)).to_body()
    assert body["files"] == [
        {"sha256": SHA_B, "size": 99, "type": PDF, "material": "application_form"},
        {"sha256": SHA_A, "size": 1234, "type": "image/jpeg", "material": "id_card"},
    ]
    assert Intake.from_body(body).files == (REF_B, REF_A)
    kinds.check_body(kinds.CASE_INTAKE, body)


@pytest.mark.parametrize(
    "files",
    [
        [],
        "x",
        [{"sha256": SHA_A, "size": 1, "type": "image/jpeg"}],
        [{"sha256": SHA_A[:31], "size": 1, "type": "image/jpeg", "material": "m"}],
        [{"sha256": SHA_A, "size": 0, "type": "image/jpeg", "material": "m"}],
        [{"sha256": SHA_A, "size": True, "type": "image/jpeg", "material": "m"}],
        [{"sha256": SHA_A, "size": MAX_FILE_BYTES + 1, "type": "image/jpeg", "material": "m"}],
        [{"sha256": SHA_A, "size": 1, "type": "image/gif", "material": "m"}],
        [{"sha256": SHA_A, "size": 1, "type": "image/jpeg", "material": ""}],
        [{"sha256": SHA_A, "size": 1, "type": "image/jpeg", "material": "m", "name": "x.jpg"}],
        [REF_A.to_body(), REF_A.to_body()],
        [FileRef(bytes([i]) * 32, 1, PDF, "m").to_body() for i in range(MAX_FILES_PER_RECORD + 1)],
        [FileRef(bytes([i]) * 32, MAX_FILE_BYTES, PDF, "m").to_body() for i in range(5)],
    ],
)
def test_a_bad_files_field_is_refused_as_a_schema_fault(files: Any) -> None:
    body = intake().to_body() | {"files": files}
    with pytest.raises(RecordError) as err:
        kinds.check_body(kinds.CASE_INTAKE, body)
    assert err.value.code is ErrorCode.SCHEMA
    with pytest.raises(RecordError):
        refs_from_body(files)


def test_a_supplement_and_a_decision_carry_files() -> None:
    case = {"case": "330481104201-20261123-0001"}
    for event in (
        CaseEvent(Event.SUPPLY, 10, files=(REF_A,)),
        CaseEvent(Event.APPROVE, 10, files=(FileRef(SHA_B, 5, PDF, DECISION_MATERIAL),)),
        CaseEvent(Event.REJECT, 10, reason="材料不全", files=(REF_B,)),
    ):
        body = event.to_body()
        assert body["files"] == refs_to_body(event.files)
        assert CaseEvent.from_body(body) == event
        kinds.check_body(kinds.CASE_EVENT, case | body)


def test_an_event_without_files_has_the_body_it_always_had() -> None:
    assert CaseEvent(Event.FORWARD, 10).to_body() == {
        "event": "forward",
        "at": 10,
        "reason": "",
        "missing": [],
    }


@pytest.mark.parametrize("event", ["forward", "request_supplement", "deliver", "withdraw", "rate"])
def test_files_on_any_other_event_are_refused(event: str) -> None:
    body: dict[str, Any] = {
        "case": "330481104201-20261123-0001",
        "event": event,
        "at": 10,
        "reason": "理由",
        "missing": [],
        "files": refs_to_body([REF_A]),
    }
    body |= {"deliver": {"delivery": "pickup"}, "rate": {"rating": 5}}.get(event, {})
    with pytest.raises(RecordError) as err:
        kinds.check_body(kinds.CASE_EVENT, body)
    assert err.value.code is ErrorCode.SCHEMA


def test_a_case_may_hold_files_up_to_its_cap_and_no_more() -> None:
    half = MAX_CASE_FILE_BYTES // 2
    held = [FileRef(SHA_A, half, PDF, "m")]
    check_case_total(held, [FileRef(SHA_B, half, PDF, "m")])
    check_case_total(held, held)  # the same file again counts once
    with pytest.raises(InputError) as err:
        check_case_total(held, [FileRef(SHA_B, half + 1, PDF, "m")])
    assert err.value.code is ErrorCode.FILE_CASE_TOO_LARGE
