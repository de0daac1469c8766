"""Identity-document validation at intake."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.admin import PROVINCE_CODES
from core.documents import (
    DocType,
    Document,
    mod11_2_check_char,
    normalize_number,
    parse_doc_type,
    validate_document,
)
from core.errors import ErrorCode, InputError

TODAY = dt.date(2025, 11, 24)

# GB 11643-1999's own example (Beijing Chaoyang, 1949-12-31, female).
GB_EXAMPLE = "11010519491231002X"
# NIA, 新版外国人永久居留身份证适配性改造要点, table 1.
FPR_SAUDI = "932682198501010017"
FPR_CANADA = "911124198108030024"


def _with_check(body17: str) -> str:
    return body17 + mod11_2_check_char(body17)


def _error(doc_type: DocType | str, number: str, today: dt.date = TODAY) -> InputError:
    with pytest.raises(InputError) as exc:
        validate_document(doc_type, number, today)
    return exc.value


# -- resident ID, 18 characters --------------------------------------------------------


def test_standard_example_is_valid() -> None:
    doc = validate_document(DocType.RESIDENT_ID, GB_EXAMPLE, TODAY)
    assert doc == Document(DocType.RESIDENT_ID, GB_EXAMPLE, dt.date(1949, 12, 31), "F", "110105")


def test_number_is_normalized() -> None:
    doc = validate_document(DocType.RESIDENT_ID, " 110105 19491231 002x ", TODAY)
    assert doc.number == GB_EXAMPLE
    # Full-width digits and the ideographic space come from Chinese input methods.
    doc = validate_document("resident_id", "１１０１０５\u300019491231002ｘ", TODAY)
    assert doc.number == GB_EXAMPLE
    assert normalize_number("11010519491231002x") == GB_EXAMPLE


def test_check_character_algorithm() -> None:
    assert mod11_2_check_char(GB_EXAMPLE[:17]) == "X"
    assert mod11_2_check_char("44052418800101001") == "4"
    assert mod11_2_check_char(FPR_SAUDI[:17]) == "7"


def test_commonly_cited_1880_number_fails_only_on_the_1900_floor() -> None:
    # 440524188001010014 has a correct check digit, but a birth date before 1900-01-01.
    err = _error(DocType.RESIDENT_ID, "440524188001010014")
    assert err.code is ErrorCode.ID_BIRTHDATE
    assert "1880-01-01" in err.detail


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231012X",  # one digit changed
        "11010519491231002 1".replace(" ", ""),  # wrong check character
        "110105194912310020",
        "11010591491231002X",  # two digits swapped
    ],
)
def test_broken_variants_fail_the_checksum(number: str) -> None:
    err = _error(DocType.RESIDENT_ID, number)
    assert err.code is ErrorCode.ID_CHECKSUM
    assert "check character" in err.detail


@pytest.mark.parametrize(
    ("birth", "why"),
    [
        ("19490230", "not a date"),  # 30 February
        ("19491301", "not a date"),  # month 13
        ("19000229", "not a date"),  # 1900 was not a leap year
        ("20251125", "after"),  # the day after TODAY
        ("20991231", "after"),
        ("18991231", "before 1900"),
    ],
)
def test_impossible_birth_dates(birth: str, why: str) -> None:
    err = _error(DocType.RESIDENT_ID, _with_check("110105" + birth + "002"))
    assert err.code is ErrorCode.ID_BIRTHDATE
    assert why in err.detail


def test_birth_date_boundaries_are_inclusive() -> None:
    born_today = _with_check("110105" + TODAY.strftime("%Y%m%d") + "001")
    assert validate_document(DocType.RESIDENT_ID, born_today, TODAY).birth_date == TODAY
    first = _with_check("11010519000101001")
    assert validate_document(DocType.RESIDENT_ID, first, TODAY).birth_date == dt.date(1900, 1, 1)
    leap = _with_check("11010520000229001")
    assert validate_document(DocType.RESIDENT_ID, leap, TODAY).sex == "M"


@pytest.mark.parametrize("prefix", ["390105", "100105", "730105", "000000"])
def test_unknown_province_is_a_region_error(prefix: str) -> None:
    err = _error(DocType.RESIDENT_ID, _with_check(prefix + "19491231002"))
    assert err.code is ErrorCode.ID_REGION
    assert repr(prefix[:2]) in err.detail


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_hmt_permit_entered_as_resident_id_says_so(prefix: str) -> None:
    err = _error(DocType.RESIDENT_ID, _with_check(prefix + "19900101001"))
    assert err.code is ErrorCode.ID_REGION
    assert DocType.HMT_PERMIT.value in err.detail


@pytest.mark.parametrize(
    "number",
    [
        "",
        "1101051949123100",
        "11010519491231002XX",
        "1101051949123100XX",
        "11010519491231002Y",
        "X1010519491231002",
    ],
)
def test_bad_length_or_characters_are_format_errors(number: str) -> None:
    assert _error(DocType.RESIDENT_ID, number).code is ErrorCode.ID_FORMAT


def test_wrong_type_for_a_right_number_names_the_right_type() -> None:
    err = _error(DocType.RESIDENT_ID, "110105491231002")
    assert err.code is ErrorCode.ID_FORMAT
    assert DocType.RESIDENT_ID_15.value in err.detail
    err = _error(DocType.RESIDENT_ID, FPR_SAUDI)
    assert err.code is ErrorCode.ID_REGION
    assert DocType.FOREIGN_PR.value in err.detail


def test_non_ascii_digits_are_format_errors() -> None:
    # Arabic-Indic digits pass str.isdigit(); they must not pass here.
    assert _error(DocType.RESIDENT_ID, "١١٠١٠٥19491231002X").code is ErrorCode.ID_FORMAT


# -- legacy 15-digit resident ID -------------------------------------------------------


def test_legacy_15_digit_number() -> None:
    doc = validate_document(DocType.RESIDENT_ID_15, "110105491231002", TODAY)
    assert doc == Document(DocType.RESIDENT_ID_15, "110105491231002", dt.date(1949, 12, 31), "F", "110105")
    assert validate_document(DocType.RESIDENT_ID_15, "330481650101013", TODAY).sex == "M"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("110105490230002", ErrorCode.ID_BIRTHDATE),
        ("110105491331002", ErrorCode.ID_BIRTHDATE),
        ("990105491231002", ErrorCode.ID_REGION),
        ("810000491231002", ErrorCode.ID_REGION),
        ("11010549123100", ErrorCode.ID_FORMAT),
        ("11010549123100X", ErrorCode.ID_FORMAT),
        (GB_EXAMPLE, ErrorCode.ID_FORMAT),
    ],
)
def test_legacy_15_digit_errors(number: str, code: ErrorCode) -> None:
    assert _error(DocType.RESIDENT_ID_15, number).code is code


# -- residence permit for Hong Kong, Macao and Taiwan residents -------------------------


@pytest.mark.parametrize("prefix", ["810000", "820000", "830000"])
def test_hmt_permit(prefix: str) -> None:
    number = _with_check(prefix + "19900101001")
    doc = validate_document(DocType.HMT_PERMIT, number, TODAY)
    assert (doc.region, doc.birth_date, doc.sex) == (prefix, dt.date(1990, 1, 1), "M")


@pytest.mark.parametrize("prefix", ["810001", "440000", "110105", "710000"])
def test_hmt_permit_needs_its_prefix(prefix: str) -> None:
    err = _error(DocType.HMT_PERMIT, _with_check(prefix + "19900101001"))
    assert err.code is ErrorCode.ID_REGION
    assert "810000" in err.detail


def test_hmt_permit_checksum_and_date() -> None:
    good = _with_check("81000019900101001")
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")
    assert _error(DocType.HMT_PERMIT, bad_check).code is ErrorCode.ID_CHECKSUM
    assert _error(DocType.HMT_PERMIT, _with_check("82000019900231001")).code is ErrorCode.ID_BIRTHDATE


# -- foreigner's permanent residence ID card --------------------------------------------


def test_2023_card_official_examples() -> None:
    saudi = validate_document(DocType.FOREIGN_PR, FPR_SAUDI, TODAY)
    assert saudi == Document(DocType.FOREIGN_PR, FPR_SAUDI, dt.date(1985, 1, 1), "M", "320000", "682")
    canada = validate_document(DocType.FOREIGN_PR, FPR_CANADA, TODAY)
    assert canada == Document(DocType.FOREIGN_PR, FPR_CANADA, dt.date(1981, 8, 3), "F", "110000", "124")


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("932682198501010018", ErrorCode.ID_CHECKSUM),  # wrong check character
        ("932682198501010107", ErrorCode.ID_CHECKSUM),  # a sequence digit changed
        ("832682198501010017", ErrorCode.ID_FORMAT),  # not beginning with 9
        ("9326821985010100X7", ErrorCode.ID_FORMAT),  # a letter inside
        ("93268219850101001", ErrorCode.ID_FORMAT),  # 17 characters
        ("Y32682198501010017", ErrorCode.ID_FORMAT),  # no "Y" format exists
        (_with_check("99668219850101001"), ErrorCode.ID_REGION),  # province 96
        (_with_check("97168219850101001"), ErrorCode.ID_REGION),  # 71: not a mainland acceptance place
        (_with_check("93268219850230001"), ErrorCode.ID_BIRTHDATE),  # 30 February
        (_with_check("93268220260101001"), ErrorCode.ID_BIRTHDATE),  # in the future
    ],
)
def test_2023_card_errors(number: str, code: ErrorCode) -> None:
    assert _error(DocType.FOREIGN_PR, number).code is code


def test_legacy_card_structure_and_date() -> None:
    doc = validate_document(DocType.FOREIGN_PR, "CAN110081080312", TODAY)
    assert doc == Document(DocType.FOREIGN_PR, "CAN110081080312", dt.date(1981, 8, 3), None, "110000", "CAN")
    # Lower case is normalized; a 20YY date not after today is read as 20YY (a child's card).
    child = validate_document(DocType.FOREIGN_PR, "usa310115060645", TODAY)
    assert (child.number, child.birth_date, child.region) == (
        "USA310115060645",
        dt.date(2015, 6, 6),
        "310100",
    )
    # ...and one after today as 19YY.
    assert validate_document(DocType.FOREIGN_PR, "DEU440126033099", TODAY).birth_date == dt.date(1926, 3, 30)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("CAN110081023012", ErrorCode.ID_BIRTHDATE),  # 30 February
        ("CAN110081130112", ErrorCode.ID_BIRTHDATE),  # month 13
        ("CAN990081080312", ErrorCode.ID_REGION),
        ("CAN810081080312", ErrorCode.ID_REGION),  # Hong Kong is no acceptance place
        ("CA1110081080312", ErrorCode.ID_FORMAT),
        ("CAN11008108031X", ErrorCode.ID_FORMAT),
        ("CAN1100810803123", ErrorCode.ID_FORMAT),  # 16 characters
        ("CAN11008108031", ErrorCode.ID_FORMAT),  # 14 characters
    ],
)
def test_legacy_card_errors(number: str, code: ErrorCode) -> None:
    assert _error(DocType.FOREIGN_PR, number).code is code


# -- document types ---------------------------------------------------------------------


def test_unknown_document_type() -> None:
    err = _error("passport", "E12345678")
    assert err.code is ErrorCode.ID_TYPE_UNKNOWN
    assert "passport" in err.detail
    with pytest.raises(InputError):
        parse_doc_type("RESIDENT_ID")


def test_doc_type_labels() -> None:
    assert DocType.RESIDENT_ID.zh == "居民身份证"
    assert DocType.HMT_PERMIT.label() == "港澳台居民居住证"
    assert DocType.FOREIGN_PR.label("en") == "Foreigner's permanent residence ID card"
    assert all(d.zh and d.en for d in DocType)
    assert DocType.HMT_PERMIT.value == "hmt_residence_permit"


def test_error_detail_names_the_type_and_number() -> None:
    err = _error(DocType.RESIDENT_ID, "11010519491231012X")
    assert "resident_id" in err.detail and "11010519491231012X" in err.detail
    assert err.render("en").startswith("E_ID_CHECKSUM:")


# -- properties -------------------------------------------------------------------------

_mainland = sorted(PROVINCE_CODES - {"81", "82"})


@st.composite
def resident_ids(draw: st.DrawFn) -> tuple[str, dt.date, str]:
    region = draw(st.sampled_from(_mainland)) + draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY))
    seq = draw(st.integers(0, 999))
    return _with_check(f"{region}{born:%Y%m%d}{seq:03d}"), born, "M" if seq % 2 else "F"


@given(resident_ids())
def test_generated_resident_ids_validate(case: tuple[str, dt.date, str]) -> None:
    number, born, sex = case
    doc = validate_document(DocType.RESIDENT_ID, number, TODAY)
    assert (doc.number, doc.birth_date, doc.sex, doc.region) == (number, born, sex, number[:6])


@given(resident_ids(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_change_is_caught_by_the_checksum(
    case: tuple[str, dt.date, str], position: int, delta: int
) -> None:
    number = case[0]
    changed = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert _error(DocType.RESIDENT_ID, changed).code is ErrorCode.ID_CHECKSUM


@given(resident_ids(), st.integers(0, 15))
def test_any_adjacent_swap_is_caught_by_the_checksum(case: tuple[str, dt.date, str], position: int) -> None:
    number = case[0]
    a, b = number[position], number[position + 1]
    if a == b:
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert _error(DocType.RESIDENT_ID, swapped).code is ErrorCode.ID_CHECKSUM
