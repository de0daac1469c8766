"""The body of a JSON request, read strictly: one UTF-8 JSON object or a refusal with a code.

A body is refused before it is parsed when its Content-Type is not ``application/json``
(``E_REQUEST_TYPE``, 415) or it is nested deeper than :data:`MAX_DEPTH` (a parser would
recurse once per level: 100,000 ``[`` would exhaust the stack). It is refused
(``E_REQUEST_JSON``, 400) when it is not UTF-8, not JSON, names a key twice (which of
the two would count is up to the parser: neither does), holds half of a surrogate pair
(it could never be stored) or is not an object. The size cap is the page wrapper's
(:data:`web.render.MAX_BODY`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import ErrorCode, InputError

MAX_DEPTH = 8
"""Objects and arrays inside each other, at most (an intake is 2 deep)."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def parse_object(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object in ``raw``, sent as ``content_type``; see the module docstring."""
    mimetype, *params = (content_type or "").lower().split(";")
    charsets = [p.strip().removeprefix("charset=").strip('"') for p in params if "charset=" in p]
    if mimetype.strip() != "application/json" or any(c not in ("utf-8", "utf8") for c in charsets):
        raise InputError(
            ErrorCode.REQUEST_TYPE,
            f"Content-Type {content_type or 'missing'}: send application/json",
            zh=f"提交格式为 {content_type or '（未注明）'}，应为 application/json",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refused("the body is not UTF-8", "内容不是 UTF-8 编码") from exc
    if depth(text) > MAX_DEPTH:
        raise _refused(f"nested more than {MAX_DEPTH} deep", f"嵌套超过 {MAX_DEPTH} 层")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise _refused(f"the key {exc.key!r} is given twice", f"字段 {exc.key} 出现了两次") from exc
    except (ValueError, RecursionError) as exc:
        raise _refused(f"not JSON: {exc}", "内容不是 JSON") from exc
    if not isinstance(data, dict):
        raise _refused("the body must be a JSON object", "内容须为一个 JSON 对象")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _refused("a text holds half of a surrogate pair", "文字中含有无效的 Unicode 代理字符") from exc
    return data


def depth(text: str) -> int:
    """How deep objects and arrays nest in the JSON ``text`` (brackets inside strings do not
    count); linear in the text, whatever it holds."""
    deepest = level = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        level += 1 if bracket in "[{" else -1
        deepest = max(deepest, level)
    return deepest


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _refused(detail: str, zh: str) -> InputError:
    return InputError(ErrorCode.REQUEST_JSON, detail, zh=zh)
