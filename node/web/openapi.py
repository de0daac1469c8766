"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``, tested against the routes)."""

from __future__ import annotations

from typing import Any

from core.documents import DocType
from core.errors import ErrorCode

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "message_en", "detail"],
            "properties": {
                "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
                "message": {"type": "string", "description": "for the clerk, in Chinese"},
                "message_en": {"type": "string"},
                "detail": {"type": "string"},
                "notice": {"$ref": "#/components/schemas/Notice"},
                "cases": {"type": "array", "items": {"type": "string"}},
            },
        }
    },
}

_INTAKE = {
    "type": "object",
    "required": ["item", "name", "doc_type", "doc_no", "phone"],
    "properties": {
        "item": {"type": "string", "example": "GA-0001"},
        "name": {"type": "string", "maxLength": 50},
        "doc_type": {"type": "string", "enum": [d.value for d in DocType]},
        "doc_no": {"type": "string", "maxLength": 30},
        "phone": {"type": "string", "maxLength": 20},
        "materials": {"type": "array", "items": {"type": "string"}, "description": "codes received"},
        "notes": {"type": "string", "maxLength": 500},
        "confirm_duplicate": {"type": "boolean", "description": "take in although an open case exists"},
    },
}

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


_CASE_NO = {"name": "case_no", "in": "path", "required": True, "schema": {"type": "string"}}


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
                "get": _op("items this node may take in, with mode, decider and materials", "200")
            },
            "/api/v1/cases": {
                "post": _op("take a case in (201), or 422 with the one-time notice", "201", body="Intake"),
                "get": _op(
                    "search by case number, ID number or part of a name",
                    "200",
                    params=[{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}],
                ),
            },
            "/api/v1/notices": {"post": _op("the one-time notice for a form", "200", body="Intake")},
            "/api/v1/cases/{case_no}": {"get": _op("a case and its history", "200", params=[_CASE_NO])},
            "/api/v1/cases/{case_no}/events": {
                "post": _op(
                    "deliver, supply, withdraw or rate (decisions are an approver's)",
                    "200",
                    body="Event",
                    params=[_CASE_NO],
                ),
            },
        },
        "components": {
            "securitySchemes": {
                "device": {"type": "http", "scheme": "bearer", "description": "device token"}
            },
            "schemas": {
                "Error": _ERROR,
                "Intake": _INTAKE,
                "Notice": _NOTICE,
                "Event": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {
                        "event": {"type": "string", "enum": ["supply", "deliver", "withdraw", "rate"]},
                        "reason": {"type": "string"},
                        "delivery": {"type": "string", "enum": ["pickup", "mail", "electronic"]},
                        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                    },
                },
            },
        },
    }
