"""Screen texts in Chinese (the default) and English: the machinery and the shared words.

Each web service keeps its own gettext catalogs (:func:`catalog_texts`,
docs/translating.md) and joins them with :data:`SHARED` (the login page, the error page,
the language switch) in a :class:`Texts`. Error messages come from
:mod:`core.errors` (each code has both texts). A key defined twice is refused when the
service is imported; a missing key is an exception, so a test fails instead of a blank
appearing on screen.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGS = ("zh", "en")


def catalog_texts(package: str) -> dict[str, tuple[str, str]]:
    """The screen texts of ``package``'s gettext catalogs, (Chinese, English) by message id.

    The catalogs are ``<package>/locale/<lang>/LC_MESSAGES/messages.po`` (``zh`` and ``en``;
    the message ids are keys such as ``receipt.title``), compiled with Babel when the service
    is imported and read through :mod:`gettext`. A message without its text in a language,
    or in one language only, is refused here: a test fails, no blank reaches a screen.
    """
    compiled: dict[str, gettext.GNUTranslations] = {}
    ids: dict[str, set[str]] = {}
    for lang in LANGS:
        source = resources.files(package).joinpath(f"locale/{lang}/LC_MESSAGES/messages.po")
        with source.open("rb") as po:
            catalog = read_po(po, locale=None)
        empty = sorted(str(m.id) for m in catalog if m.id and not m.string)
        if empty:
            raise ValueError(f"{package} ({lang}): no text for {', '.join(empty)}")
        ids[lang] = {str(m.id) for m in catalog if m.id}
        mo = io.BytesIO()
        write_mo(mo, catalog)
        mo.seek(0)
        compiled[lang] = gettext.GNUTranslations(mo)
    lonely = sorted(ids["zh"] ^ ids["en"])
    if lonely:
        raise ValueError(f"{package}: in one language only: {', '.join(lonely)}")
    return {key: (compiled["zh"].gettext(key), compiled["en"].gettext(key)) for key in sorted(ids["zh"])}


SHARED = catalog_texts("web")
"""The words every service shares: the login page, the error page, the language switch."""


class Texts:
    """One service's texts: the shared table and its own, merged once."""

    def __init__(self, *tables: Mapping[str, tuple[str, str]]) -> None:
        merged: dict[str, tuple[str, str]] = {}
        for table in tables:
            twice = sorted(set(merged) & set(table))
            if twice:
                raise ValueError(f"screen text defined twice: {', '.join(twice)}")
            merged.update(table)
        self.table = merged

    def __contains__(self, key: str) -> bool:
        return key in self.table

    def t(self, key: str, lang: str, **values: object) -> str:
        zh, en = self.table[key]
        text = en if lang == "en" else zh
        return text.format(**values) if values else text
