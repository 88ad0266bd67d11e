"""Newsroom accounts: editors, ops and admins in Redis, argon2 password hashes, login lockout.

Data (names from :mod:`notifier.keys`):

- ``user:{email}`` hash: ``email``, ``role``, ``hash`` (argon2id), ``disabled`` ("1"/"0"),
  ``created``, ``last_login``; ``users`` set of every email.
- ``login-failures:{who}`` counter per email (``email:...``) and per client address (``addr:...``),
  expiring :data:`LOCKOUT_WINDOW` seconds after the first failure of the window.
- ``user-subs:{email}`` set of the subscription ids of the editor's own browsers.
- ``web-session:{token}`` the email behind one login (server side, so logout and disabling end it).
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from notifier.errors import AuthError, Conflict, NotFound, ValidationError
from notifier.keys import Keys
from notifier.subscriptions import SubscriptionStore

ROLES = ("editor", "ops", "admin")
#: Failed logins allowed per email and per client address within :data:`LOCKOUT_WINDOW`.
MAX_FAILURES = 5
#: Seconds a burst of failures is remembered (the lockout lasts until it expires).
LOCKOUT_WINDOW = 15 * 60
#: Passwords shorter than this are refused (NIST SP 800-63B asks for at least 8; we ask a little more).
PASSWORD_MIN = 10
#: argon2 hashes any length, but an unbounded input is a cheap way to burn CPU.
PASSWORD_MAX = 1024
#: Seconds a newsroom login lasts without activity being required (a working day and a half).
SESSION_TTL = 36 * 3600

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginLocked(AuthError):
    """Too many failed logins; ``retry_after`` seconds until the next try is accepted."""

    code = "locked"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class User:
    """One newsroom account (without its password hash)."""

    email: str
    role: str
    disabled: bool
    created: float
    last_login: float | None

    def has_role(self, *roles: str) -> bool:
        """True when the account may act as any of ``roles`` (admin may act as every role)."""
        return not self.disabled and (self.role == "admin" or self.role in roles)


def normalize_email(email: str) -> str:
    """Lower-cased, trimmed email; ValidationError when it does not look like one."""
    email = (email or "").strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > 254
        or any(ch.isspace() or ch in "<>\"',;:/\\" for ch in email)
    ):
        raise ValidationError(f"not an email address: {email[:80]!r}")
    return email


def check_password(password: str) -> str:
    """The password when it is acceptable; ValidationError naming the rule otherwise."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise ValidationError(f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise ValidationError(f"a password has at most {PASSWORD_MAX} characters")
    return password


class UserStore:
    """Accounts, password checks with lockout, login sessions and the editor's own subscriptions."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    # -- accounts -------------------------------------------------------------------------

    def create(self, email: str, password: str, role: str = "editor", *, now: float | None = None) -> User:
        """A new account; Conflict when the email exists."""
        email = normalize_email(email)
        if role not in ROLES:
            raise ValidationError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        check_password(password)
        now = time.time() if now is None else now
        mapping = {
            "email": email,
            "role": role,
            "hash": _hasher.hash(password),
            "disabled": "0",
            "created": repr(now),
            "last_login": "",
        }
        key = self.keys.user(email)
        # HSETNX on the email field first: two concurrent creates cannot both win.
        if not self.r.hsetnx(key, "email", email):
            raise Conflict(f"an account for {email} exists")
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping=mapping)
        pipe.sadd(self.keys.users, email)
        pipe.execute()
        return self.get(email)

    def get(self, email: str) -> User:
        """An account by email; NotFound when absent."""
        data = self.r.hgetall(self.keys.user(email.strip()))
        if not data or "role" not in data:
            raise NotFound(f"no account {email.strip()[:80]}")
        return User(
            email=data["email"],
            role=data["role"],
            disabled=data.get("disabled") == "1",
            created=float(data.get("created") or 0),
            last_login=float(data["last_login"]) if data.get("last_login") else None,
        )

    def find(self, email: str) -> User | None:
        """An account by email, or None."""
        try:
            return self.get(email)
        except NotFound:
            return None

    def list(self) -> builtins.list[User]:
        """Every account, sorted by email (newsrooms have tens of them, not millions)."""
        users = [self.find(e) for e in sorted(self.r.smembers(self.keys.users))]
        return [u for u in users if u is not None]

    def set_disabled(self, email: str, disabled: bool = True) -> User:
        """Disable (or re-enable) an account; a disabled account's sessions stop working at once."""
        user = self.get(email)
        self.r.hset(self.keys.user(user.email), "disabled", "1" if disabled else "0")
        return self.get(user.email)

    def set_password(self, email: str, password: str) -> None:
        """Replace an account's password."""
        user = self.get(email)
        self.r.hset(self.keys.user(user.email), "hash", _hasher.hash(check_password(password)))

    # -- login ----------------------------------------------------------------------------

    def _failure_keys(self, email: str, address: str) -> builtins.list[str]:
        return [
            self.keys.login_failures(f"email:{email.strip().lower()[:254]}"),
            self.keys.login_failures(f"addr:{address or 'unknown'}"),
        ]

    def locked_for(self, email: str, address: str) -> int:
        """Seconds until a login for ``email`` from ``address`` is accepted again (0: not locked)."""
        wait = 0
        keys = self._failure_keys(email, address)
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.ttl(key)
        values = pipe.execute()
        for count, ttl in zip(values[0::2], values[1::2], strict=True):
            if count is not None and int(count) >= MAX_FAILURES:
                wait = max(wait, int(ttl) if int(ttl) > 0 else LOCKOUT_WINDOW)
        return wait

    def _record_failure(self, email: str, address: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        for key in self._failure_keys(email, address):
            pipe.incr(key)
            # NX: the window starts at the first failure and is not extended by later ones.
            pipe.expire(key, LOCKOUT_WINDOW, nx=True)
        pipe.execute()

    def authenticate(self, email: str, password: str, address: str, *, now: float | None = None) -> User:
        """The account when the password matches; AuthError when not, LoginLocked after repeated failures."""
        wait = self.locked_for(email, address)
        if wait:
            raise LoginLocked(
                f"too many failed logins; try again in {max(1, (wait + 59) // 60)} minute(s)",
                retry_after=wait,
            )
        key = self.keys.user(email.strip())
        stored = self.r.hmget(key, "hash", "disabled") if email.strip() else [None, None]
        hashed, disabled = stored[0], stored[1]
        ok = False
        try:
            ok = _hasher.verify(hashed or _DUMMY_HASH, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or hashed is None or disabled == "1":
            self._record_failure(email, address)
            raise AuthError("wrong email or password, or the account is disabled")
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._failure_keys(email, address)[0])
        pipe.hset(key, "last_login", repr(now))
        if _hasher.check_needs_rehash(hashed):
            pipe.hset(key, "hash", _hasher.hash(password))
        pipe.execute()
        return self.get(email)

    def open_session(self, email: str, ttl: int = SESSION_TTL) -> str:
        """A new random session token for ``email`` (a fresh one at every login: no fixation)."""
        token = secrets.token_urlsafe(32)
        self.r.set(self.keys.web_session(token), email, ex=ttl)
        return token

    def session_user(self, token: str) -> User | None:
        """The enabled account behind a session token, or None."""
        if not token or len(token) > 100:
            return None
        email = self.r.get(self.keys.web_session(token))
        user = self.find(email) if email else None
        return user if user is not None and not user.disabled else None

    def close_session(self, token: str) -> None:
        """End a session (logout)."""
        if token:
            self.r.delete(self.keys.web_session(token))

    # -- the editor's own browsers ----------------------------------------------------------

    def link_subscription(self, email: str, sid: str) -> None:
        """Remember that ``sid`` is one of the editor's own browsers."""
        self.r.sadd(self.keys.user_subs(email), sid)

    def own_subscriptions(self, email: str) -> builtins.list[str]:
        """The editor's subscription ids that still exist (stale ones are forgotten)."""
        key = self.keys.user_subs(email)
        sids = sorted(self.r.smembers(key))
        if not sids:
            return []
        exists = SubscriptionStore(self.r, self.keys).exists_many(sids)
        alive = [sid for sid, found in zip(sids, exists, strict=True) if found]
        gone: Iterable[str] = set(sids) - set(alive)
        if gone:
            self.r.srem(key, *gone)
        return alive
