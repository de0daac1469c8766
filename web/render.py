"""Requests and responses of a web service: who is asking, in which language, and the page.

A service's context class (a subclass of :class:`BaseCtx`) is built once per request: the
language (``tb_lang``), the session (``tb_session``) and so the principal. Templates are
Jinja2 with autoescaping on, so anything a clerk, an operator or an applicant typed is
shown as text, never as markup; a service's own templates come first and the kit's
(``login.html``, ``error.html``) fill in. Every response carries a strict
Content-Security-Policy: scripts and styles only from the service itself, no frames,
forms only to the service.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import quote

import jinja2
from werkzeug.wrappers import Request, Response

from core.clock import local_time
from core.errors import AuthorityError, ErrorCode, InputError, TongbanError
from web.accounts import Accounts, Principal
from web.i18n import LANGS, Texts

SESSION_COOKIE = "tb_session"
LANG_COOKIE = "tb_lang"
LOGIN_COOKIE = "tb_login"
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
    ErrorCode.CERT_UNKNOWN: 400,  # asked about a node that holds no certificate: the input's fault
    # The store, not the request: the request may be sent again as it is.
    ErrorCode.STORE_BUSY: 503,
    ErrorCode.STORE_READONLY: 503,
    ErrorCode.STORE_IO: 503,
    ErrorCode.STORE_FULL: 507,
    ErrorCode.STORE_CONFLICT: 409,
    ErrorCode.STORE_CORRUPT: 500,
    ErrorCode.STORE_FAULT: 500,
    ErrorCode.STORE_MISSING: 500,
    ErrorCode.STORE_TOO_NEW: 500,
}


def status_for(exc: TongbanError) -> int:
    """The HTTP status of a refusal: by its code, else 403 for authority and 400 for the rest."""
    if exc.code in STATUS:
        return STATUS[exc.code]
    return 403 if isinstance(exc, AuthorityError) else 400


def environment(package: str) -> jinja2.Environment:
    """The templates of ``package`` (its ``templates/`` folder), then the kit's."""
    folders = [resources.files(p).joinpath("templates") for p in (package, "web")]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in folders]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = lambda ts: local_time(ts).strftime("%Y-%m-%d %H:%M") if ts else ""
    env.filters["date"] = lambda ts: local_time(ts).strftime("%Y-%m-%d") if ts else ""
    env.filters["hexid"] = lambda b: bytes(b).hex()[:16] if b else ""
    return env


class BaseCtx:
    """One request: the language, the principal (if logged in) and the cookies to set.

    A service subclasses it with its templates (:attr:`env`), texts (:attr:`texts`), its
    accounts (:attr:`accounts`) and what every page of it shows (:meth:`page_values`).
    """

    env: ClassVar[jinja2.Environment]
    texts: ClassVar[Texts]

    def __init__(self, request: Request) -> None:
        self.request = request
        self.principal: Principal | None = None
        self.session_error: TongbanError | None = None
        self.cookies: list[tuple[str, str, dict[str, Any]]] = []
        wanted = request.args.get("lang")
        lang = wanted if wanted in LANGS else request.cookies.get(LANG_COOKIE, "zh")
        self.lang = lang if lang in LANGS else "zh"
        if wanted in LANGS:
            self.cookies.append((LANG_COOKIE, self.lang, {"max_age": 365 * 86_400}))

    def identify(self) -> None:
        """Find the principal of the session cookie, if any (call once the accounts exist)."""
        token = self.request.cookies.get(SESSION_COOKIE)
        if token:
            try:
                self.principal = self.accounts.session(token)
            except TongbanError as exc:
                self.session_error = exc

    @property
    def accounts(self) -> Accounts[Any]:
        raise NotImplementedError

    def page_values(self) -> dict[str, Any]:
        """What every page of the service shows besides the kit's values (header, banners)."""
        return {}

    def t(self, key: str, **values: object) -> str:
        return self.texts.t(key, self.lang, **values)

    def check_size(self, limit: int = MAX_BODY) -> None:
        length = self.request.content_length or 0
        if length > limit:
            raise InputError(ErrorCode.REQUEST_TOO_LARGE, f"{length} bytes, at most {limit}")

    def respond(self, response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        for name, value, options in self.cookies:
            response.set_cookie(name, value, httponly=True, samesite="Strict", path="/", **options)
        return response

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("error", None)
        html = self.env.get_template(template).render(
            t=self.t,
            lang=self.lang,
            me=self.principal,
            path=self.request.path,
            csrf=self.principal.csrf if self.principal else "",
            error_text=self.error_text,
            **self.page_values(),
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
