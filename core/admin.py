"""Administrative-division codes and the tiers of the service network.

This module owns the shape of a node's code and what the shape says: which tier a code
belongs to, which code its parent must have, and whether one code lies inside another's
area. Codes follow the administrative divisions (GB/T 2260 and the statistical town and
village codes built on it), using Haining city (330481) as the running example:

=========  ==========================  ==================  ===============
tier       shape                       example             parent
=========  ==========================  ==================  ===============
central    city6                       ``330481``          none (root)
city       city6 + ``000``             ``330481000``       ``330481``
town       city6 + 3 digits, not 000   ``330481104``       ``330481``
village    town9 + 3 digits, not 000   ``330481104201``    ``330481104``
department city6 + 2–6 capitals        ``330481GA``        ``330481``
=========  ==========================  ==================  ===============

The city-hall service node (tier ``city``) is a leaf beside the towns, not above them:
``330481000`` is not an ancestor of ``330481104``. Towns hang off central directly.

A **department** (部门: 公安, 人社, 医保 …) decides items in its own back office; it is
enrolled by central like a node but takes nothing in and syncs with no one over the
service-center links. Its code is the city's code and the department's pinyin initials as
item codes use them (``GA`` 公安, so ``330481GA``), with up to four more capitals for a
unit of it (``330481GAHZ``, 公安户政). It lies inside central's area (its parent is
central) and, like a village, has no subtree of its own. Division codes stay digits only,
so the two shapes never meet.

A six-digit code must start with a real province-level code (11–15, 21–23, 31–37, 41–46,
50–54, 61–65, 71, 81, 82); the remaining digits are not checked against a list of
divisions, because divisions are renamed and merged and a node must not refuse work
because its table is a year old.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ErrorCode, InputError

# GB/T 2260 province-level codes: 华北 1x, 东北 2x, 华东 3x, 中南 4x, 西南 5x, 西北 6x,
# 台湾 71, 香港 81, 澳门 82.
PROVINCE_CODES: frozenset[str] = frozenset(
    [str(n) for n in range(11, 16)]
    + [str(n) for n in range(21, 24)]
    + [str(n) for n in range(31, 38)]
    + [str(n) for n in range(41, 47)]
    + [str(n) for n in range(50, 55)]
    + [str(n) for n in range(61, 66)]
    + ["71", "81", "82"]
)

# ASCII digits only: str.isdigit() would also accept "３" or "٣".
_DIGITS = re.compile(r"[0-9]+")
DEPARTMENT_CODE = re.compile(r"[0-9]{6}[A-Z]{2,6}")
"""A department's code: the city's six digits and two to six ASCII capitals."""


class Tier(StrEnum):
    """A node's place in the network; the value is what configs and certificates carry."""

    CENTRAL = "central"
    CITY = "city"
    TOWN = "town"
    VILLAGE = "village"
    DEPARTMENT = "department"

    @property
    def zh(self) -> str:
        """The Chinese label shown on clerk screens."""
        return _TIER_LABELS[self][0]

    @property
    def en(self) -> str:
        """The English label for operators and logs."""
        return _TIER_LABELS[self][1]

    def label(self, lang: str = "zh") -> str:
        """The label in ``lang`` ("zh" or "en")."""
        return self.en if lang == "en" else self.zh


_TIER_LABELS: dict[Tier, tuple[str, str]] = {
    Tier.CENTRAL: ("市级平台", "city authority"),
    Tier.CITY: ("市级中心", "city hall service center"),
    Tier.TOWN: ("镇街中心", "town service center"),
    Tier.VILLAGE: ("村社中心", "village service center"),
    Tier.DEPARTMENT: ("部门后台", "department back office"),
}


def parse_tier(text: str) -> Tier:
    """The tier named by ``text`` (its value, e.g. ``"town"``), for config and CLI input."""
    try:
        return Tier(text)
    except ValueError:
        names = ", ".join(t.value for t in Tier)
        raise InputError(ErrorCode.FIELD_INVALID, detail=f"unknown tier {text!r}; one of: {names}") from None


def _as_tier(tier: Tier | str) -> Tier:
    # Configs hand over plain strings; a wrong one must be an InputError, not a ValueError.
    return tier if isinstance(tier, Tier) else parse_tier(tier)


def _check_city6(code: str, whole: str) -> None:
    if code[:2] not in PROVINCE_CODES:
        raise InputError(
            ErrorCode.ADMIN_CODE,
            detail=f"{whole!r}: {code[:2]!r} is not a province-level code",
        )


def tier_for_code(code: str) -> Tier:
    """The tier whose shape ``code`` has; ``E_ADMIN_CODE`` when it fits none."""
    if isinstance(code, str) and DEPARTMENT_CODE.fullmatch(code):
        _check_city6(code[:6], code)
        return Tier.DEPARTMENT
    if not isinstance(code, str) or not _DIGITS.fullmatch(code):
        raise InputError(
            ErrorCode.ADMIN_CODE,
            detail=f"{code!r}: a code is 6, 9 or 12 ASCII digits, or a city code and 2–6 capitals",
        )
    if len(code) == 6:
        _check_city6(code, code)
        return Tier.CENTRAL
    if len(code) == 9:
        _check_city6(code[:6], code)
        return Tier.CITY if code[6:] == "000" else Tier.TOWN
    if len(code) == 12:
        _check_city6(code[:6], code)
        if code[6:9] == "000":
            raise InputError(
                ErrorCode.ADMIN_CODE,
                detail=f"{code!r}: a village code needs a town part (digits 7–9) other than 000",
            )
        if code[9:] == "000":
            raise InputError(
                ErrorCode.ADMIN_CODE,
                detail=f"{code!r}: a village code's last three digits cannot be 000",
            )
        return Tier.VILLAGE
    raise InputError(
        ErrorCode.ADMIN_CODE,
        detail=f"{code!r} has {len(code)} digits; a code has 6 (central), 9 (city, town) or 12 (village)",
    )


def validate_node_code(code: str, tier: Tier) -> None:
    """Check that ``code`` is well formed and has the shape of ``tier``.

    Raises ``E_ADMIN_CODE`` for a malformed code and ``E_TIER_MISMATCH`` when the code is
    well formed but belongs to another tier.
    """
    want = _as_tier(tier)
    actual = tier_for_code(code)
    if actual is not want:
        raise InputError(
            ErrorCode.TIER_MISMATCH,
            detail=f"{code!r} is shaped as a {actual.value} code, not {want.value}",
        )


def expected_parent(code: str, tier: Tier) -> str | None:
    """The code of the node that ``code`` syncs with upward; ``None`` for central.

    The city-hall node, towns and departments hang off central (the six-digit code); a
    village hangs off its town (its first nine digits).
    """
    tier = _as_tier(tier)
    validate_node_code(code, tier)
    if tier is Tier.CENTRAL:
        return None
    if tier is Tier.VILLAGE:
        return code[:9]
    return code[:6]


def city_of(code: str) -> str:
    """The six-digit city code that ``code`` (of any tier) belongs to."""
    tier_for_code(code)
    return code[:6]


@functools.lru_cache(maxsize=8192)
def is_within(code: str, ancestor: str) -> bool:
    """Whether ``code`` is ``ancestor`` itself or lies in its subtree.

    Only central and towns have subtrees: the city-hall node ``330481000`` shares its
    first digits with every town but is not above them, and a village or a department
    has no children. A department lies inside central's area.
    Both codes must be well formed (``E_ADMIN_CODE`` otherwise): an authority check must
    never quietly answer "no" to a typo. Remembered (a refusal is not): a parent asks it
    for every record it scans for every child, over a few hundred codes.
    """
    tier_for_code(code)
    ancestor_tier = tier_for_code(ancestor)
    if code == ancestor:
        return True
    if ancestor_tier in (Tier.CITY, Tier.VILLAGE, Tier.DEPARTMENT):
        return False
    return code.startswith(ancestor)


def is_department(code: str) -> bool:
    """Whether ``code`` has a department's shape (no error for anything else)."""
    return (
        isinstance(code, str) and DEPARTMENT_CODE.fullmatch(code) is not None and code[:2] in PROVINCE_CODES
    )


@functools.lru_cache(maxsize=8192)
def within(code: str, ancestor: str) -> bool:
    """:func:`is_within` for codes read from records or the network: a code that is not
    well formed lies in no one's subtree (no error: such a record is refused elsewhere)."""
    try:
        return is_within(code, ancestor)
    except InputError:
        return False


@dataclass(frozen=True)
class OrgUnit:
    """A service center: its code, name, tier and parent's code, checked for consistency."""

    code: str
    name: str
    tier: Tier
    parent: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier", _as_tier(self.tier))
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(ErrorCode.FIELD_INVALID, detail=f"org unit {self.code!r}: name is empty")
        want = expected_parent(self.code, self.tier)
        if self.parent != want:
            raise InputError(
                ErrorCode.ADMIN_CODE,
                detail=f"{self.code!r} ({self.tier.value}): parent must be {want!r}, not {self.parent!r}",
            )

    def contains(self, code: str) -> bool:
        """Whether ``code`` is this unit or lies in its subtree."""
        return is_within(code, self.code)
