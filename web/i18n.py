"""Screen texts in Chinese (the default) and English: the machinery and the shared words.

Each web service keeps its own table of texts and joins it with :data:`SHARED` (the login
page, the error page, the language switch) in a :class:`Texts`. Error messages come from
:mod:`core.errors` (each code has both texts). A key defined twice is refused when the
service is imported; a missing key is an exception, so a test fails instead of a blank
appearing on screen.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGS = ("zh", "en")

SHARED: dict[str, tuple[str, str]] = {
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "user": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "lang_switch": ("English", "中文"),
    "error": ("错误", "Error"),
    "back": ("返回", "Back"),
    "submit": ("提交", "Submit"),
    "none": ("无", "none"),
    "colon": ("：", ": "),
    "lp": ("（", " ("),  # brackets around an aside: full-width in a Chinese sentence
    "rp": ("）", ")"),
}


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
