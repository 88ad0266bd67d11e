"""Newsroom helpers for every test under tests/web: accounts, an ``auth`` fixture and ``login_as(role)``."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from notifier.context import Context
from notifier.users import UserStore

#: Password of the accounts the fixtures create.
PASSWORD = "kata-sandi-rahasia-123"

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a rendered newsroom page."""
    match = _CSRF_FIELD.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


class AuthActions:
    """Log a test client in and out of the newsroom (flaskr's AuthActions, with CSRF)."""

    def __init__(self, client, context: Context) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.context = context
        self.users = UserStore(context.redis, context.keys)

    def create(self, email: str, role: str = "editor", password: str = PASSWORD) -> str:
        """Create an account (if absent) and return its email."""
        if self.users.find(email) is None:
            self.users.create(email, password, role)
        return email.lower()

    def csrf(self, path: str = "/login") -> str:
        """The session's CSRF token, read from a page the way a browser gets it."""
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def login(self, email: str, password: str = PASSWORD, *, follow: bool = False):  # type: ignore[no-untyped-def]
        """POST the login form (with a valid CSRF token); returns the response."""
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": self.csrf()},
            follow_redirects=follow,
        )

    def logout(self):  # type: ignore[no-untyped-def]
        """POST the logout form."""
        return self.client.post("/logout", data={"csrf_token": self.csrf("/newsroom/campaigns")})

    def post(self, path: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def, type-arg]
        """POST a newsroom form with the session's CSRF token added."""
        return self.client.post(
            path, data={**(data or {}), "csrf_token": self.csrf("/newsroom/campaigns")}, **kwargs
        )


@pytest.fixture
def auth(client, context: Context) -> AuthActions:  # type: ignore[no-untyped-def]
    """Newsroom login helper bound to the test client."""
    return AuthActions(client, context)


@pytest.fixture
def login_as(auth: AuthActions) -> Callable[[str], str]:
    """``login_as("editor")``: create ``<role>@newsroom.test`` with that role, log in, return the email."""

    def login(role: str) -> str:
        email = auth.create(f"{role}@newsroom.test", role)
        response = auth.login(email)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return email

    return login
