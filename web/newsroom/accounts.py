"""Accounts (admin): list, create, disable and re-enable newsroom accounts."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from notifier.errors import Conflict, NotFound, ValidationError
from notifier.users import ROLES
from web.auth import require_role
from web.context import ctx
from web.newsroom.common import (
    account,
)


@require_role("admin")
def user_admin() -> ResponseReturnValue:
    """List accounts; create one, or disable / re-enable one."""
    c = ctx()
    store = c.users
    error = ""
    status = 200
    if request.method == "POST":
        action = request.form.get("action", "")
        email = request.form.get("email", "")
        try:
            if action == "create":
                chosen = [s for s in request.form.getlist("sites") if c.sites.find(s) is not None]
                store.create(
                    email, request.form.get("password", ""), request.form.get("role", "editor"), sites=chosen
                )
                flash(_("Account %(email)s created.", email=email.strip().lower()), "ok")
            elif action in ("grant", "revoke"):
                site = c.sites.get(request.form.get("site", ""))
                who = email.strip().lower()
                if action == "grant":
                    store.grant(email, site.id, request.form.get("role", "editor"))
                    flash(_("%(email)s now works on %(site)s.", email=who, site=site.name), "ok")
                else:
                    store.revoke(email, site.id)
                    flash(_("%(email)s no longer works on %(site)s.", email=who, site=site.name), "ok")
            elif action in ("disable", "enable"):
                if action == "disable" and email.strip().lower() == account().email:
                    raise ValidationError(_("You cannot disable your own account."))
                store.set_disabled(email, action == "disable")
                address = email.strip().lower()
                if action == "disable":
                    flash(_("Account %(email)s disabled: its sessions ended.", email=address), "ok")
                else:
                    flash(_("Account %(email)s enabled again.", email=address), "ok")
            else:
                raise ValidationError(_("Unknown action %(action)s.", action=repr(action[:20])))
            return redirect(url_for("editor.user_admin"))
        except (ValidationError, Conflict, NotFound) as exc:
            error, status = exc.message, 400 if isinstance(exc, ValidationError) else 409
    role_names = {
        "editor": _("editor (writes and sends)"),
        "ops": _("ops (dashboard, cancels)"),
        "admin": _("admin (everything, accounts)"),
    }
    html = render_template(
        "editor/users.html",
        users=store.list(),
        roles=ROLES,
        role_names=role_names,
        error=error,
        sites=list(c.sites),
        site_names={s.id: s.name for s in c.sites},
    )
    return Response(html, status=status, mimetype="text/html")
