"""Intake (受理): the rules a clerk's form passes before a case exists.

This module owns the checks of an intake form (applicant, ID document, phone, item,
materials, field lengths), the one-time notice (一次性告知) listing every missing
required material, the case number, routing (which node decides), and the body of a
``case.intake`` record. It does no I/O: the caller passes today's date, the catalog item,
the authorization verdict and the next free serial number.

A case number is unique without the network: the intake node's code, the local date and
a serial that only this node hands out, ``330481107201-20261123-0007``. Because the code
comes first, the number also says which subtree the case belongs to (:func:`case_node`).

Body of a ``case.intake`` record (canonical CBOR, text keys)::

    {"case": tstr, "item": tstr, "item_name": tstr, "cat": uint,
     "mode": "direct" | "proxy", "decider": tstr,
     "grant": bstr(32) | absent,
     "applicant": {"name": tstr, "doc_type": tstr, "doc_no": tstr, "phone": tstr},
     "materials": [tstr, ...],       # codes of the materials received, catalog order
     "notes": tstr, "limit": uint,   # time limit in working days (0: done on the spot)
     "deadline": tstr,               # YYYY-MM-DD
     "flags": [tstr, ...],           # e.g. E_GRANT_EXPIRED, E_CATALOG_STALE, calendar_estimated
     ? "agent": {"name": tstr, "doc_type": tstr, "doc_no": tstr, "phone": tstr},
     ? "extra": {code: tstr, ...},   # the item's extra fields, as checked
     ? "files": [file ref, ...],     # the scanned pages, in page order (core.files)
     ? "owner": tstr,                # 异地代收: the net of the city whose item this is
     ? "carried": carried,           # the owning city's intake: the other city's, byte for byte
     ? "parts": [part, ...]}         # 多地联办: the other cities' parts (core.parts)

The keys marked ``?`` are present exactly when not empty, so an intake without an agent,
extra fields or files has the body it always had.

**The applicant** is a person (an ID document) or, for an enterprise or organisation, the
body itself under its unified social credit code (``doc_type`` ``uscc``; its name may
have digits). **An agent** (代办人, or an enterprise's 经办人) is the person at the window on
the applicant's behalf: a person with an ID document, and the authorization
(:data:`AGENT_AUTHORIZATION`, 授权委托书) becomes a required material of the case. An
enterprise always applies through one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.carried import Carried
from core.catalog import Item, Material, Mode
from core.documents import DocType, validate_document
from core.errors import ErrorCode, InputError, TongbanError
from core.files import FileRef, refs_from_body, refs_to_body
from core.parts import Part, parts_from_body

MAX_NAME = 50
MAX_NOTES = 500
MAX_REASON = 500
MAX_DOC_NO = 30
MAX_PHONE = 20
MAX_ENTERPRISE_NAME = 100  # 浙江省海宁市某某有限公司第一分公司 and longer
CASE_NUMBER = re.compile(r"(?P<node>[0-9]{6,12})-(?P<day>[0-9]{8})-(?P<serial>[0-9]{4,6})")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"0[1-9][0-9]{1,2}-?[2-9][0-9]{6,7}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Characters that show nothing, or move text around, in a name someone typed: control
# characters (CR, LF, TAB …), format characters (U+202E and the other bidi controls,
# zero-width ones), line and paragraph separators, and halves of a surrogate pair (which
# cannot be stored). Private-use and not-yet-assigned code points stay allowed: rare
# characters in names (生僻字) live there, as do CJK compatibility ideographs, untouched.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
NAME_LABELS = {
    "name": ("姓名", "the name"),
    "agent_name": ("代办人姓名", "the agent's name"),
    "display name": ("显示名", "the display name"),
    "center name": ("中心名称", "the center's name"),
}
"""The names a person types, with how a message calls each: (Chinese, English)."""

FIELD_LABELS: dict[str, str] = {
    "item": "事项",
    "name": "姓名",
    "doc_type": "证件类型",
    "doc_no": "证件号码",
    "phone": "联系电话",
    "notes": "备注",
    "reason": "理由",
    "missing": "需补正的材料",
    "q": "搜索内容",
    "agent_name": "代办人姓名",
    "agent_doc_no": "代办人证件号码",
    "agent_phone": "代办人联系电话",
    "agent_doc_type": "代办人证件类型",
}
"""How a Chinese message names a form field (a clerk reads it; the English detail names the
field by its key)."""

AGENT_AUTHORIZATION = Material(
    "agent_authorization",
    "授权委托书",
    required=True,
    original=True,
    note="代办人或经办人办理时提供，写明委托事项并由申请人签字或盖章",
    name_en="Letter of authorization",
)
"""The material an agent brings for the applicant, required whenever one applies."""

CALENDAR_ESTIMATED = "calendar_estimated"
"""Flag: the deadline falls in a year with no published holiday schedule."""


def case_number(node: str, day: date, serial: int) -> str:
    """The case number for the ``serial``-th intake of ``day`` at ``node``."""
    if not 1 <= serial <= 999_999:
        raise InputError(ErrorCode.FIELD_INVALID, f"case serial {serial} out of range")
    return f"{node}-{day:%Y%m%d}-{serial:04d}"


def case_node(number: str) -> str:
    """The code of the node that took case ``number`` in."""
    match = CASE_NUMBER.fullmatch(number)
    if match is None:
        raise InputError(ErrorCode.FIELD_INVALID, f"{number!r} is not a case number")
    return match["node"]


def clean_text(name: str, value: object, *, limit: int, required: bool = True) -> str:
    """``value`` stripped; refused when required and empty, too long, or with control characters."""
    label = FIELD_LABELS.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(ErrorCode.FIELD_INVALID, f"{name} must be text", field=name)
    text = value.strip()
    if required and not text:
        raise InputError(ErrorCode.FIELD_REQUIRED, name, zh=f"请填写{label}" if label else "", field=name)
    if len(text) > limit:
        raise InputError(
            ErrorCode.FIELD_TOO_LONG,
            f"{name}: {len(text)} characters, at most {limit}",
            zh=f"{label}最多{limit}个字，现有{len(text)}个字" if label else "",
            field=name,
        )
    if _CONTROL.search(text):
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"{name} contains control characters",
            zh=f"{label}中含有控制字符" if label else "",
            field=name,
        )
    return text


def invisible_character(text: str) -> str | None:
    """The first character of ``text`` that a reader cannot see (see ``_INVISIBLE``), if any."""
    return next((c for c in text if unicodedata.category(c) in _INVISIBLE), None)


def refuse_invisible(field: str, value: object) -> None:
    """Refuse (``E_FIELD_INVALID``) a name a person typed (``field``, one of
    :data:`NAME_LABELS`) with any invisible or bidi control character anywhere in it."""
    found = invisible_character(value) if isinstance(value, str) else None
    if found is not None:
        zh, en = NAME_LABELS[field]
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"{en} contains an invisible control character, U+{ord(found):04X}",
            zh=f"{zh}中含有不可见的控制字符 U+{ord(found):04X}",
            field=field,
        )


def clean_name(field: str, value: object, *, limit: int = MAX_NAME) -> str:
    """A name a person typed: :func:`refuse_invisible`, then :func:`clean_text`'s checks.
    Never normalized: what was typed is what is kept."""
    refuse_invisible(field, value)
    return clean_text(field, value, limit=limit)


def clean_person_name(field: str, value: object) -> str:
    """A person's name (an applicant's, an agent's): :func:`clean_name`, and no digits —
    a name with a digit in it is a slip of the keyboard or an ID number in the wrong box.
    〇 (U+3007, a numeral letter, not a digit) is a character of Chinese names and stays."""
    text = clean_name(field, value)
    digit = next((c for c in text if unicodedata.category(c) in ("Nd", "No")), None)
    if digit is not None:
        zh, en = NAME_LABELS[field]
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"{en} contains the digit {digit!r}",
            zh=f"{zh}中不能有数字（“{digit}”）",
            field=field,
        )
    return text


def validate_phone(value: object, field: str = "phone") -> str:
    """A mainland mobile (11 digits, 1[3-9]…) or a landline with area code; spaces removed."""
    text = clean_text(field, value, limit=MAX_PHONE).replace(" ", "")
    if _MOBILE.fullmatch(text) or _LANDLINE.fullmatch(text):
        return text
    raise InputError(ErrorCode.PHONE_INVALID, text, zh="请填写11位手机号码，或带区号的固定电话", field=field)


@dataclass(frozen=True)
class Applicant:
    name: str
    doc_type: DocType
    doc_no: str
    phone: str

    def to_body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "doc_type": self.doc_type.value,
            "doc_no": self.doc_no,
            "phone": self.phone,
        }


def check_applicant(
    name: object, doc_type: object, doc_no: object, phone: object, today: date, *, prefix: str = ""
) -> Applicant:
    """The applicant (or, with ``prefix`` ``"agent_"``, the agent) from form fields, each
    checked; the first fault raises with its code and names its field."""
    kind = clean_text(prefix + "doc_type", doc_type, limit=40)
    try:
        parsed_type = DocType(kind)
    except ValueError as exc:
        raise InputError(
            ErrorCode.ID_TYPE_UNKNOWN, kind, zh="请选择证件类型", field=prefix + "doc_type"
        ) from exc
    if prefix and not parsed_type.personal:
        raise InputError(
            ErrorCode.ID_TYPE_UNKNOWN,
            "an agent is a person: an ID document, not a credit code",
            zh="代办人须是个人，请选择其身份证件",
            field=prefix + "doc_type",
        )
    if parsed_type.personal:
        applicant_name = clean_person_name(prefix + "name", name)
    else:
        applicant_name = clean_name(prefix + "name", name, limit=MAX_ENTERPRISE_NAME)
    number = clean_text(prefix + "doc_no", doc_no, limit=MAX_DOC_NO)
    try:
        document = validate_document(parsed_type, number, today)
    except InputError as exc:
        if prefix and exc.field:
            exc.field = prefix + exc.field
        raise
    return Applicant(applicant_name, parsed_type, document.number, validate_phone(phone, prefix + "phone"))


def materials_for(item: Item, agent: bool) -> tuple[Material, ...]:
    """What ``item`` asks for, with the authorization when an agent applies (unless the
    item lists it itself)."""
    if agent and AGENT_AUTHORIZATION.code not in {m.code for m in item.materials}:
        return (*item.materials, AGENT_AUTHORIZATION)
    return item.materials


def missing_materials(
    item: Item, received: set[str] | frozenset[str], *, agent: bool = False
) -> tuple[Material, ...]:
    """The required materials of ``item`` (:func:`materials_for`) not in ``received``, in
    catalog order."""
    wanted = materials_for(item, agent)
    unknown = sorted(received - {m.code for m in wanted})
    if unknown:
        raise InputError(
            ErrorCode.FIELD_INVALID,
            f"materials not in {item.code}: {', '.join(unknown)}",
            zh=f"所选材料不属于该事项：{'、'.join(unknown)}",
            field="materials",
        )
    return tuple(m for m in wanted if m.required and m.code not in received)


@dataclass(frozen=True)
class Notice:
    """一次性告知: everything the applicant must still bring, said once."""

    item: Item
    applicant_name: str
    missing: tuple[Material, ...]
    received: tuple[Material, ...]
    node_name: str
    issued: date


def one_time_notice(
    item: Item, applicant_name: str, received: set[str], node_name: str, today: date, *, agent: bool = False
) -> Notice:
    missing = missing_materials(item, received, agent=agent)
    got = tuple(m for m in materials_for(item, agent) if m.code in received)
    return Notice(item, applicant_name, missing, got, node_name, today)


@dataclass(frozen=True)
class Intake:
    """A case as taken in: the body of its ``case.intake`` record."""

    case: str
    item: str
    item_name: str
    cat: int
    mode: Mode
    decider: str
    applicant: Applicant
    materials: tuple[str, ...]
    notes: str
    limit: int
    deadline: date
    flags: tuple[str, ...] = ()
    grant: bytes | None = None
    agent: Applicant | None = None
    extra: tuple[tuple[str, str], ...] = ()
    files: tuple[FileRef, ...] = ()
    owner: str | None = None  # 异地代收: the net of the city whose item this is (it decides)
    carried: Carried | None = None  # at the owning city's central: the other city's intake it accepts
    parts: tuple[Part, ...] = ()  # 多地联办: the other cities' parts of this application

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "case": self.case,
            "item": self.item,
            "item_name": self.item_name,
            "cat": self.cat,
            "mode": self.mode.value,
            "decider": self.decider,
            "applicant": self.applicant.to_body(),
            "materials": list(self.materials),
            "notes": self.notes,
            "limit": self.limit,
            "deadline": self.deadline.isoformat(),
            "flags": list(self.flags),
        }
        if self.grant is not None:
            body["grant"] = self.grant
        if self.agent is not None:
            body["agent"] = self.agent.to_body()
        if self.extra:
            body["extra"] = dict(self.extra)
        if self.files:
            body["files"] = refs_to_body(self.files)
        if self.owner is not None:
            body["owner"] = self.owner
        if self.carried is not None:
            body["carried"] = self.carried.to_body()
        if self.parts:
            body["parts"] = [p.to_body() for p in self.parts]
        return body

    @classmethod
    def from_body(cls, body: object) -> Intake:
        """The intake in ``body``, checked strictly (unknown keys and wrong types refused)."""
        if not isinstance(body, dict):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: expected a map")
        unknown = sorted(str(k) for k in set(body) - _INTAKE_KEYS)
        missing = sorted(_INTAKE_KEYS - _OPTIONAL_KEYS - set(body))
        if unknown or missing:
            raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: unknown {unknown}, missing {missing}")
        applicant = _person(body["applicant"], "applicant")
        agent = _person(body["agent"], "agent") if "agent" in body else None
        extra = body.get("extra", {})
        if not isinstance(extra, dict) or ("extra" in body and not extra):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: extra is a non-empty map when present")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: extra maps field codes to text")
        try:
            doc_type = applicant.doc_type
            mode = Mode(body["mode"])
            deadline = date.fromisoformat(body["deadline"])
        except (ValueError, TypeError) as exc:
            raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {exc}") from exc
        for name in ("case", "item", "item_name", "decider", "notes", "deadline"):
            if not isinstance(body[name], str):
                raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {name} must be text")
        for name in ("cat", "limit"):
            if isinstance(body[name], bool) or not isinstance(body[name], int) or body[name] < 0:
                raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {name} must be a count")
        for name in ("materials", "flags"):
            if not isinstance(body[name], list) or not all(isinstance(x, str) for x in body[name]):
                raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {name} must be a list of text")
        grant = body.get("grant")
        if grant is not None and (not isinstance(grant, bytes) or len(grant) != 32):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: grant must be a 32-byte id")
        if mode not in (Mode.DIRECT, Mode.PROXY):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: a case is direct or proxy")
        case_node(body["case"])
        files = refs_from_body(body["files"]) if "files" in body else ()
        owner = body.get("owner")
        if "owner" in body and (not isinstance(owner, str) or not owner or len(owner) > 64):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: owner must be a network name")
        try:
            carried = Carried.from_body(body["carried"]) if "carried" in body else None
        except TongbanError as exc:
            raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {exc.text('en')}") from exc
        if owner is not None and carried is not None:
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: owner and carried never go together")
        parts = parts_from_body(body["parts"]) if "parts" in body else ()
        if parts and (owner is not None or carried is not None):
            raise InputError(ErrorCode.FIELD_INVALID, "case.intake: parts belong to a case of our own item")
        return cls(
            case=body["case"],
            item=body["item"],
            item_name=body["item_name"],
            cat=body["cat"],
            mode=mode,
            decider=body["decider"],
            applicant=Applicant(applicant.name, doc_type, applicant.doc_no, applicant.phone),
            materials=tuple(body["materials"]),
            notes=body["notes"],
            limit=body["limit"],
            deadline=deadline,
            flags=tuple(body["flags"]),
            grant=grant,
            agent=agent,
            extra=tuple(extra.items()),
            files=files,
            owner=owner,
            carried=carried,
            parts=parts,
        )


def _person(value: object, what: str) -> Applicant:
    if not isinstance(value, dict) or set(value) != {"name", "doc_type", "doc_no", "phone"}:
        raise InputError(
            ErrorCode.FIELD_INVALID, f"case.intake: {what} must have name, doc_type, doc_no, phone"
        )
    if not all(isinstance(v, str) for v in value.values()):
        raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {what} fields are text")
    try:
        kind = DocType(value["doc_type"])
    except ValueError as exc:
        raise InputError(ErrorCode.FIELD_INVALID, f"case.intake: {what}: {exc}") from exc
    return Applicant(value["name"], kind, value["doc_no"], value["phone"])


_INTAKE_KEYS = frozenset(
    {
        "case",
        "item",
        "item_name",
        "cat",
        "mode",
        "decider",
        "grant",
        "applicant",
        "materials",
        "notes",
        "limit",
        "deadline",
        "flags",
        "agent",
        "extra",
        "files",
        "owner",
        "carried",
        "parts",
    }
)
_OPTIONAL_KEYS = frozenset({"grant", "agent", "extra", "files", "owner", "carried", "parts"})
