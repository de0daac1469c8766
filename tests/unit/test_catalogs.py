"""The screen texts are gettext catalogs, and no text is missing in either language.

Every message a template or a page asks for by a literal id (``_('receipt.title')`` in a
template, ``ctx.t("done.merged")`` in Python), as Babel extracts it, is in the catalogs of
the service that shows it, in Chinese and in English; each catalog has the same messages
in both languages, none empty. Ids built at run time (``'state.' + case.state``) come from
the tables of core (:mod:`core.cases`), which have both languages by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from central.department.web.i18n import TEXTS as DEPARTMENT
from central.web.i18n import TEXTS as CENTRAL
from node.web.i18n import TEXTS as NODE
from web.i18n import SHARED, Texts

ROOT = Path(__file__).parents[2]
KEYWORDS = {**DEFAULT_KEYWORDS, "t": None}
JINJA = "jinja2.ext:babel_extract"
OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


SERVICES = {"node": NODE, "central": CENTRAL, "central/department": DEPARTMENT}
"""Each service's folder and its texts; a folder inside another is that service's alone."""


def asked(folder: str, *, python: bool = True) -> Iterator[tuple[str, str]]:
    """(message id, where) of every literal message asked for under ``folder``, but not
    under the folder of another service inside it (the department desk's, in central's)."""
    inner = [other[len(folder) + 1 :] + "/" for other in SERVICES if other.startswith(folder + "/")]
    methods = [("**/templates/**.html", JINJA)] + ([("**.py", "python")] if python else [])
    found = extract_from_dir(
        ROOT / folder, methods, {"**/templates/**.html": OPTIONS}, keywords=KEYWORDS, strip_comment_tags=True
    )
    for filename, line, message, _comments, _context in found:
        if any(filename.startswith(prefix) for prefix in inner):
            continue
        if isinstance(message, str) and message and not message.endswith("."):
            # an id ending in "." is the fixed part of one built at run time ("done." + key)
            yield message, f"{folder}/{filename}:{line}"


@pytest.mark.parametrize(("folder", "texts"), list(SERVICES.items()))
def test_every_text_a_page_asks_for_is_in_both_languages(folder: str, texts: Texts) -> None:
    messages = list(asked(folder))
    assert len(messages) > (40 if "/" in folder else 100)  # the extraction found the templates
    missing = sorted({f"{where} {key}" for key, where in messages if key not in texts})
    assert missing == []
    for key, _where in messages:
        zh, en = texts.t(key, "zh"), texts.t(key, "en")
        assert zh.strip() and en.strip(), key


def test_the_shared_templates_ask_for_what_every_service_has() -> None:
    keys = list(asked("web", python=False))
    assert keys and all(key in SHARED or key == "app" for key, _ in keys)  # "app": each service's name
    missing = sorted(
        {f"{where} {key}" for key, where in keys for texts in SERVICES.values() if key not in texts}
    )
    assert missing == []


@pytest.mark.parametrize("package", ["web", "node/web", "central/web", "central/department/web"])
def test_each_catalog_has_the_same_messages_in_both_languages_none_empty(package: str) -> None:
    catalogs = {}
    for lang in ("zh", "en"):
        with (ROOT / package / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalogs[lang] = {str(m.id): str(m.string) for m in read_po(po) if m.id}
    assert catalogs["zh"].keys() == catalogs["en"].keys()
    for lang, messages in catalogs.items():
        assert [key for key, text in messages.items() if not text.strip()] == [], lang


def test_a_message_missing_in_one_language_is_refused_when_the_service_starts(tmp_path: Path) -> None:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    import web.i18n

    for lang, texts in (("zh", {"a": "甲", "b": "乙"}), ("en", {"a": "A"})):
        catalog = Catalog(locale=lang, fuzzy=False)
        for key, text in texts.items():
            catalog.add(key, text)
        folder = tmp_path / "pkg" / "locale" / lang / "LC_MESSAGES"
        folder.mkdir(parents=True)
        with (folder / "messages.po").open("wb") as po:
            write_po(po, catalog)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ValueError, match="in one language only: b"):
            web.i18n.catalog_texts("pkg")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pkg", None)
