"""Settings and context for the commands: built from the environment, failing with a clean message."""

from __future__ import annotations

from typing import Any

import click

from notifier.context import Context
from notifier.errors import ConfigError
from notifier.settings import Settings


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
