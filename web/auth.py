"""Newsroom login: sessions, CSRF protection, role checks, lockout after repeated failures.

- A login opens a fresh server-side session (a random token in Redis, see
  :meth:`notifier.users.UserStore.open_session`) and clears whatever the cookie held before,
  so a session planted before login is worthless (fixation) and logout or disabling an account
  ends it at once.
- CSRF: every POST/PUT/PATCH/DELETE outside the bearer-token API (``/api/v1``) and static files
  must carry the session's token, as the form field ``csrf_token`` or the header ``X-CSRF-Token``
  (for the pages' ``fetch`` calls). Templates get ``csrf_token()``. Missing → 400 page, wrong → 403.
- ``require_role("ops", "admin")``: anonymous → redirect to the login page (401 JSON for ``.json``
  endpoints), wrong role → 403 page. ``admin`` passes every check.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext

from notifier.errors import AuthError
from notifier.users import LoginLocked, LoginThrottled, User, UserStore
from web.context import ctx
from web.errors import json_error
from web.security import client_address, client_network

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Blueprints whose unsafe requests are not CSRF-checked: the API authenticates with bearer tokens
#: (or is called by the reader's own page with no session to ride on).
CSRF_EXEMPT_BLUEPRINTS = frozenset(
    {"api", "cms"}
)  # cms: the HMAC-signed CMS webhook (web/cms.py), no session
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_TOKEN = "sid"  # noqa: S105 - the session key name, not a secret
SESSION_CSRF = "csrf"


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; a request without the cookie gets an empty session at once.

    The stock interface builds its signer on every request, cookie or not; most requests
    (the reader's API calls, pages of readers who never logged in) carry none.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session when no session cookie was sent; else the stock (verifying) open."""
        if app.secret_key and (
            "HTTP_COOKIE" not in request.environ or not request.cookies.get(self.get_cookie_name(app))
        ):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """As the stock interface: nothing to write for a session that is still empty and unchanged."""
        if not session and not session.modified:
            if session.accessed:  # the response depended on the (absent) cookie
                if "Vary" in response.headers:
                    response.vary.add("Cookie")
                else:
                    response.headers["Vary"] = "Cookie"
            return
        super().save_session(app, session, response)


def users() -> UserStore:
    """The account store of the current app."""
    return ctx().users


def current_user() -> User | None:
    """The logged-in, enabled account of this request, or None."""
    if "user" not in g:
        token = session.get(SESSION_TOKEN)
        g.user = users().session_user(token) if isinstance(token, str) else None
    return cast("User | None", g.user)


def link_own_subscription(sid: str) -> bool:
    """When a logged-in account's browser subscribes, remember ``sid`` as one of its own browsers."""
    user = current_user()
    if user is None:
        return False
    users().link_subscription(user.email, sid)
    return True


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def _wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


#: The stable JSON error code of each status (the page's title is translated, the code is not).
_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    429: "too_many_requests",
}


def error_page(status: int, title: str, message: str, **extra: Any) -> Response:
    """An HTML error page for the newsroom (JSON for ``.json`` endpoints)."""
    if _wants_json():
        return json_error(status, _ERROR_CODES.get(status, "error"), message, **extra)
    html = render_template(
        "editor/error.html", status=status, heading=title, message=message, user=current_user(), **extra
    )
    return Response(html, status=status, mimetype="text/html")


def _safe_next(target: str | None) -> str:
    """A same-site path to return to after login (never another host: no open redirect)."""
    if not target:
        return url_for("editor.campaigns")
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return url_for("editor.campaigns")
    return target


def require_role(*roles: str) -> Callable[[F], F]:
    """Decorator: the view needs a logged-in account with one of ``roles`` (admin always passes)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                if _wants_json():
                    return json_error(401, "login_required", _("Log in to the newsroom first."))
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not user.has_role(*roles):
                return error_page(
                    403,
                    _("No access"),
                    _(
                        "The account %(email)s (%(role)s) cannot open this page; it needs the role "
                        "%(roles)s. An administrator can change that on the Accounts page.",
                        email=user.email,
                        role=user.role,
                        roles=" / ".join(roles),
                    ),
                )
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


@bp.before_app_request
def _check_csrf() -> Response | None:
    """Refuse unsafe requests without this session's CSRF token (see the module docstring)."""
    if request.method not in UNSAFE_METHODS:
        return None
    if request.blueprint in CSRF_EXEMPT_BLUEPRINTS or request.endpoint in (None, "static"):
        return None
    if current_app.config.get("CSRF_DISABLED"):
        return None
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = session.get(SESSION_CSRF)
    if not sent:
        return error_page(
            400, _("Refused"), _("The form carries no security token. Reload the page and try again.")
        )
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        return error_page(
            403,
            _("Refused"),
            _(
                "The form's security token is wrong or expired (a new session?). Reload the page and try "
                "again."
            ),
        )
    return None


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "current_user": current_user, "site_name": ctx().settings.site_name}


def _client_network() -> str:
    """The client's network (its address; an IPv6 /64): behind NOTIFIER_TRUSTED_PROXIES, the reader's own."""
    return client_network(client_address())


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form; on success a fresh session and a redirect to ``next``."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(target)
        return render_template("editor/login.html", next=target, email="", error="")
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    try:
        user = users().authenticate(email, password, _client_network())
    except LoginThrottled as exc:
        response = error_page(
            429,
            _("Too many attempts"),
            ngettext(
                "This account had several failed logins. Try again in %(num)s second.",
                "This account had several failed logins. Try again in %(num)s seconds.",
                exc.retry_after,
            ),
            retry_after=exc.retry_after,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except LoginLocked as exc:
        minutes = max(1, (exc.retry_after + 59) // 60)
        response = error_page(
            429,
            _("Too many attempts"),
            ngettext(
                "Too many failed logins. Try again in %(num)s minute.",
                "Too many failed logins. Try again in %(num)s minutes.",
                minutes,
            ),
            retry_after=exc.retry_after,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AuthError:
        html = render_template(
            "editor/login.html",
            next=target,
            email=email,
            error=_("Wrong email or password, or the account is disabled."),
        )
        return html, 401
    old = session.get(SESSION_TOKEN)
    if isinstance(old, str):
        users().close_session(old)
    session.clear()
    session[SESSION_TOKEN] = users().open_session(user.email)
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    session["user"] = user.email
    session.permanent = True
    g.user = user
    return redirect(target)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session (server side too) and go back to the login page."""
    token = session.get(SESSION_TOKEN)
    if isinstance(token, str):
        users().close_session(token)
    session.clear()
    g.user = None
    return redirect(url_for("auth.login"))
