"""How two catalog releases differ: the items one adds, removes and changes.

Central shows it before a release is published (the draft against the current release) and
between any two releases held; comparing is field by field over :class:`core.catalog.Item`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from core.catalog import CatalogRelease, Item


@dataclass(frozen=True)
class ItemChange:
    code: str
    fields: tuple[str, ...]  # names of the Item fields that differ, in declaration order


@dataclass(frozen=True)
class CatalogDiff:
    old_version: int
    new_version: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[ItemChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


_COMPARED = tuple(f.name for f in fields(Item))


def diff_releases(old: CatalogRelease, new: CatalogRelease) -> CatalogDiff:
    """What ``new`` adds, removes and changes relative to ``old`` (codes sorted)."""
    old_codes = {i.code for i in old.items}
    new_codes = {i.code for i in new.items}
    changed: list[ItemChange] = []
    for code in sorted(old_codes & new_codes):
        a, b = old.item(code), new.item(code)
        differing = tuple(n for n in _COMPARED if getattr(a, n) != getattr(b, n))
        if differing:
            changed.append(ItemChange(code, differing))
    return CatalogDiff(
        old_version=old.version,
        new_version=new.version,
        added=tuple(sorted(new_codes - old_codes)),
        removed=tuple(sorted(old_codes - new_codes)),
        changed=tuple(changed),
    )
