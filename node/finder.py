"""Finding an item fast at the window: what a clerk can type to find it, and the order shown.

Each item gets its search keys once per catalog release (not per request): its code, its
name and department as written, and in pinyin, in full and as initials, from ``pypinyin``
(each character's commonest reading). The picker (``web/static/app.js``) keeps an item
when every word typed is part of one of its keys, or is spelled, in order, by the
characters of its name or the letters of its initials: 最低生活保障申请 is found by
``MZ-0001``, ``zuidi``, ``zdsh`` and by ``低保``. It shows the node's most used items first,
then every item grouped by department, then other cities' items our central mirrored
(异地代收), one group per city, found also by the city's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin

from core.catalog import CatalogRelease, Item
from sync.projection.delegation import ItemAuthority

COMMON = 8
"""How many of the node's most used items the picker shows first."""


@dataclass(frozen=True)
class Keys:
    """What an item is found by: its name's pinyin initials and full pinyin, lower-cased, and
    everything else (code, department and its pinyin, English name) in ``words``."""

    initials: str
    pinyin: str
    words: str


def search_keys(item: Item) -> Keys:
    """The keys of ``item`` (see the module docstring)."""
    initials = "".join(p[:1] for p in lazy_pinyin(item.name, style=Style.FIRST_LETTER, errors="ignore"))
    dept_initials = "".join(
        p[:1] for p in lazy_pinyin(item.department, style=Style.FIRST_LETTER, errors="ignore")
    )
    words = {
        item.code.lower(),
        item.department,
        dept_initials.lower(),
        "".join(lazy_pinyin(item.department, errors="ignore")).lower(),
        item.name_en.lower(),
    }
    return Keys(
        initials.lower(),
        "".join(lazy_pinyin(item.name, errors="ignore")).lower(),
        " ".join(sorted(w for w in words if w)),
    )


def catalog_keys(release: CatalogRelease) -> dict[str, Keys]:
    """The search keys of every item of ``release``, by code."""
    return {item.code: search_keys(item) for item in release.items}


def peer_keys(offers: Iterable[ItemAuthority]) -> dict[str, Keys]:
    """The search keys of other cities' items (异地代收), by their key ``CODE@NET``: the
    item's own, and the owning city's name in characters and pinyin."""
    out = {}
    for auth in offers:
        keys = search_keys(auth.item)
        city = auth.owner_name
        extra = f"{city} {''.join(lazy_pinyin(city, errors='ignore')).lower()} 异地代收 yidi"
        out[auth.key] = Keys(keys.initials, keys.pinyin, f"{keys.words} {extra}")
    return out


@dataclass(frozen=True)
class Group:
    """A heading of the picker and its items."""

    title: str  # a department's name, or "" for the node's most used, or another city's name
    items: tuple[ItemAuthority, ...]
    peer: bool = False  # another city's items, taken in for it (异地代收)


def groups(items: Iterable[ItemAuthority], usage: dict[str, int]) -> list[Group]:
    """The picker's groups: the most used (by ``usage``, cases per item) first, then one
    group per department in the catalog's order of first appearance."""
    listed = [a for a in items if not a.owner]
    common = sorted((a for a in listed if usage.get(a.item.code)), key=lambda a: -usage[a.item.code])[:COMMON]
    by_department: dict[str, list[ItemAuthority]] = {}
    for auth in listed:
        by_department.setdefault(auth.item.department, []).append(auth)
    out = [Group("", tuple(common))] if common else []
    out.extend(Group(dept, tuple(group)) for dept, group in by_department.items())
    return out


def peer_groups(offers: Iterable[ItemAuthority]) -> list[Group]:
    """One group per other city whose items this window takes in (异地代收), after ours."""
    by_city: dict[str, list[ItemAuthority]] = {}
    for auth in offers:
        by_city.setdefault(auth.owner_name, []).append(auth)
    return [Group(city, tuple(group), peer=True) for city, group in by_city.items()]
