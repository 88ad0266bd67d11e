"""Reader-facing pages: the demo article, the subscribe walkthrough, preferences, the service worker."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__)
