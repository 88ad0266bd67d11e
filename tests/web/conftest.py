"""Newsroom helpers for every test under tests/web: accounts, an ``auth`` fixture and ``login_as(role)``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from notifier.context import Context
from tests.factories import AuthActions


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
