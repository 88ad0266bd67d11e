"""Newsroom login: sessions, lockout, CSRF and role checks against the real app and Redis."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from notifier.users import BACKOFF_MAX, FREE_FAILURES, LOCKOUT_WINDOW, MAX_FAILURES, UserStore
from tests.factories import PASSWORD, AuthActions, csrf_from


def test_login_page_renders_with_csrf_field(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="password"' in html and csrf_from(html)
    assert "<script>" not in html


def test_login_ok_opens_a_new_session_and_redirects(client, auth, context) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("Redaksi@Kabarkini.Example", "editor")
    with client.session_transaction() as sess:
        sess["sid"] = "planted-by-an-attacker"
        sess["csrf"] = "x" * 40
    response = client.post(
        "/login?next=/newsroom/compose",
        data={"email": email, "password": PASSWORD, "csrf_token": "x" * 40},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/newsroom/compose"
    with client.session_transaction() as sess:
        assert sess["sid"] != "planted-by-an-attacker"
        assert sess["csrf"] != "x" * 40
        assert sess["user"] == "redaksi@kabarkini.example"
        assert context.redis.get(context.keys.web_session(sess["sid"])) == "redaksi@kabarkini.example|0"
    page = client.get("/newsroom/campaigns")
    assert page.status_code == 200
    assert "redaksi@kabarkini.example" in page.get_data(as_text=True)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_refuses_a_foreign_next(client, auth) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": auth.csrf(), "next": "//evil.example/x"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/newsroom/campaigns"


def test_bad_password_and_unknown_email_are_refused_alike(client, auth) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    wrong = auth.login(email, "not-the-password")
    unknown = auth.login("nobody@newsroom.test", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Email atau kata sandi salah" in response.get_data(as_text=True)
    assert client.get("/newsroom/campaigns").status_code == 302


def test_disabled_account_cannot_log_in_and_its_session_ends(client, auth, context) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    assert auth.login(email).status_code == 302
    assert client.get("/newsroom/campaigns").status_code == 200
    UserStore(context.redis, context.keys).set_disabled(email)
    assert client.get("/newsroom/campaigns").status_code == 302
    assert auth.login(email).status_code == 401


def login_from(client, auth, email: str, password: str, address: str):  # type: ignore[no-untyped-def]
    """POST the login form as a client at ``address``."""
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": auth.csrf()},
        environ_base={"REMOTE_ADDR": address},
    )


def test_guesses_from_elsewhere_never_lock_the_owner_out(client, auth, context) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    # The owner logged in from the newsroom before: that network is known to the account.
    assert login_from(client, auth, email, PASSWORD, "198.51.100.7").status_code == 302
    auth.logout()
    # Someone guesses from another network, waiting out the account's backoff each time, until that network
    # is locked out.
    for _ in range(MAX_FAILURES):
        context.redis.hset(context.keys.login_throttle(email), "next", 0)
        assert login_from(client, auth, email, "wrong-password-x", "203.0.113.9").status_code == 401
    locked = login_from(client, auth, email, PASSWORD, "203.0.113.9")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= LOCKOUT_WINDOW
    assert "Coba lagi dalam 15 menit" in locked.get_data(as_text=True)
    # The owner, at the newsroom, is not held at all.
    assert login_from(client, auth, email, PASSWORD, "198.51.100.7").status_code == 302
    auth.logout()
    context.redis.delete(context.keys.login_failures("addr:203.0.113.9"))
    # From a network the account has never logged in from, the owner is slowed (a few seconds), not denied.
    for _ in range(FREE_FAILURES + 1):
        context.redis.hset(context.keys.login_throttle(email), "next", 0)
        login_from(client, auth, email, "wrong-password-x", f"192.0.2.{_ + 1}")
    slowed = login_from(client, auth, email, PASSWORD, "192.0.2.200")
    assert slowed.status_code == 429
    wait = int(slowed.headers["Retry-After"])
    assert 0 < wait <= BACKOFF_MAX
    assert f"Coba lagi dalam {wait} detik" in slowed.get_data(as_text=True)
    context.redis.hset(context.keys.login_throttle(email), "next", 0)  # the wait has passed
    assert login_from(client, auth, email, PASSWORD, "192.0.2.200").status_code == 302


def test_parallel_guesses_for_one_account_are_not_all_verified(app, auth, context) -> None:  # type: ignore[no-untyped-def]
    import threading

    email = auth.create("editor@newsroom.test")
    statuses: list[int] = []
    ready = threading.Barrier(10)

    def guess(i: int) -> None:
        client = app.test_client()
        token = AuthActions(client, context).csrf()
        ready.wait()
        response = client.post(
            "/login",
            data={"email": email, "password": f"wrong-password-{i}", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"203.0.113.{i + 1}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each verified guess is a 401; the others were refused before the argon2 verify.
    verified = statuses.count(401)
    assert sorted(set(statuses)) <= [401, 429] and 1 <= verified <= FREE_FAILURES + 1, statuses
    assert int(context.redis.hget(context.keys.login_throttle(email), "fails")) == verified


def test_a_password_change_ends_every_session(client, auth, context) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    other = client.application.test_client()  # the same editor on a second device
    assert auth.login(email).status_code == 302
    assert AuthActions(other, context).login(email).status_code == 302
    assert client.get("/newsroom/campaigns").status_code == 200
    assert other.get("/newsroom/campaigns").status_code == 200
    UserStore(context.redis, context.keys).set_password(email, "a-brand-new-password")
    assert client.get("/newsroom/campaigns").status_code == 302
    assert other.get("/newsroom/campaigns").status_code == 302
    assert auth.login(email).status_code == 401  # the old password no longer works
    assert auth.login(email, "a-brand-new-password").status_code == 302


def test_notifier_users_password_ends_the_users_sessions_and_keeps_others(  # type: ignore[no-untyped-def]
    client, auth, context, settings_env
) -> None:
    """The operator's way to change a password (``notifier users password``, the CLI itself) refuses the
    old session cookies of that user on every device; another user's session goes on."""
    from notifier_cli import main as cli

    email = auth.create("editor@newsroom.test")
    phone = client.application.test_client()
    colleague = client.application.test_client()
    assert auth.login(email).status_code == 302
    assert AuthActions(phone, context).login(email).status_code == 302
    colleague_auth = AuthActions(colleague, context)
    assert colleague_auth.login(colleague_auth.create("colleague@newsroom.test")).status_code == 302
    for browser in (client, phone, colleague):
        assert browser.get("/newsroom/campaigns").status_code == 200
    result = CliRunner(env=settings_env).invoke(
        cli, ["users", "password", "Editor@Newsroom.test", "--password-stdin"], input="a-brand-new-password\n"
    )
    assert result.exit_code == 0 and "password changed for editor@newsroom.test" in result.output, (
        result.output
    )
    for browser in (client, phone):
        refused = browser.get("/newsroom/campaigns")
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert colleague.get("/newsroom/campaigns").status_code == 200, "another user's session ended too"
    assert auth.login(email).status_code == 401
    assert auth.login(email, "a-brand-new-password").status_code == 302


def test_lockout_per_client_address_across_emails(client, auth) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    for i in range(MAX_FAILURES):
        auth.login(f"guess{i}@newsroom.test", "wrong-password-x")
    assert auth.login(email).status_code == 429


def test_logout_ends_the_session_server_side(client, auth, context) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    auth.login(email)
    with client.session_transaction() as sess:
        stolen = dict(sess)
    response = auth.logout()
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/newsroom/campaigns").status_code == 302
    # Replaying the old cookie contents does not bring the session back.
    with client.session_transaction() as sess:
        sess.update(stolen)
    assert client.get("/newsroom/campaigns").status_code == 302
    assert not context.redis.exists(context.keys.web_session(stolen["sid"]))


def test_logout_needs_post(client, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    assert client.get("/logout").status_code == 405
    assert client.get("/newsroom/campaigns").status_code == 200


@pytest.mark.parametrize(("token", "status"), [(None, 400), ("wrong-token-" + "x" * 30, 403)])
def test_csrf_refused_without_or_with_a_wrong_token(client, login_as, token, status) -> None:  # type: ignore[no-untyped-def]
    login_as("admin")
    data = {"action": "create", "email": "new@newsroom.test", "password": PASSWORD, "role": "editor"}
    if token:
        data["csrf_token"] = token
    response = client.post("/newsroom/users", data=data)
    assert response.status_code == status
    assert "oken keamanan" in response.get_data(as_text=True)
    assert client.application.extensions["notifier"].redis.exists("notifier:user:new@newsroom.test") == 0


def test_csrf_accepted_with_the_token(client, auth, login_as, context) -> None:  # type: ignore[no-untyped-def]
    login_as("admin")
    data = {"action": "create", "email": "new@newsroom.test", "password": PASSWORD, "role": "editor"}
    response = auth.post("/newsroom/users", data)
    assert response.status_code == 302
    assert UserStore(context.redis, context.keys).get("new@newsroom.test").role == "editor"


def test_csrf_applies_to_the_login_form_too(client, auth) -> None:  # type: ignore[no-untyped-def]
    email = auth.create("editor@newsroom.test")
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 400


def test_api_is_not_csrf_checked(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/campaigns", json={"title": "x"})
    assert response.status_code == 401  # bearer token missing, not a CSRF page


def test_anonymous_is_sent_to_login_and_json_gets_401(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/newsroom/compose")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/newsroom/compose")
    assert client.get("/newsroom/audience.json").status_code == 401


def test_editor_cannot_manage_users_but_admin_can(client, auth, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("editor")
    response = client.get("/newsroom/users")
    assert response.status_code == 403
    assert "editor@newsroom.test" in response.get_data(as_text=True)
    auth.logout()
    login_as("admin")
    assert client.get("/newsroom/users").status_code == 200
    # Admin has every role's rights.
    assert client.get("/newsroom/compose").status_code == 200


def test_ops_sees_campaigns_but_cannot_compose(client, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("ops")
    assert client.get("/newsroom/campaigns").status_code == 200
    assert client.get("/newsroom/compose").status_code == 403


def test_require_role_on_a_route_of_another_blueprint(context) -> None:  # type: ignore[no-untyped-def]
    from flask import Blueprint

    from tests.factories import AuthActions
    from web import create_app
    from web.auth import require_role

    ops_bp = Blueprint("opsprobe", __name__)

    @ops_bp.get("/ops-probe")
    @require_role("ops", "admin")
    def probe() -> str:
        return "ops only"

    app = create_app({"TESTING": True}, context=context)
    app.register_blueprint(ops_bp)
    client = app.test_client()
    actions = AuthActions(client, context)
    assert client.get("/ops-probe").status_code == 302
    actions.create("editor@newsroom.test", "editor")
    actions.login("editor@newsroom.test")
    assert client.get("/ops-probe").status_code == 403
    actions.logout()
    actions.create("ops@newsroom.test", "ops")
    actions.login("ops@newsroom.test")
    assert client.get("/ops-probe").get_data(as_text=True) == "ops only"


def test_user_store_rules(context) -> None:  # type: ignore[no-untyped-def]
    from notifier.errors import Conflict, ValidationError

    store = UserStore(context.redis, context.keys)
    with pytest.raises(ValidationError):
        store.create("not-an-email", PASSWORD)
    with pytest.raises(ValidationError):
        store.create("a@b.example", "short")
    with pytest.raises(ValidationError):
        store.create("a@b.example", PASSWORD, "root")
    user = store.create("A@B.example", PASSWORD, "ops")
    assert user.email == "a@b.example" and user.has_role("ops") and not user.has_role("editor")
    assert "argon2id" in context.redis.hget(context.keys.user("a@b.example"), "hash")
    assert PASSWORD not in str(context.redis.hgetall(context.keys.user("a@b.example")))
    with pytest.raises(Conflict):
        store.create("a@b.example", PASSWORD)
