"""Requests and responses of the web service: who is asking, in which language, and the page.

:class:`Ctx` is built once per request from the cookies: the language (``tb_lang``), the
session (``tb_session``) and so the principal. Templates are Jinja2 with autoescaping on,
so anything a clerk or an applicant typed is shown as text, never as markup. Every
response carries a strict Content-Security-Policy: scripts and styles only from the node
itself, no frames, forms only to the node.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from werkzeug.wrappers import Request, Response

from core.clock import local_time
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from node.clerks import Clerks, Principal
from node.desk import Desk
from node.web.i18n import LANGS, t

SESSION_COOKIE = "tb_session"
LANG_COOKIE = "tb_lang"
MAX_BODY = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

STATUS: dict[ErrorCode, int] = {
    ErrorCode.LOGIN_FAILED: 401,
    ErrorCode.SESSION_EXPIRED: 401,
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.LOGIN_THROTTLED: 429,
    ErrorCode.CASE_UNKNOWN: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.MATERIALS_MISSING: 422,
}


def status_for(exc: TongbanError) -> int:
    if exc.code in STATUS:
        return STATUS[exc.code]
    return 403 if isinstance(exc, AuthorityError) else 400


def _environment() -> jinja2.Environment:
    folder = resources.files("node.web").joinpath("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = lambda ts: local_time(ts).strftime("%Y-%m-%d %H:%M") if ts else ""
    env.filters["date"] = lambda ts: local_time(ts).strftime("%Y-%m-%d") if ts else ""
    env.filters["hexid"] = lambda b: bytes(b).hex()[:16] if b else ""
    return env


ENV = _environment()


@dataclass
class Ctx:
    """One request: the desk, the language, the principal (if logged in) and the cookies to set."""

    request: Request
    desk: Desk
    lang: str
    principal: Principal | None = None
    session_error: TongbanError | None = None
    cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def build(cls, request: Request, desk: Desk) -> Ctx:
        wanted = request.args.get("lang")
        lang = wanted if wanted in LANGS else request.cookies.get(LANG_COOKIE, "zh")
        if lang not in LANGS:
            lang = "zh"
        ctx = cls(request, desk, lang)
        if wanted in LANGS:
            ctx.cookies.append((LANG_COOKIE, lang, {"max_age": 365 * 86_400}))
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            try:
                ctx.principal = ctx.clerks.session(token)
            except TongbanError as exc:
                ctx.session_error = exc
        return ctx

    @property
    def clerks(self) -> Clerks:
        return Clerks(self.desk.db, self.desk.store.log, self.desk.code, self.desk.clock)

    def t(self, key: str, **values: object) -> str:
        return t(key, self.lang, **values)

    def form(self) -> Mapping[str, Any]:
        return self.request.form

    def check_size(self) -> None:
        length = self.request.content_length or 0
        if length > MAX_BODY:
            raise InputError(ErrorCode.REQUEST_TOO_LARGE, f"{length} bytes, at most {MAX_BODY}")

    def respond(self, response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        for name, value, options in self.cookies:
            response.set_cookie(name, value, httponly=True, samesite="Strict", path="/", **options)
        return response

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        desk = self.desk
        values.setdefault("error", None)
        html = ENV.get_template(template).render(
            t=self.t,
            lang=self.lang,
            me=self.principal,
            node=desk.config.node,
            banners=desk.banners(),
            sync=desk.sync_status(),
            path=self.request.path,
            now=desk.clock.now(),
            csrf=self.principal.csrf if self.principal else "",
            error_text=self.error_text,
            **values,
        )
        return self.respond(Response(html, status=status, mimetype="text/html"))

    def error_text(self, exc: TongbanError) -> str:
        return exc.text(self.lang)

    def redirect(self, location: str) -> Response:
        return self.respond(Response("", status=303, headers={"Location": location}))

    def to_login(self) -> Response:
        return self.redirect("/login?next=" + quote(self.request.full_path.rstrip("?"), safe=""))

    def json(self, data: Any, status: int = 200) -> Response:
        body = json.dumps(data, ensure_ascii=False, default=_json_default)
        return self.respond(Response(body, status=status, mimetype="application/json"))

    def json_error(self, exc: TongbanError) -> Response:
        return self.json(
            {
                "error": {
                    "code": exc.code.value,
                    "message": exc.text("zh"),
                    "message_en": exc.text("en"),
                    "detail": exc.detail,
                }
            },
            status_for(exc),
        )


def _json_default(value: object) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)


Handler = Callable[..., Response]
