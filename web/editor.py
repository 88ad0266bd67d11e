"""The newsroom: compose and send alerts, test sends, the campaign list and live campaign pages.

Pages are plain forms (CSRF-checked by :mod:`web.auth`); the JSON endpoints they call
(``audience.json``, ``budget.json``, ``prefill.json``, ``campaigns/<cid>.json``) are read-only GETs.
Scripts live in ``static/editor/`` (no inline scripts: the CSP allows ``script-src 'self'``).

The pages themselves live in :mod:`web.newsroom` (one module per room); this module holds the blueprint,
its error pages and template filters, and the table of its routes below.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from notifier.errors import Conflict, Forbidden, NotFound, NotifierError, ValidationError
from web.auth import bp as login_bp
from web.auth import error_page, require_role
from web.newsroom import accounts, campaigns, compose, prefill
from web.newsroom.common import newsroom_time, source_name, state_name

bp = Blueprint("editor", __name__, url_prefix="/newsroom")


def register(app: Flask) -> None:
    """Register the newsroom blueprints (login and the editor pages) on ``app``."""
    app.register_blueprint(login_bp)
    app.register_blueprint(bp)


bp.add_app_template_filter(newsroom_time, "newsroom_time")
bp.add_app_template_filter(state_name, "state_name")
bp.add_app_template_filter(source_name, "source_name")


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return error_page(404, _("Not found"), _("There is no such campaign (deleted, or a mistyped address)."))


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden) -> Response:
    return error_page(403, _("No access"), exc.message)


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict) -> Response:
    return error_page(409, _("Not possible now"), exc.message)


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> Response:
    return error_page(400, _("Refused"), exc.message)


@bp.get("/")
@require_role("editor", "ops")
def index() -> ResponseReturnValue:
    """The newsroom's home is the campaign list."""
    return redirect(url_for("editor.campaigns"))


def _domain_error_page(exc: NotifierError) -> Response:
    """Any other domain error as a page (never a 500 for bad input)."""
    return error_page(400, _("Refused"), exc.message)


bp.register_error_handler(NotifierError, _domain_error_page)

# -- the newsroom's routes (endpoint names are the view functions' names) -----------------------------
bp.add_url_rule("/compose", view_func=compose.compose)
bp.add_url_rule("/compose", view_func=compose.compose_submit, methods=["POST"])
bp.add_url_rule("/audience.json", view_func=compose.audience)
bp.add_url_rule("/budget.json", view_func=compose.budget)
bp.add_url_rule("/prefill.json", view_func=prefill.prefill)
bp.add_url_rule("/readers", view_func=campaigns.readers)
bp.add_url_rule("/campaigns", view_func=campaigns.campaigns)
bp.add_url_rule("/campaigns/<cid>", view_func=campaigns.campaign)
bp.add_url_rule("/campaigns/<cid>.json", view_func=campaigns.campaign_json)
bp.add_url_rule("/campaigns/<cid>/cancel", view_func=campaigns.cancel, methods=["POST"])
bp.add_url_rule("/campaigns/<cid>/duplicate", view_func=campaigns.duplicate, methods=["POST"])
bp.add_url_rule("/campaigns/<cid>/approve", view_func=campaigns.approve, methods=["POST"])
bp.add_url_rule("/users", view_func=accounts.user_admin, methods=["GET", "POST"])
