"""Helpers for the security tests: apps with rate limits on, a bearer token, Redis snapshots."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask

from notifier.context import Context
from notifier.settings import Settings
from notifier.tokens import TokenStore


@pytest.fixture
def make_app(settings_env: dict[str, str], r: redis.Redis) -> Callable[..., Flask]:
    """Build an app from the test environment plus ``overrides`` (env-var names → values)."""

    def build(**overrides: str) -> Flask:
        from web import create_app

        settings = Settings.from_env({**settings_env, **overrides})
        return create_app({"TESTING": True}, context=Context.build(settings, client=r))

    return build


@pytest.fixture
def api_token(context: Context) -> str:
    """A valid API token (its clear text; Redis holds only the digest)."""
    return TokenStore(context.redis, context.keys).create("security-tests")
