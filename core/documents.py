"""Identity documents at intake: which kinds are accepted and whether a number is well formed.

This module owns the rules for checking an applicant's document number at the window,
offline, before a case is taken in. It checks structure, check characters, the birth date
and the region part; it cannot tell whether a document was really issued (that needs the
online verification platforms, which a village node often cannot reach).

Formats, and where each rule comes from
---------------------------------------
* **Resident ID card (居民身份证), 18 characters** — GB 11643-1999 公民身份号码: 6-digit
  address code (GB/T 2260), 8-digit birth date YYYYMMDD, 3-digit sequence (odd = male,
  even = female), and a check character by ISO 7064 MOD 11-2 (weights 7 9 10 5 8 4 2 1 6 3
  7 9 10 5 8 4 2; remainder 0…10 → ``1 0 X 9 8 7 6 5 4 3 2``). The standard's own example is
  ``11010519491231002X``. Address codes starting 81/82/83 are residence permits for Hong
  Kong, Macao and Taiwan residents, never resident IDs.
* **Legacy resident ID, 15 digits** — GB 11643-1989: 6-digit address code, YYMMDD (always
  19YY), 3-digit sequence; no check digit.
* **Residence permit for Hong Kong, Macao and Taiwan residents (港澳台居民居住证)** —
  issued since 2018-09 in the resident-ID number format with the address code fixed to
  810000 (Hong Kong), 820000 (Macao) or 830000 (Taiwan), same check character.
* **Foreigner's permanent residence ID card (外国人永久居留身份证)**, two number formats:

  - *15 characters* (the 2004 card and the 2017 card, which kept the 2004 numbering):
    3-letter nationality code (ISO 3166-1 alpha-3) + 4-digit acceptance-place code
    (province and city digits of GB/T 2260) + birth date YYMMDD + 2 final characters.
    Sources: the National Immigration Administration (NIA) adaptation notice for the 2023
    card, which describes the old number as "3 位拉丁字母 + 12 位数字", and two independent
    public implementations (github.com/xiahaimoyu credentialkit,
    ForeignerPermanentResidenceIdNumberProcessor; a 2024 test-data generator
    "18位外国人永久居留证.py") that agree on the 3 + 4 + 6 + 1 + 1 split and on a check digit
    computed with ICAO 9303 weights 7-3-1 mod 10 over the first 14 characters. No official
    text for that check digit, nor for the meaning of the 14th character, could be found,
    so this module does **not** enforce the last two characters and does not report a sex
    for this format: refusing a genuine card at the window is worse than missing a typo
    there. What is checked: letters, digits, the acceptance place's province part, and
    that the date is real. The year has no century; it is read as 20YY when that is not
    after ``today``, else 19YY (a wrong century only affects the reported birth date).
  - *18 digits beginning with "9"* (the 2023 card, issued from 2023-12-01): "9" (the
    foreigner marker; citizens' numbers begin 1–8) + 2-digit province of acceptance +
    3-digit numeric nationality code (ISO 3166-1 numeric) + birth date YYYYMMDD + 3-digit
    sequence + MOD 11-2 check character. Source: NIA, 新版外国人永久居留身份证适配性改造要点
    (2023), as reproduced by card-reader vendors (e.g. eastcoms.com, 2023-10-20): 15
    characters become 18 (17 digits + 1 check character), the alpha-3 nationality becomes
    a numeric code, the first digit is 9, the check character is MOD 11-2 "与公民身份号码
    校验方式相同". The field split is from the public implementations above, and agrees
    with the notice's table 1 examples as quoted by third-party validators (hutool's
    IdcardUtilTest uses the first): ``932682198501010017`` (Saudi Arabia 682, accepted in
    Jiangsu 32, born 1985-01-01, male) and ``911124198108030024`` (Canada 124, Beijing 11,
    1981-08-03, female). Reading the sex from the 17th digit (odd = male, as in GB 11643)
    agrees with both examples but was not read in the notice itself.

* **Unified social credit code (统一社会信用代码)** of an enterprise or organisation applicant
  — GB 32100-2015: 18 characters of ``0-9`` and the capitals without I, O, Z, S, V (31
  symbols, valued 0–30 in that order): the registration authority (1 机构编制, 2 外交, 3 司法行政,
  4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 工商/市场监管, A 中央军委改革和编制办公室, N 农业,
  Y 其他), the kind of body, the 6-digit address code of where it registered (GB/T 2260),
  the 9-character body identifier (GB 11714) and a check character: the value that makes
  the weighted sum (weights 3^i mod 31) a multiple of 31. Checked against published codes:
  the standard's example 91350100M000100Y43, 91440300708461136T (Tencent, Shenzhen),
  914403001922038216 (Huawei), 91330100799655058B (Alibaba China, Hangzhou),
  91110000802100433B (Baidu, Beijing). The body identifier's own GB 11714 check digit is
  not checked: codes issued to bodies that never had an organisation code need not keep it.

  Descriptions also circulate of a 2017 card numbered "9…" and a 2023 card numbered
  "Y…"; no source found supports either. The NIA notice says the 2023 card replaced the
  15-character number of the 2017 card with the 18-digit "9…" number. No "Y…" format
  is accepted.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from core.admin import PROVINCE_CODES
from core.errors import ErrorCode, InputError

Sex = Literal["M", "F"]

EARLIEST_BIRTH = dt.date(1900, 1, 1)

# Hong Kong, Macao, Taiwan: residence-permit prefixes, never resident-ID address codes.
_HMT_PROVINCES = frozenset({"81", "82", "83"})
_HMT_REGIONS = frozenset({"810000", "820000", "830000"})
# Mainland provinces: where a foreigner's card can be accepted and a citizen registered.
_MAINLAND_PROVINCES = PROVINCE_CODES - {"71", "81", "82"}

_MOD11_2_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_MOD11_2_CHARS = "10X98765432"

_ID18 = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS15 = re.compile(r"[0-9]{15}")
_FPR_LEGACY = re.compile(r"[A-Z]{3}[0-9]{12}")

# Full-width forms that Chinese input methods produce; mapped to ASCII before checking.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_SPACES = re.compile(r"[\s\u3000]+")


class DocType(StrEnum):
    """Accepted identity documents; the value is what records carry."""

    RESIDENT_ID = "resident_id"
    RESIDENT_ID_15 = "resident_id_15"
    HMT_PERMIT = "hmt_residence_permit"
    FOREIGN_PR = "foreign_permanent_residence"
    USCC = "uscc"  # an enterprise's or organisation's 统一社会信用代码, not a person's document

    @property
    def personal(self) -> bool:
        """Whether the document is a person's (an enterprise applies under its credit code)."""
        return self is not DocType.USCC

    @property
    def zh(self) -> str:
        """The Chinese name printed on receipts."""
        return _DOC_LABELS[self][0]

    @property
    def en(self) -> str:
        """The English name."""
        return _DOC_LABELS[self][1]

    def label(self, lang: str = "zh") -> str:
        """The name in ``lang`` ("zh" or "en")."""
        return self.en if lang == "en" else self.zh


_DOC_LABELS: dict[DocType, tuple[str, str]] = {
    DocType.RESIDENT_ID: ("居民身份证", "Resident identity card"),
    DocType.RESIDENT_ID_15: ("居民身份证（15位旧号码）", "Resident identity card (legacy 15-digit number)"),
    DocType.HMT_PERMIT: (
        "港澳台居民居住证",
        "Residence permit for Hong Kong, Macao and Taiwan residents",
    ),
    DocType.FOREIGN_PR: ("外国人永久居留身份证", "Foreigner's permanent residence ID card"),
    DocType.USCC: ("统一社会信用代码", "Unified social credit code"),
}

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC = re.compile(f"[{_USCC_CHARS}]{{18}}")
_USCC_AUTHORITIES = frozenset("123456789ANY")


@dataclass(frozen=True)
class Document:
    """A checked document number and what it tells about the holder.

    ``region`` is the 6-digit address code (resident IDs), 810000/820000/830000 (HMT
    permits), or the acceptance place padded to 6 digits (foreigners' cards).
    ``nationality`` is set for foreigners' cards only: alpha-3 letters on the 15-character
    number, the numeric code on the 2023 number.
    """

    doc_type: DocType
    number: str
    birth_date: dt.date | None
    sex: Sex | None
    region: str | None
    nationality: str | None = None


def parse_doc_type(text: str) -> DocType:
    """The document type named by ``text``; ``E_ID_TYPE_UNKNOWN`` otherwise."""
    try:
        return DocType(text)
    except ValueError:
        raise InputError(
            ErrorCode.ID_TYPE_UNKNOWN, detail=f"document type {text!r}", zh="请选择证件类型", field="doc_type"
        ) from None


def normalize_number(number: str) -> str:
    """The number as stored: full-width forms made ASCII, spaces removed, letters upper-case."""
    return _SPACES.sub("", number.translate(_FULLWIDTH)).upper()


def mod11_2_check_char(body17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for 17 digits (GB 11643-1999)."""
    total = sum(int(c) * w for c, w in zip(body17, _MOD11_2_WEIGHTS, strict=True))
    return _MOD11_2_CHARS[total % 11]


def validate_document(doc_type: DocType | str, number: str, today: dt.date) -> Document:
    """Check ``number`` as a document of ``doc_type``; ``today`` bounds the birth date.

    Raises ``InputError`` with ``E_ID_TYPE_UNKNOWN``, ``E_ID_FORMAT``, ``E_ID_CHECKSUM``,
    ``E_ID_BIRTHDATE`` or ``E_ID_REGION``; the detail says which part is wrong.
    """
    kind = doc_type if isinstance(doc_type, DocType) else parse_doc_type(doc_type)
    if not isinstance(number, str):
        raise InputError(ErrorCode.ID_FORMAT, detail=f"{kind.value}: the number must be text", field="doc_no")
    clean = normalize_number(number)
    if kind is DocType.RESIDENT_ID:
        return _resident_id(clean, today)
    if kind is DocType.RESIDENT_ID_15:
        return _resident_id_15(clean, today)
    if kind is DocType.HMT_PERMIT:
        return _hmt_permit(clean, today)
    if kind is DocType.USCC:
        return _uscc(clean)
    return _foreign_pr(clean, today)


def uscc_check_char(body17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a credit code."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[-total % 31]


def _uscc(number: str) -> Document:
    kind = DocType.USCC
    if len(number) != 18:
        raise _format_error(
            kind, number, f"has {len(number)} characters, needs 18", f"录入了{len(number)}位，应为18位"
        )
    if not _USCC.fullmatch(number):
        raise _format_error(
            kind,
            number,
            "uses a character outside 0-9 and A-Z without I, O, Z, S, V",
            "含有不用于信用代码的字符（I、O、Z、S、V等）",
        )
    if number[0] not in _USCC_AUTHORITIES:
        raise _format_error(
            kind,
            number,
            f"{number[0]!r} is no registration authority",
            f"第1位“{number[0]}”不是登记管理部门代码",
        )
    want = uscc_check_char(number[:17])
    if number[17] != want:
        raise InputError(
            ErrorCode.ID_CHECKSUM,
            detail=f"{kind.value} {number!r}: check character is {number[17]!r}, the code gives {want!r}",
            zh=f"按前17位计算，最后一位应为“{want}”，录入的是“{number[17]}”",
            field="doc_no",
        )
    if number[2:4] not in PROVINCE_CODES:
        raise _region_error(kind, number, number[2:4])
    return Document(kind, number, None, None, number[2:8])


def _format_error(kind: DocType, number: str, rule: str, zh: str) -> InputError:
    return InputError(ErrorCode.ID_FORMAT, detail=f"{kind.value} {number!r}: {rule}", zh=zh, field="doc_no")


def _real_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _birth_date(kind: DocType, number: str, yyyymmdd: str, today: dt.date) -> dt.date:
    born = _real_date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    if born is None:
        raise InputError(
            ErrorCode.ID_BIRTHDATE,
            detail=f"{kind.value} {number!r}: {yyyymmdd} is not a date",
            zh=f"{yyyymmdd}不是真实的日期",
            field="doc_no",
        )
    if born < EARLIEST_BIRTH:
        raise InputError(
            ErrorCode.ID_BIRTHDATE,
            detail=f"{kind.value} {number!r}: birth date {born.isoformat()} is before 1900-01-01",
            zh=f"出生日期{born.isoformat()}早于1900年1月1日",
            field="doc_no",
        )
    if born > today:
        raise InputError(
            ErrorCode.ID_BIRTHDATE,
            detail=f"{kind.value} {number!r}: birth date {born.isoformat()} is after {today.isoformat()}",
            zh=f"出生日期{born.isoformat()}晚于今天",
            field="doc_no",
        )
    return born


def _check_char(kind: DocType, number: str) -> None:
    want = mod11_2_check_char(number[:17])
    if number[17] != want:
        raise InputError(
            ErrorCode.ID_CHECKSUM,
            detail=f"{kind.value} {number!r}: check character is {number[17]!r}, the digits give {want!r}",
            zh=f"按前17位计算，最后一位应为“{want}”，录入的是“{number[17]}”",
            field="doc_no",
        )


def _sex(sequence_digit: str) -> Sex:
    return "M" if int(sequence_digit) % 2 == 1 else "F"


def _gb11643(kind: DocType, number: str, today: dt.date) -> dt.date:
    # The shared 18-character layout: format, then check character, then birth date, so
    # a typo anywhere is reported as a typo before its consequences are.
    if len(number) != 18:
        raise _format_error(
            kind, number, f"has {len(number)} characters, needs 18", f"录入了{len(number)}位，应为18位"
        )
    if not _ID18.fullmatch(number):
        raise _format_error(
            kind, number, "needs 17 digits followed by a digit or X", "应为17位数字加1位数字或X"
        )
    _check_char(kind, number)
    return _birth_date(kind, number, number[6:14], today)


def _resident_id(number: str, today: dt.date) -> Document:
    kind = DocType.RESIDENT_ID
    if _DIGITS15.fullmatch(number):
        # The commonest slip at the window: the wrong type picked for a right number.
        raise _format_error(
            kind,
            number,
            f"has 15 digits; for a legacy number choose {DocType.RESIDENT_ID_15.value}",
            f"这是15位旧号码，请在证件类型中选择“{DocType.RESIDENT_ID_15.zh}”",
        )
    born = _gb11643(kind, number, today)
    province = number[:2]
    if number.startswith("9"):
        raise InputError(
            ErrorCode.ID_REGION,
            detail=f"{kind.value} {number!r}: a number beginning with 9 is a foreigner's permanent residence "
            f"card; choose {DocType.FOREIGN_PR.value}",
            zh=f"以9开头的是外国人永久居留身份证号码，请在证件类型中选择“{DocType.FOREIGN_PR.zh}”",
            field="doc_type",
        )
    if province in _HMT_PROVINCES:
        raise InputError(
            ErrorCode.ID_REGION,
            detail=f"{kind.value} {number!r}: {number[:6]} is the prefix of a Hong Kong/Macao/Taiwan "
            f"residence permit; choose {DocType.HMT_PERMIT.value}",
            zh=f"{number[:6]}开头的是港澳台居民居住证号码，请在证件类型中选择“{DocType.HMT_PERMIT.zh}”",
            field="doc_type",
        )
    if province not in PROVINCE_CODES:
        raise _region_error(kind, number, province)
    return Document(kind, number, born, _sex(number[16]), number[:6])


def _region_error(kind: DocType, number: str, province: str) -> InputError:
    return InputError(
        ErrorCode.ID_REGION,
        detail=f"{kind.value} {number!r}: {province!r} is not a province-level code",
        zh=f"前两位“{province}”不是省级行政区划代码",
        field="doc_no",
    )


def _resident_id_15(number: str, today: dt.date) -> Document:
    kind = DocType.RESIDENT_ID_15
    if not _DIGITS15.fullmatch(number):
        raise _format_error(kind, number, "needs exactly 15 digits", "旧号码应为15位数字")
    province = number[:2]
    if province not in PROVINCE_CODES or province in _HMT_PROVINCES:
        raise _region_error(kind, number, province)
    # GB 11643-1989 numbers carry no century; every one was issued to someone born in 19YY.
    born = _birth_date(kind, number, "19" + number[6:12], today)
    return Document(kind, number, born, _sex(number[14]), number[:6])


def _hmt_permit(number: str, today: dt.date) -> Document:
    kind = DocType.HMT_PERMIT
    born = _gb11643(kind, number, today)
    if number[:6] not in _HMT_REGIONS:
        raise InputError(
            ErrorCode.ID_REGION,
            detail=f"{kind.value} {number!r}: must begin with 810000, 820000 or 830000, not {number[:6]}",
            zh=f"居住证号码应以810000、820000或830000开头，录入的是{number[:6]}",
            field="doc_no",
        )
    return Document(kind, number, born, _sex(number[16]), number[:6])


def _foreign_pr(number: str, today: dt.date) -> Document:
    kind = DocType.FOREIGN_PR
    if len(number) == 18:
        return _foreign_pr_2023(number, today)
    if len(number) == 15:
        return _foreign_pr_legacy(number, today)
    raise _format_error(
        kind,
        number,
        f"has {len(number)} characters, needs 15 (2004/2017 card) or 18 (2023 card)",
        f"录入了{len(number)}位，应为15位（2004、2017年版）或18位（2023年版）",
    )


def _foreign_pr_2023(number: str, today: dt.date) -> Document:
    kind = DocType.FOREIGN_PR
    if not number.startswith("9"):
        raise _format_error(
            kind,
            number,
            "an 18-character permanent residence number begins with 9",
            "18位的永久居留证号码以9开头",
        )
    born = _gb11643(kind, number, today)
    province = number[1:3]
    if province not in _MAINLAND_PROVINCES:
        raise InputError(
            ErrorCode.ID_REGION,
            detail=f"{kind.value} {number!r}: acceptance place {province!r} is not a mainland province code",
            zh=f"受理地代码“{province}”不是内地省级代码",
            field="doc_no",
        )
    return Document(kind, number, born, _sex(number[16]), province + "0000", nationality=number[3:6])


def _foreign_pr_legacy(number: str, today: dt.date) -> Document:
    kind = DocType.FOREIGN_PR
    if not _FPR_LEGACY.fullmatch(number):
        raise _format_error(
            kind,
            number,
            "a 15-character number is 3 letters followed by 12 digits",
            "15位号码应为3个字母加12位数字",
        )
    place = number[3:7]
    if place[:2] not in _MAINLAND_PROVINCES:
        raise InputError(
            ErrorCode.ID_REGION,
            detail=f"{kind.value} {number!r}: acceptance place {place!r} "
            "does not start with a mainland province code",
            zh=f"受理地代码“{place}”不以内地省级代码开头",
            field="doc_no",
        )
    yymmdd = number[7:13]
    # Prefer 20YY (children of permanent residents hold cards too) unless that is in the future.
    recent = _real_date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    century = "20" if recent is not None and recent <= today else "19"
    born = _birth_date(kind, number, century + yymmdd, today)
    # Digits 14–15 (sequence and check) are not checked: see the module docstring.
    return Document(kind, number, born, None, place + "00", nationality=number[:3])
