"""Requests and responses of a web service: who is asking, in which language, and the page.

A service's context class (a subclass of :class:`BaseCtx`) is built once per request: the
language (``tb_lang``), the session (``tb_session``) and so the principal. Templates are
Jinja2 with autoescaping on, so anything a clerk, an operator or an applicant typed is
shown as text, never as markup; a service's own templates come first and the kit's
(``login.html``, ``error.html``) fill in. Every response carries a strict
Content-Security-Policy: scripts and styles only from the service itself, no frames,
forms only to the service; behind TLS (:class:`WebOptions`) cookies are ``Secure`` and
responses carry HSTS.

Errors: a refusal is shown with its code and text (:meth:`BaseCtx.render_error`,
:meth:`BaseCtx.json_error`); anything else a handler raises becomes ``E_INTERNAL`` with a
short reference that the log repeats with the traceback (:func:`internal`). An error page
never needs the store: it shows the service's frame from the configuration alone, and
when even the handle cannot be had, the kit's own page (:meth:`BaseCtx.unavailable`).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from core.clock import local_time
from core.errors import (
    AuthorityError,
    ErrorCode,
    InputError,
    InternalError,
    TongbanError,
    error_text,
)
from web.accounts import Accounts, Principal
from web.i18n import LANGS, Texts

log = logging.getLogger("tongban.web")

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
HSTS = "max-age=31536000"

STATUS: dict[ErrorCode, int] = {
    ErrorCode.LOGIN_FAILED: 401,
    ErrorCode.SESSION_EXPIRED: 401,
    ErrorCode.TOKEN_INVALID: 401,
    ErrorCode.LOGIN_THROTTLED: 429,
    ErrorCode.CASE_UNKNOWN: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.REQUEST_TYPE: 415,
    ErrorCode.INTERNAL: 500,
    ErrorCode.FILE_TOO_LARGE: 413,
    ErrorCode.FILE_MISSING: 404,
    ErrorCode.FILE_BUDGET: 507,
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


@dataclass(frozen=True)
class WebOptions:
    """What ``[web]`` says about the deployment (docs/configuration.md)."""

    secure_cookies: bool = False  # cookies only over HTTPS
    hsts: bool = False  # Strict-Transport-Security on every response
    forwarded_for: bool = False  # the client's address from X-Forwarded-For (a proxy in front)

    @classmethod
    def of(cls, section: Any) -> WebOptions:
        """The options of a ``[web]`` section (a node's or central's)."""
        return cls(section.secure_cookies, section.hsts, section.forwarded_for)


def internal(exc: BaseException, request: Request) -> InternalError:
    """``E_INTERNAL`` for what a handler did not expect: a short reference for the person,
    the same reference with the traceback in the log."""
    ref = secrets.token_hex(4)
    log.error("E_INTERNAL %s: %s %s", ref, request.method, request.path, exc_info=exc)
    return InternalError(ErrorCode.INTERNAL, f"reference {ref}", zh=f"错误编号 {ref}")


def as_refusal(exc: BaseException, request: Request) -> TongbanError:
    """``exc`` as a refusal with a code: itself, what werkzeug could not read of the request
    (too large, malformed), or ``E_INTERNAL``."""
    if isinstance(exc, TongbanError):
        return exc
    if isinstance(exc, RequestEntityTooLarge):
        return InputError(ErrorCode.REQUEST_TOO_LARGE, "a part of the form is too large")
    if isinstance(exc, BadRequest):
        return InputError(ErrorCode.FIELD_INVALID, "the request could not be read", zh="无法读取提交的内容")
    return internal(exc, request)


def language(request: Request) -> tuple[str, bool]:
    """The reader's language (``?lang=`` first, then the ``tb_lang`` cookie, else Chinese),
    and whether ``?lang=`` asked for it (then it is remembered in the cookie)."""
    wanted = request.args.get("lang")
    lang = wanted if wanted in LANGS else request.cookies.get(LANG_COOKIE, "zh")
    return (lang if lang in LANGS else "zh"), wanted in LANGS


def environment(package: str) -> jinja2.Environment:
    """The templates of ``package`` (its ``templates/`` folder), then the kit's."""
    folders = [resources.files(p).joinpath("templates") for p in (package, "web")]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in folders]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
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
    accounts (:attr:`accounts`), its frame (:meth:`frame_values`: from the configuration,
    never the store) and what every page of it shows (:meth:`page_values`).
    """

    env: ClassVar[jinja2.Environment]
    texts: ClassVar[Texts]

    def __init__(self, request: Request, options: WebOptions | None = None) -> None:
        self.request = request
        self.options = options or WebOptions()
        self.principal: Principal | None = None
        self.session_error: TongbanError | None = None
        self.cookies: list[tuple[str, str, dict[str, Any]]] = []
        self.lang, asked = language(request)
        if asked:
            self.cookies.append((LANG_COOKIE, self.lang, {"max_age": 365 * 86_400}))

    @property
    def source(self) -> str:
        """The client's address: the peer's, or with ``forwarded_for`` the one the proxy in
        front saw (the last entry of X-Forwarded-For; earlier ones are the client's say)."""
        forwarded = self.request.headers.get("X-Forwarded-For", "") if self.options.forwarded_for else ""
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        return hops[-1] if hops else (self.request.remote_addr or "")

    def identify(self) -> None:
        """Find the principal of the session cookie, if any (call once the accounts exist)."""
        token = self.request.cookies.get(SESSION_COOKIE)
        if token:
            try:
                self.principal = self.accounts.session(token)
            except AuthorityError as exc:  # expired or disabled: log in again (a store's error is shown)
                self.session_error = exc

    @property
    def accounts(self) -> Accounts[Any]:
        raise NotImplementedError

    def frame_values(self) -> dict[str, Any]:
        """What the service's frame needs (its name, the header), from its configuration
        alone: an error page shows it when the store cannot be read."""
        return {}

    def page_values(self) -> dict[str, Any]:
        """What every page of the service shows besides the kit's values (header, banners)."""
        return self.frame_values()

    def t(self, key: str, **values: object) -> str:
        return self.texts.t(key, self.lang, **values)

    def check_size(self, limit: int = MAX_BODY) -> None:
        """``E_REQUEST_TOO_LARGE`` for a body over ``limit``: by its Content-Length now, and
        for one sent without (chunked) while the form is read."""
        self.request.max_content_length = limit
        length = self.request.content_length or 0
        if length > limit:
            raise InputError(ErrorCode.REQUEST_TOO_LARGE, f"{length} bytes, at most {limit}")

    def respond(self, response: Response) -> Response:
        secure_headers(response, self.options)
        for name, value, options in self.cookies:
            response.set_cookie(
                name,
                value,
                httponly=True,
                samesite="Strict",
                path="/",
                secure=self.options.secure_cookies,
                **options,
            )
        return response

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        return self._render(template, status, self.page_values(), values)

    def _render(self, template: str, status: int, frame: dict[str, Any], values: dict[str, Any]) -> Response:
        values.setdefault("error", None)
        values.setdefault("error_at", "")
        html = self.env.get_template(template).render(
            invalid=_marker(values["error"]),
            t=self.t,
            _=self.t,  # the i18n extension's gettext, in the reader's language (screen texts: web.i18n)
            gettext=self.t,
            has_text=self.texts.__contains__,
            lang=self.lang,
            me=self.principal,
            path=self.request.path,
            csrf=self.principal.csrf if self.principal else "",
            error_text=self.error_text,
            text_in=for_reader,
            **frame,
            **values,
        )
        return self.respond(Response(html, status=status, mimetype="text/html"))

    def render_error(self, exc: BaseException) -> Response:
        """The error page of ``exc`` (``E_INTERNAL`` unless it is a refusal), in the service's
        frame without the store; the kit's own page if even that fails."""
        refusal = as_refusal(exc, self.request)
        try:
            return self._render("error.html", status_for(refusal), self.frame_values(), {"exc": refusal})
        except Exception as failed:  # the frame itself failed: the page that needs nothing
            return self.unavailable(self.request, as_refusal(failed, self.request), self.options)

    @classmethod
    def unavailable(cls, request: Request, exc: BaseException, options: WebOptions | None = None) -> Response:
        """The kit's error page, for when there is no handle to the store to build a
        request's context on (the store cannot be opened): needs nothing but the request."""
        refusal = as_refusal(exc, request)
        lang, _ = language(request)

        def text(key: str, **values: object) -> str:
            return cls.texts.t(key, lang, **values)

        html = cls.env.get_template("unavailable.html").render(
            t=text, _=text, gettext=text, lang=lang, exc=refusal, text_in=for_reader
        )
        response = Response(html, status=status_for(refusal), mimetype="text/html")
        return secure_headers(response, options or WebOptions())

    @classmethod
    def unavailable_json(
        cls, request: Request, exc: BaseException, options: WebOptions | None = None
    ) -> Response:
        """:meth:`json_error` for when there is no handle to the store."""
        refusal = as_refusal(exc, request)
        body = json.dumps(error_body(refusal), ensure_ascii=False)
        response = Response(body, status=status_for(refusal), mimetype="application/json")
        return secure_headers(response, options or WebOptions())

    def error_text(self, exc: TongbanError) -> str:
        return for_reader(exc, self.lang)

    def redirect(self, location: str) -> Response:
        return self.respond(Response("", status=303, headers={"Location": location}))

    def to_login(self) -> Response:
        return self.redirect("/login?next=" + quote(self.request.full_path.rstrip("?"), safe=""))

    def json(self, data: Any, status: int = 200) -> Response:
        body = json.dumps(data, ensure_ascii=False, default=_json_default)
        return self.respond(Response(body, status=status, mimetype="application/json"))

    def json_error(self, exc: BaseException) -> Response:
        """The JSON body of a refusal (``E_INTERNAL`` unless ``exc`` is one), with its status."""
        refusal = as_refusal(exc, self.request)
        return self.json(error_body(refusal), status_for(refusal))


def _marker(error: object) -> Any:
    """``invalid(field)`` for a template: the attributes that mark the field an error names
    and put the cursor in it (nothing for every other field)."""
    field = getattr(error, "field", "") if isinstance(error, TongbanError) else ""

    def invalid(name: str) -> Markup:
        return Markup(' aria-invalid="true" autofocus') if field and name == field else Markup("")

    return invalid


def for_reader(exc: TongbanError, lang: str) -> str:
    """The text of ``exc`` for a clerk or an operator reading ``lang``. A Chinese screen
    shows a detail only when it was written in Chinese: one written for the log (a
    checker's English, SQLite's own words) stays in the English text, one click away on
    the page, and in the API's ``detail``."""
    if lang == "zh" and not exc.detail_zh:
        return error_text(exc.code, "zh")
    return exc.text(lang)


def error_body(exc: TongbanError) -> dict[str, Any]:
    """``{"error": {"code", "message", "message_en", "detail"}}``: both texts, for people."""
    return {
        "error": {
            "code": exc.code.value,
            "message": for_reader(exc, "zh"),
            "message_en": exc.text("en"),
            "detail": exc.detail,
        }
    }


def secure_headers(response: Response, options: WebOptions) -> Response:
    """The security headers every response carries (HSTS behind TLS)."""
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    if options.hsts:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _json_default(value: object) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)
