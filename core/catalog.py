"""The service-item catalog (事项清单): items, their modes per tier, and signed releases.

This module owns what an item *is* (code, names, department, audience, time limit,
materials, whether the applicant must come in person, fee, legal basis, and the strongest
mode each tier may handle it in), what a catalog release is, the exact body a
``catalog.release`` record carries, the checks every item goes through, and how two
releases differ. How a YAML/CSV list becomes items is :mod:`core.catalog_data`. It does
no I/O: loading files and signing releases happen elsewhere.

**Item codes** are ``<DEPT>-<NNNN>``: two to four capital letters naming the department
(pinyin initials: ``GA`` 公安, ``RS`` 人力社保, ``YB`` 医保, ``MZ`` 民政, ``WJ`` 卫健,
``ZJ`` 住建, ``SW`` 税务, ``CL`` 残联, ``TY`` 退役军人, ``SC`` 市场监管, ``GJ`` 公积金,
``ZR`` 自然资源) and four digits, e.g. ``GA-0001``. Zhejiang's own 事项编码 are 20-odd
digit strings that change with every re-coding campaign; a short stable code is what a
clerk can read aloud and what grants list, and the provincial code can ride along in
``legal_basis`` or a later field. Codes are stable across releases: a grant's item list
refers to them.

**Modes** are totally ordered ``proxy < direct < same_power`` (代收代办 < 直接办 < 同权).
``Mode`` is a ``str`` enum, so its comparisons are overridden to use that order and to
refuse a comparison with a plain string (``str`` would otherwise compare alphabetically,
and "direct" < "proxy" would silently be true).

**Modes per tier** name the strongest mode the catalog allows at each of ``city``,
``town`` and ``village``; an absent tier means the item is not handled there. Two rules
keep every entry grantable, because grants flow city → town → village and a sub-grant may
only narrow (see :mod:`core.grants`):

- ``same_power`` exists only at ``town`` (a town deciding with the city's authority; at
  the city hall deciding is simply ``direct``, and villages never hold same power);
- an item offered at ``village`` is offered at ``town`` too, in a mode at least as strong.

**Body of a catalog release** (canonical CBOR; text keys; ints, never floats)::

    {"version": uint ≥ 1, "issued_at": uint, "expires_at": uint > issued_at,
     "items": [item, ...]}                    # sorted by code, codes unique
    item = {"code": tstr, "name": tstr, "name_en": tstr, "department": tstr,
            "audience": "personal" | "enterprise", "time_limit_days": uint,
            "materials": [material, ...],     # material codes unique within the item
            "in_person": bool, "modes": {tier: mode}, "fee": uint (fen),
            "legal_basis": tstr,
            ? "guide": tstr,                  # 办事指南: how to apply, for the window
            ? "fields": [field, ...]}         # what the item asks besides the applicant
    material = {"code": tstr, "name": tstr, "required": bool, "original": bool,
                "note": tstr, ? "name_en": tstr}
    field = {"code": tstr, "label": tstr, "kind": "text" | "int" | "date",
             "required": bool, "max": uint}  # text: most characters; int: largest value

Every key without ``?`` is always present; an optional key (``?``) is present exactly when
it is not empty, so one release still has exactly one body, and every release signed
before the optional keys existed reads, and encodes, byte for byte as it was signed.
Unknown keys and wrong types are refused with ``E_CATALOG_INVALID`` naming the item and
field.

**Extra fields** are what an item asks of the applicant besides who they are: the
household's size and income for 低保, the child's name for 出生登记. Each has a code
(unique in the item), the label a clerk sees, a kind, whether it is required, and a bound;
an intake records the values typed under their codes (:mod:`core.intake`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from core.errors import ErrorCode, InputError

ITEM_CODE = re.compile(r"[A-Z]{2,4}-[0-9]{4}")
MATERIAL_CODE = re.compile(r"[a-z][a-z0-9_]{1,39}")
TIERS: tuple[str, ...] = ("city", "town", "village")
MAX_TIME_LIMIT_DAYS = 365  # the longest statutory limits are 60 working days; 365 catches typos
MAX_TEXT = 500  # a name or legal basis longer than this is a pasting accident
MAX_GUIDE = 4000  # a guide is a page of text, not a book
FIELD_KINDS: tuple[str, ...] = ("text", "int", "date")
MAX_FIELDS = 20


class Mode(StrEnum):
    """How a center may handle an item: proxy < direct < same_power."""

    PROXY = "proxy"  # 代收代办: take in here, decided elsewhere
    DIRECT = "direct"  # 直接办: decided where taken in
    SAME_POWER = "same_power"  # 同权: a town decides with the city's authority

    @property
    def rank(self) -> int:
        """Position in the total order (proxy 0, direct 1, same_power 2)."""
        return _MODE_RANK[self]

    @property
    def zh(self) -> str:
        return _MODE_ZH[self]

    def _other_rank(self, other: object) -> int:
        if not isinstance(other, Mode):
            # Refuse rather than return NotImplemented: Python would then fall back to
            # str's alphabetical comparison.
            raise TypeError(f"cannot order Mode against {type(other).__name__}")
        return other.rank

    def __lt__(self, other: object) -> bool:
        return self.rank < self._other_rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= self._other_rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > self._other_rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= self._other_rank(other)


_MODE_RANK: dict[Mode, int] = {Mode.PROXY: 0, Mode.DIRECT: 1, Mode.SAME_POWER: 2}
_MODE_ZH: dict[Mode, str] = {Mode.PROXY: "代收代办", Mode.DIRECT: "直接办", Mode.SAME_POWER: "同权"}


def mode_le(a: Mode, b: Mode) -> bool:
    """Whether ``a`` is no stronger than ``b`` (``a <= b`` in the mode order)."""
    return a.rank <= b.rank


class Audience(StrEnum):
    PERSONAL = "personal"  # 个人办事
    ENTERPRISE = "enterprise"  # 法人办事 (companies, 个体工商户, organisations)


def invalid(where: str, message: str) -> InputError:
    """``E_CATALOG_INVALID`` naming ``where`` (an item, a material, the release) and what."""
    return InputError(ErrorCode.CATALOG_INVALID, detail=f"{where}: {message}")


def checked_text(where: str, name: str, value: object, *, empty: bool = False) -> str:
    """``value`` if it is text of at most :data:`MAX_TEXT` characters (and not blank,
    unless ``empty``)."""
    if not isinstance(value, str):
        raise invalid(where, f"{name} must be text, not {type(value).__name__}")
    if not empty and not value.strip():
        raise invalid(where, f"{name} must not be empty")
    if len(value) > MAX_TEXT:
        raise invalid(where, f"{name} is longer than {MAX_TEXT} characters")
    return value


def checked_int(where: str, name: str, value: object, *, low: int, high: int | None = None) -> int:
    """``value`` if it is an integer (never a bool) from ``low`` through ``high``."""
    # bool is an int subclass: True must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(where, f"{name} must be an integer, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(where, f"{name} must be {bound}, not {value}")
    return value


def _bool(where: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid(where, f"{name} must be true or false, not {type(value).__name__}")
    return value


def checked_keys(
    where: str, entry: object, required: frozenset[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``entry`` as a dict, refusing unknown and missing keys (a typo must not drop a field)."""
    if not isinstance(entry, Mapping):
        raise invalid(where, f"expected a map, not {type(entry).__name__}")
    unknown = sorted(str(k) for k in entry if k not in required | optional)
    if unknown:
        raise invalid(where, f"unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(entry))
    if missing:
        raise invalid(where, f"missing field(s) {', '.join(missing)}")
    return dict(entry)


@dataclass(frozen=True)
class Material:
    """One material (申请材料) an applicant brings: required or optional, original or copy."""

    code: str
    name: str
    required: bool
    original: bool = False  # True: the original is checked (原件); False: a copy suffices
    note: str = ""
    name_en: str = ""  # optional: English screens show the name itself without it

    def __post_init__(self) -> None:
        where = f"material {self.code!r}"
        if not isinstance(self.code, str) or not MATERIAL_CODE.fullmatch(self.code):
            raise invalid(where, "code must be 2–40 of a-z, 0-9, _ starting with a letter")
        checked_text(where, "name", self.name)
        _bool(where, "required", self.required)
        _bool(where, "original", self.original)
        checked_text(where, "note", self.note, empty=True)
        checked_text(where, "name_en", self.name_en, empty=True)

    def label(self, lang: str = "zh") -> str:
        """The name in ``lang``: the English one where there is one."""
        return self.name_en if lang == "en" and self.name_en else self.name

    def to_body(self) -> dict[str, Any]:
        body = {name: getattr(self, name) for name in _MATERIAL_KEYS_ORDER}
        if self.name_en:
            body["name_en"] = self.name_en
        return body

    @classmethod
    def from_body(cls, body: object, where: str = "material") -> Material:
        return cls(**checked_keys(where, body, _MATERIAL_KEYS, frozenset({"name_en"})))


_MATERIAL_KEYS_ORDER = ("code", "name", "required", "original", "note")
_MATERIAL_KEYS = frozenset(_MATERIAL_KEYS_ORDER)


@dataclass(frozen=True)
class ExtraField:
    """One thing an item asks besides the applicant (家庭人口, 新生儿姓名 …).

    ``max`` bounds a ``text`` value's length and an ``int`` value; a ``date`` ignores it (0).
    """

    code: str
    label: str
    kind: str
    required: bool
    max: int = 0

    def __post_init__(self) -> None:
        where = f"field {self.code!r}"
        if not isinstance(self.code, str) or not MATERIAL_CODE.fullmatch(self.code):
            raise invalid(where, "code must be 2–40 of a-z, 0-9, _ starting with a letter")
        checked_text(where, "label", self.label)
        if self.kind not in FIELD_KINDS:
            raise invalid(where, f"kind must be one of {', '.join(FIELD_KINDS)}, not {self.kind!r}")
        _bool(where, "required", self.required)
        checked_int(where, "max", self.max, low=0, high=None if self.kind == "int" else MAX_TEXT)
        if self.kind == "text" and self.max == 0:
            raise invalid(where, "a text field needs max, its most characters (1–500)")

    def to_body(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_body(cls, body: object, where: str = "field") -> ExtraField:
        return cls(**checked_keys(where, body, _FIELD_KEYS))


_FIELD_KEYS = frozenset(f.name for f in fields(ExtraField))


@dataclass(frozen=True)
class Item:
    """A service item (事项) as one catalog release defines it.

    ``modes`` maps a tier name ("city", "town", "village") to the strongest mode allowed
    there; it is stored read-only and in tier order. ``time_limit_days`` counts working
    days; 0 means 即办 (done on the spot). ``fee`` is in fen.
    """

    code: str
    name: str
    name_en: str
    department: str
    audience: Audience
    time_limit_days: int
    materials: tuple[Material, ...]
    in_person: bool
    modes: Mapping[str, Mode] = field(hash=False)  # a read-only proxy, which cannot be hashed
    fee: int = 0
    legal_basis: str = ""
    guide: str = ""  # 办事指南, optional
    fields: tuple[ExtraField, ...] = ()  # optional

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not ITEM_CODE.fullmatch(self.code):
            raise invalid(f"item {self.code!r}", "code must look like GA-0001 (2–4 capitals, '-', 4 digits)")
        where = f"item {self.code}"
        checked_text(where, "name", self.name)
        checked_text(where, "name_en", self.name_en)
        checked_text(where, "department", self.department)
        if not isinstance(self.audience, Audience):
            raise invalid(where, "audience must be an Audience")
        checked_int(where, "time_limit_days", self.time_limit_days, low=0, high=MAX_TIME_LIMIT_DAYS)
        if not isinstance(self.materials, tuple) or not all(isinstance(m, Material) for m in self.materials):
            raise invalid(where, "materials must be a tuple of Material")
        seen: set[str] = set()
        for m in self.materials:
            if m.code in seen:
                raise invalid(where, f"material {m.code} listed twice")
            seen.add(m.code)
        _bool(where, "in_person", self.in_person)
        checked_int(where, "fee", self.fee, low=0)
        checked_text(where, "legal_basis", self.legal_basis, empty=True)
        if not isinstance(self.guide, str) or len(self.guide) > MAX_GUIDE:
            raise invalid(where, f"guide must be text of at most {MAX_GUIDE} characters")
        _check_fields(where, self.fields, {m.code for m in self.materials})
        object.__setattr__(self, "modes", MappingProxyType(_check_modes(where, self.modes)))

    def to_body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "name_en": self.name_en,
            "department": self.department,
            "audience": self.audience.value,
            "time_limit_days": self.time_limit_days,
            "materials": [m.to_body() for m in self.materials],
            "in_person": self.in_person,
            "modes": {tier: mode.value for tier, mode in self.modes.items()},
            "fee": self.fee,
            "legal_basis": self.legal_basis,
            **({"guide": self.guide} if self.guide else {}),
            **({"fields": [f.to_body() for f in self.fields]} if self.fields else {}),
        }

    def field(self, code: str) -> ExtraField | None:
        return next((f for f in self.fields if f.code == code), None)

    @classmethod
    def from_body(cls, body: object) -> Item:
        """The item in ``body``, checked strictly (record bodies, not hand-written files)."""
        code = body.get("code") if isinstance(body, dict) else None
        where = f"item {code}" if isinstance(code, str) else "item"
        b = checked_keys(where, body, ITEM_KEYS, ITEM_OPTIONAL_KEYS)
        materials = b["materials"]
        if not isinstance(materials, list):
            raise invalid(where, "materials must be a list")
        extra = b.get("fields", [])
        if not isinstance(extra, list) or ("fields" in b and not extra):
            raise invalid(where, "fields must be a non-empty list when present")
        if "guide" in b and b["guide"] == "":
            raise invalid(where, "guide is left out when empty")
        modes = b["modes"]
        if not isinstance(modes, dict):
            raise invalid(where, "modes must be a map")
        return cls(
            code=b["code"],
            name=b["name"],
            name_en=b["name_en"],
            department=b["department"],
            audience=_enum(where, "audience", Audience, b["audience"]),
            time_limit_days=b["time_limit_days"],
            materials=tuple(
                Material.from_body(m, f"{where}: material #{i + 1}") for i, m in enumerate(materials)
            ),
            in_person=b["in_person"],
            modes={tier: _enum(where, f"modes.{tier}", Mode, m) for tier, m in modes.items()},
            fee=b["fee"],
            legal_basis=b["legal_basis"],
            guide=b.get("guide", ""),
            fields=tuple(ExtraField.from_body(f, f"{where}: field #{i + 1}") for i, f in enumerate(extra)),
        )


ITEM_OPTIONAL_KEYS = frozenset({"guide", "fields"})
"""The keys of an item's body that are present only when not empty."""
ITEM_KEYS = frozenset(f.name for f in fields(Item)) - ITEM_OPTIONAL_KEYS
"""The keys every item's body has."""


def _check_fields(where: str, extra: object, materials: set[str]) -> None:
    if not isinstance(extra, tuple) or not all(isinstance(f, ExtraField) for f in extra):
        raise invalid(where, "fields must be a tuple of ExtraField")
    if len(extra) > MAX_FIELDS:
        raise invalid(where, f"at most {MAX_FIELDS} fields")
    codes = [f.code for f in extra]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise invalid(where, f"field {twice[0]} listed twice")


_E = TypeVar("_E", bound=Enum)


def _enum(where: str, name: str, kind: type[_E], value: object) -> _E:
    if not isinstance(value, str):
        raise invalid(where, f"{name} must be text, not {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(e.value) for e in kind)
        raise invalid(where, f"{name} must be one of {allowed}, not {value!r}") from None


def _check_modes(where: str, modes: object) -> dict[str, Mode]:
    if not isinstance(modes, Mapping):
        raise invalid(where, "modes must be a mapping of tier to mode")
    checked: dict[str, Mode] = {}
    for tier, mode in modes.items():
        if tier not in TIERS:
            raise invalid(where, f"modes: unknown tier {tier!r} (city, town or village)")
        if not isinstance(mode, Mode):
            raise invalid(where, f"modes.{tier} must be a Mode")
        checked[str(tier)] = mode
    if not checked:
        raise invalid(where, "modes: the item is offered at no tier")
    for tier in ("city", "village"):
        if checked.get(tier) is Mode.SAME_POWER:
            raise invalid(where, f"modes.{tier}: same_power exists only at town")
    village, town = checked.get("village"), checked.get("town")
    if village is not None:
        if town is None:
            raise invalid(where, "modes: offered at village but not at town, so it could never be granted")
        if village > town:
            raise invalid(where, f"modes: village ({village.value}) is stronger than town ({town.value})")
    # Tier order, so the body's map and equality do not depend on the input's order.
    return {t: checked[t] for t in TIERS if t in checked}


def item_available(item: Item, tier: str) -> Mode | None:
    """The strongest mode ``item`` may be handled in at ``tier``, or None if not there.

    ``tier`` is a tier name or a :class:`core.admin.Tier` (a ``str`` enum); central
    takes in nothing, so it always gets None.
    """
    return item.modes.get(str(tier.value if isinstance(tier, Enum) else tier))


@dataclass(frozen=True)
class CatalogRelease:
    """One signed release of the catalog; ``items`` are kept sorted by code."""

    version: int
    issued_at: int
    expires_at: int
    items: tuple[Item, ...]
    _index: Mapping[str, Item] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        checked_int("catalog release", "version", self.version, low=1)
        checked_int("catalog release", "issued_at", self.issued_at, low=0)
        checked_int("catalog release", "expires_at", self.expires_at, low=0)
        if self.expires_at <= self.issued_at:
            raise invalid("catalog release", "expires_at must be after issued_at")
        if not isinstance(self.items, tuple) or not all(isinstance(i, Item) for i in self.items):
            raise invalid("catalog release", "items must be a tuple of Item")
        index: dict[str, Item] = {}
        for item in self.items:
            if item.code in index:
                raise invalid(f"item {item.code}", "code appears twice in the release")
            index[item.code] = item
        object.__setattr__(self, "items", tuple(sorted(self.items, key=lambda i: i.code)))
        object.__setattr__(self, "_index", MappingProxyType(index))

    def get(self, code: str) -> Item | None:
        return self._index.get(code)

    def item(self, code: str) -> Item:
        """The item with ``code``; ``E_ITEM_UNKNOWN`` if this release has none."""
        found = self._index.get(code)
        if found is None:
            raise InputError(ErrorCode.ITEM_UNKNOWN, detail=f"{code} (catalog version {self.version})")
        return found

    def is_expired(self, now: int) -> bool:
        """Whether the release is past its expiry at ``now``: warn, keep taking cases."""
        return now >= self.expires_at

    def to_body(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "items": [i.to_body() for i in self.items],
        }

    @classmethod
    def from_body(cls, body: object) -> CatalogRelease:
        """The release in a ``catalog.release`` body; items must be sorted by code."""
        b = checked_keys("catalog release", body, _RELEASE_KEYS)
        raw = b["items"]
        if not isinstance(raw, list):
            raise invalid("catalog release", "items must be a list")
        items = tuple(Item.from_body(i) for i in raw)
        codes = [i.code for i in items]
        if codes != sorted(set(codes)):
            raise invalid("catalog release", "items must be sorted by code with no code twice")
        return cls(version=b["version"], issued_at=b["issued_at"], expires_at=b["expires_at"], items=items)


_RELEASE_KEYS = frozenset({"version", "issued_at", "expires_at", "items"})
