"""One error root: every code has a text in both languages and exactly one class, and the
code raises each code with its class."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import errors
from core.errors import CLASS_OF, GROUPS, ErrorCode, TongbanError, error, error_text

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "sync", "web", "node", "central", "tongban", "provisioning")
CLASSES = {cls.__name__: cls for cls in {*CLASS_OF.values(), TongbanError}}


def test_every_code_is_in_exactly_one_group() -> None:
    grouped = [code for _, codes in GROUPS for code in codes]
    assert sorted(grouped) == sorted(ErrorCode)
    assert len(grouped) == len(set(grouped))


def test_every_code_has_a_chinese_and_an_english_text() -> None:
    for code in ErrorCode:
        zh, en = error_text(code, "zh"), error_text(code, "en")
        assert zh and en and zh != en, code


def test_error_builds_the_class_of_its_code() -> None:
    assert type(error(ErrorCode.STORE_FULL, "x")) is errors.StoreError
    assert type(error(ErrorCode.SYNC_TIMEOUT)) is errors.SyncError
    assert type(error(ErrorCode.GRANT_WIDENS)) is errors.AuthorityError
    assert error(ErrorCode.SCHEMA, "detail").detail == "detail"


def test_each_class_default_code_is_its_own() -> None:
    for cls in {*CLASS_OF.values()}:
        assert CLASS_OF[cls.default_code] is cls, cls


def _constructions() -> list[tuple[str, int, str, ast.expr | None]]:
    """Every ``XError(...)`` call in the product code: (file, line, class, first argument)."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLASSES:
                    first = (
                        node.args[0]
                        if node.args
                        else next((k.value for k in node.keywords if k.arg == "code"), None)
                    )
                    found.append((str(path.relative_to(ROOT)), node.lineno, node.func.id, first))
    return found


def test_every_error_raised_with_a_code_is_of_that_codes_class() -> None:
    wrong = []
    for where, line, name, first in _constructions():
        if first is None or (isinstance(first, ast.Constant) and first.value is None):
            continue  # the class's default code
        if (
            isinstance(first, ast.Attribute)
            and isinstance(first.value, ast.Name)
            and first.value.id == "ErrorCode"
        ):
            code = ErrorCode[first.attr]
            if CLASS_OF[code] is not CLASSES[name]:
                wrong.append(f"{where}:{line} {name}({code.value}) is a {CLASS_OF[code].__name__}")
        else:
            wrong.append(f"{where}:{line} {name}(<a code known at run time>): use core.errors.error()")
    assert wrong == []


@pytest.mark.parametrize("code", list(ErrorCode))
def test_render_names_the_code_and_its_text(code: ErrorCode) -> None:
    rendered = error(code, "d").render("zh")
    assert rendered.startswith(code.value) and error_text(code, "zh") in rendered
