"""Settings and context for the commands: built from the environment, failing with a clean message."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
import redis

from notifier.context import Context
from notifier.errors import ConfigError
from notifier.settings import Settings

T = TypeVar("T")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a clean exit with the reason."""
    try:
        return Settings.from_env(**overrides)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


def load_context(settings: Settings | None = None, *, generate_key: bool = False) -> Context:
    """A Context for CLI commands, failing with a clear message."""
    try:
        return Context.build(settings or load_settings(), generate_key=generate_key)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


def redis_problem(exc: BaseException) -> str:
    """What an operator needs to read about a Redis error: its kind and message, no traceback."""
    kind = "timed out" if isinstance(exc, redis.TimeoutError) else "unreachable"
    return f"Redis {kind} ({exc})"


def patiently(what: str, call: Callable[[], T], *, patience: float) -> T:
    """``call()``, tried again for ``patience`` seconds while Redis is unreachable (a failover); else a
    clean exit naming ``what`` could not be done."""
    deadline = time.monotonic() + patience
    told = False
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise click.ClickException(f"{redis_problem(exc)}: could not {what}") from exc
            if not told:
                click.echo(f"{redis_problem(exc)}; trying to {what} again for {patience:.0f} s", err=True)
                told = True
            time.sleep(1.0)
