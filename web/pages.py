"""Page handlers of a web service: the :func:`page` wrapper, login and logout, static files.

A service class mixes in :class:`Sessions` and defines ``context(request)`` (its
:class:`web.render.BaseCtx`), ``unavailable(request, exc)`` (the page when there is no
store to build a context on) and ``slow(fn, *args)`` (CPU-heavy work off the event loop).
:func:`page` wraps every handler: body size cap, login, role, CSRF on every POST, and
errors shown as a page with their code and text in the reader's language — whatever a
handler raises: what is not a refusal is ``E_INTERNAL`` (:func:`web.render.internal`),
never the server's own traceback page.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from nameko.web.handlers import http
from werkzeug.wrappers import Request, Response

from core.errors import AuthorityError, ErrorCode, TongbanError
from web.accounts import csrf_ok, verify_password
from web.render import LOGIN_COOKIE, MAX_BODY, SESSION_COOKIE, BaseCtx, status_for

Handler = Callable[..., Response]


def page(*roles: str, public: bool = False, max_body: int = MAX_BODY) -> Callable[[Handler], Handler]:
    """Wrap a page handler ``fn(self, ctx, **url_args)``; see the module docstring.

    ``max_body`` raises the body size cap for a page that takes a file upload.
    """

    def decorate(fn: Handler) -> Handler:
        @functools.wraps(fn)
        def handler(self: Any, request: Request, **kwargs: Any) -> Response:
            try:
                ctx: BaseCtx = self.context(request)
            except Exception as exc:  # no handle to the store: the kit's page says why
                return self.unavailable(request, exc)  # type: ignore[no-any-return]
            try:
                ctx.identify()
                ctx.check_size(max_body)
                if not public:
                    if ctx.principal is None:
                        return ctx.to_login()
                    if roles:
                        ctx.principal.require(*roles)
                    if request.method == "POST" and not csrf_ok(ctx.principal.csrf, request.form.get("csrf")):
                        raise AuthorityError(ErrorCode.CSRF)
                return fn(self, ctx, **kwargs)
            except Exception as exc:  # a refusal with its code, anything else E_INTERNAL
                return ctx.render_error(exc)

        return handler

    return decorate


class Sessions:
    """``/login`` and ``/logout``, the same for every service of the kit."""

    def context(self, request: Request) -> BaseCtx:
        raise NotImplementedError

    def unavailable(self, request: Request, exc: Exception) -> Response:
        raise NotImplementedError

    def slow(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    @http("GET", "/login")
    @page(public=True)
    def login_form(self, ctx: BaseCtx) -> Response:
        return ctx.render(
            "login.html", next=safe_next(ctx.request.args.get("next")), login_csrf=_login_csrf(ctx)
        )

    @http("POST", "/login")
    @page(public=True)
    def login(self, ctx: BaseCtx) -> Response:
        form = ctx.request.form
        nxt = safe_next(form.get("next"))
        if not csrf_ok(ctx.request.cookies.get(LOGIN_COOKIE, ""), form.get("login_csrf")):
            exc: TongbanError = AuthorityError(ErrorCode.CSRF)
            return ctx.render("login.html", status=403, next=nxt, login_csrf=_login_csrf(ctx), error=exc)
        user = form.get("user", "").strip().lower()
        try:
            ctx.accounts.check_login(
                user, form.get("password", ""), ctx.source, lambda s, p: self.slow(verify_password, s, p)
            )
            token, _ = ctx.accounts.start_session(user)  # a write: a read-only store refuses it here
        except TongbanError as exc:
            return ctx.render(
                "login.html", status=status_for(exc), next=nxt, login_csrf=_login_csrf(ctx), error=exc
            )
        ctx.cookies.append((SESSION_COOKIE, token, {}))
        return ctx.redirect(nxt)

    @http("POST", "/logout")
    @page()
    def logout(self, ctx: BaseCtx) -> Response:
        token = ctx.request.cookies.get(SESSION_COOKIE, "")
        ctx.accounts.end_session(token)
        ctx.cookies.append((SESSION_COOKIE, "", {"max_age": 0}))
        return ctx.redirect("/login")


def safe_next(value: str | None) -> str:
    """Only local paths: a login link must not send anyone to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _login_csrf(ctx: BaseCtx) -> str:
    """A double-submit token for the login form (there is no session yet)."""
    token = ctx.request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    ctx.cookies.append((LOGIN_COOKIE, token, {"max_age": 3600}))
    return token


STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}


def static_file(name: str, files: Mapping[str, str]) -> Response:
    """``name`` from the ``static/`` folder of the package ``files[name]``; 404 for others.

    Every asset is served by the service itself: no CDN, nothing fetched from elsewhere.
    """
    package = files.get(name)
    if package is None:
        return Response("not found", status=404)
    data = resources.files(package).joinpath("static").joinpath(name).read_bytes()
    response = Response(data, mimetype=STATIC_TYPES[name[name.rfind(".") :]])
    response.headers["Cache-Control"] = "max-age=3600"
    return response
