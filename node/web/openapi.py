"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``).

It states every constraint the server enforces on the shape of a request — required
fields, lengths, patterns, enums, no field it does not name, the search query — so that
a request the document allows is refused only for what no schema can say: a check
character, a birth date, an item this node is not granted, a case it does not hold, a
step the case's state does not allow; each such refusal has its stable code in the error
body the document describes. The patterns are built from the same rules the checks use
(:mod:`core.intake`, :mod:`core.catalog`); ``tests/integration/test_api_contract.py``
holds the document to the routes and runs schemathesis against a live node.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from typing import Any

from core.cases import DELIVERY_LABELS, State
from core.documents import DocType
from core.errors import ErrorCode
from core.intake import MAX_DOC_NO, MAX_NAME, MAX_NOTES, MAX_PHONE, MAX_REASON
from core.parts import MAX_PART_NAME, MAX_PARTS

MAX_ITEM = 80  # CODE@NET: another city's item (异地代收)
MAX_QUERY = 40
EVENTS = ("supply", "deliver", "withdraw", "rate")


@cache
def _ranges(categories: frozenset[str]) -> str:
    """A regex character-class body for every code point in ``categories`` (surrogates,
    which JSON text cannot carry whole, left out)."""
    spans: list[tuple[int, int]] = []
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) not in categories:
            continue
        if spans and spans[-1][1] == cp - 1:
            spans[-1] = (spans[-1][0], cp)
        else:
            spans.append((cp, cp))
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in spans)


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


@cache
def _patterns() -> dict[str, str]:
    # core.intake.clean_person_name: nothing invisible (refuse_invisible), no digit
    not_in_name = _ranges(frozenset({"Cc", "Cf", "Zl", "Zp", "Nd", "No"}))
    control = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f"  # core.intake.clean_text
    space = "\\s"  # what the server strips from both ends before it checks
    blank = _ranges(frozenset({"Zs"}))
    return {
        # a name: something besides spaces, nothing invisible and no digit anywhere
        "name": f"^[{blank}]*[^{not_in_name}{blank}][^{not_in_name}]*$",
        # free text: no control character but line breaks and tabs
        "text": f"^[^{control}]*$",
        # required text: that, and something besides spaces
        "required": f"^[^{control}]*[^{control}{space}][^{control}]*$",
        # the forms the server checks once it removed the spaces (core.intake.validate_phone)
        "phone": "^(1[3-9][0-9]{9}|0[1-9][0-9]{1,2}-?[2-9][0-9]{6,7})$",
        # core.catalog.ITEM_CODE, or CODE@NET for another city's item (node.peer_window)
        "item": "^[A-Z]{2,4}-[0-9]{4}(@[!-~]{1,64})?$",
        "material": "^[a-z][a-z0-9_]{1,39}$",  # core.catalog.MATERIAL_CODE
        "case_no": "^[0-9]{6,12}-[0-9]{8}-[0-9]{4,6}$",  # core.intake.CASE_NUMBER
    }


def _text(max_length: int, pattern: str, **more: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": _patterns()[pattern], **more}


def _error() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "message_en", "detail"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
                    "message": {"type": "string", "description": "for the clerk, in Chinese"},
                    "message_en": {"type": "string"},
                    "detail": {"type": "string", "description": "for the log and the operator"},
                    "notice": {"$ref": "#/components/schemas/Notice"},
                    "cases": {"type": "array", "items": {"type": "string"}},
                    "names": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }


def _intake() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["item", "name", "doc_type", "doc_no", "phone"],
        "additionalProperties": False,
        "properties": {
            "item": _text(
                MAX_ITEM,
                "item",
                example="GA-0001",
                description="the key of an item GET /api/v1/items lists (CODE; CODE@NET: another city's)",
            ),
            "name": _text(
                MAX_NAME,
                "name",
                minLength=1,
                description="the applicant's name, as typed (no control or bidi characters, no digit)",
            ),
            "doc_type": {"type": "string", "enum": [d.value for d in DocType]},
            "doc_no": _text(
                MAX_DOC_NO,
                "required",
                minLength=1,
                description="checked against doc_type: format, check character, birth date (E_ID_*)",
            ),
            "phone": _text(MAX_PHONE, "phone", description="a mainland mobile or a landline with area code"),
            "materials": {
                "type": "array",
                "items": {"type": "string", "pattern": _patterns()["material"]},
                "description": "codes of the materials received, among the item's",
            },
            "notes": _text(MAX_NOTES, "text"),
            "agent_name": _text(
                MAX_NAME, "name", description="an agent (代办人/经办人) applies: the agent's name"
            ),
            "agent_doc_type": {"type": "string", "enum": [d.value for d in DocType if d.personal]},
            "agent_doc_no": _text(MAX_DOC_NO, "required", description="the agent's document number"),
            "agent_phone": _text(MAX_PHONE, "phone", description="the agent's phone"),
            "extra": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "the item's extra fields (GET /api/v1/items: fields), by code",
            },
            "parts": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PARTS,
                "items": _part(),
                "description": "多地联办: the other cities' parts of an application for one of our own items,"
                " each one of GET /api/v1/items' part_offers (one per city)",
            },
            "confirm_duplicate": {"type": "boolean", "description": "take in although an open case exists"},
            "confirm_name": {
                "type": "boolean",
                "description": "take in although the ID number was held under another name (checked)",
            },
        },
    }


def _part() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["city", "item", "cat", "name"],
        "additionalProperties": False,
        "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 64, "description": "the city's net"},
            "item": {"type": "string", "minLength": 1, "maxLength": 64, "description": "its item's code"},
            "cat": {"type": "integer", "minimum": 0, "description": "the version of its catalog"},
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_PART_NAME, "description": "its name"},
        },
    }


def _event() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event"],
        "additionalProperties": False,
        "properties": {
            "event": {"type": "string", "enum": list(EVENTS)},
            "reason": _text(MAX_REASON, "text"),
            "delivery": {"type": "string", "enum": [d.value for d in DELIVERY_LABELS]},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        },
        "allOf": [
            {"if": _is("deliver"), "then": {"required": ["delivery"]}},
            {"if": _is("rate"), "then": {"required": ["rating"]}},
        ],
    }


def _is(event: str) -> dict[str, Any]:
    return {"required": ["event"], "properties": {"event": {"const": event}}}


_NOTICE = {
    "type": "object",
    "properties": {
        "item": {"type": "string"},
        "item_name": {"type": "string"},
        "applicant": {"type": "string"},
        "missing": {"type": "array", "items": {"type": "object"}},
        "received": {"type": "array", "items": {"type": "object"}},
        "issued": {"type": "string", "format": "date"},
        "node": {"type": "string"},
    },
}


def fields(schema: str) -> frozenset[str]:
    """The fields a request body of ``schema`` may have; the server refuses any other
    (``E_FIELD_INVALID``)."""
    return frozenset(document()["components"]["schemas"][schema]["properties"])


def _op(
    summary: str, ok: str, *, body: str | None = None, params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"device": []}],
        "responses": {
            ok: {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "default": {
                "description": "an error with its stable code",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if params:
        op["parameters"] = params
    return op


def _case_no() -> dict[str, Any]:
    return {
        "name": "case_no",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": _patterns()["case_no"]},
    }


def _query() -> list[dict[str, Any]]:
    """The search's parameters: its text, and what narrows it."""
    date = {"type": "string", "format": "date"}
    return [
        {
            "name": "q",
            "in": "query",
            "required": True,
            "description": "a case number, or part of an ID number, a phone or a name",
            "schema": _text(MAX_QUERY, "required", minLength=1),
        },
        {
            "name": "state",
            "in": "query",
            "description": "only cases in this state",
            "schema": {"type": "string", "enum": [s.value for s in State]},
        },
        {"name": "since", "in": "query", "description": "taken in on or after (local date)", "schema": date},
        {"name": "until", "in": "query", "description": "taken in on or before (local date)", "schema": date},
    ]


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tongban node API",
            "version": "1",
            "description": "Intake and case status at one service-center node; works with no network.",
        },
        "paths": {
            "/api/v1/status": {"get": _op("node, catalog, banners, sync status, counts", "200")},
            "/api/v1/items": {
                "get": _op(
                    "items this node may take in, with mode, decider, materials and extra fields;"
                    " another city's items (异地代收) with its net (owner) and name, keyed CODE@NET",
                    "200",
                )
            },
            "/api/v1/cases": {
                "post": _op("take a case in (201), or 422 with the one-time notice", "201", body="Intake"),
                "get": _op(
                    "search by case number, part of an ID number, phone or name, state, date",
                    "200",
                    params=_query(),
                ),
            },
            "/api/v1/notices": {"post": _op("the one-time notice for a form", "200", body="Intake")},
            "/api/v1/cases/{case_no}": {"get": _op("a case and its history", "200", params=[_case_no()])},
            "/api/v1/cases/{case_no}/events": {
                "post": _op(
                    "deliver, supply, withdraw or rate (decisions are an approver's)",
                    "200",
                    body="Event",
                    params=[_case_no()],
                ),
            },
        },
        "components": {
            "securitySchemes": {
                "device": {"type": "http", "scheme": "bearer", "description": "device token"}
            },
            "schemas": {"Error": _error(), "Intake": _intake(), "Notice": _NOTICE, "Event": _event()},
        },
    }
