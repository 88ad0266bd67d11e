"""The seam between Flask and the domain: the notifier context bound to the current app.

Blueprints import this module, never the ``web`` package itself (whose
``__init__`` is the application factory that imports them), as the Flask
tutorial's ``db.py`` does.
"""

from __future__ import annotations

from flask import Flask, current_app

from notifier.context import Context

#: Key of the context in ``app.extensions``.
EXTENSION = "notifier"


def init_app(app: Flask, context: Context) -> None:
    """Bind ``context`` to ``app``."""
    app.extensions[EXTENSION] = context


def ctx() -> Context:
    """The notifier context bound to the current app."""
    context: Context = current_app.extensions[EXTENSION]
    return context
