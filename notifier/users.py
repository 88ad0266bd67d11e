"""Newsroom accounts: editors, ops and admins in Redis, argon2 password hashes, login throttling.

Guessing is slowed where it comes from and per account, and nobody can lock an editor out:

- **per client network** (an IPv4 address or an IPv6 /64, as the site sees it behind its trusted
  proxies): :data:`MAX_FAILURES` failed logins within :data:`LOCKOUT_WINDOW` refuse further tries
  from there until the window ends. It only stops the network that failed.
- **per account**: one password check at a time (a second login for the same account while one
  is being verified is refused *before* the argon2 verify, so parallel guesses cost one verify,
  not ten), and after :data:`FREE_FAILURES` failures in a row each further try waits
  :func:`backoff` seconds (2, 4, 8, ... at most :data:`BACKOFF_MAX`). A network the account has
  logged in from before (:data:`KNOWN_DAYS` days) is not held by the account's backoff: the owner at
  their desk gets in while someone elsewhere guesses.
- A password change ends every session of the account (each session carries the account's
  session epoch; the change moves it on), except the one that made the change when it says so.

Data (names from :mod:`notifier.keys`):

- ``user:{email}`` hash: ``email``, ``role``, ``sites`` (``site=role,...``: the role on each site; an
  ``admin`` acts on every site; no field: an account of before sites, its role on every site until the
  worker's upgrade gives it to the default site), ``hash`` (argon2id), ``disabled`` ("1"/"0"),
  ``created``, ``last_login``, ``epoch`` (sessions of another epoch are over); ``users`` set.
- ``login-failures:addr:{network}`` counter per client network, expiring :data:`LOCKOUT_WINDOW`
  seconds after the first failure of the window.
- ``login-throttle:{email}`` hash ``fails`` (in a row), ``next`` (no check before), ``busy`` (a check
  in progress until); ``login-known:{email}`` sorted set network → last successful login.
- ``user-subs:{email}`` set of the subscription ids of the editor's own browsers.
- ``web-session:{token}`` ``email|epoch`` of one login (server side, so logout and disabling end it).
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from notifier.errors import AuthError, Conflict, NotFound, ValidationError
from notifier.keys import Keys
from notifier.sites import DEFAULT_SITE_ID
from notifier.subscriptions import SubscriptionStore

ROLES = ("editor", "ops", "admin")
#: Failed logins allowed per client network within :data:`LOCKOUT_WINDOW`.
MAX_FAILURES = 5
#: Failures in a row an account takes before its tries are spaced out by :func:`backoff`.
FREE_FAILURES = 3
#: Longest wait between two tries on one account (seconds).
BACKOFF_MAX = 60
#: Seconds one password check holds its account (longer than any argon2 verify; released when done).
CHECK_HOLD = 5
#: Days a network an account logged in from stays known (exempt from the account's backoff).
KNOWN_DAYS = 30
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
    """Too many failed logins from this network; ``retry_after`` seconds until the next try is accepted."""

    code = "locked"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginThrottled(LoginLocked):
    """This account's tries are spaced out after failures (or one is being checked); wait a few seconds."""

    code = "throttled"


def backoff(failures: int) -> int:
    """Seconds an account waits before its next try after ``failures`` failures in a row."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(BACKOFF_MAX, 2 ** (failures - FREE_FAILURES + 1)))


# Claim the right to check one password of an account now (KEYS: its throttle hash; ARGV: now, hold seconds):
# 0 when claimed, else whole seconds to wait (a check in progress, or the backoff after failures).
_CLAIM_CHECK = """
local now = tonumber(ARGV[1])
local got = redis.call('HMGET', KEYS[1], 'busy', 'next')
local busy, nxt = tonumber(got[1] or '0'), tonumber(got[2] or '0')
if busy > now then return math.max(1, math.ceil(busy - now)) end
if nxt > now then return math.max(1, math.ceil(nxt - now)) end
redis.call('HSET', KEYS[1], 'busy', now + tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], 86400)
return 0
"""

# A failed check (KEYS: throttle hash; ARGV: now, then the backoff of 1..BACKOFF_STEPS failures): one more
# failure in a row, the next try spaced out, the claim released.
_FAILED_CHECK = """
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local steps = #ARGV - 1
local wait = tonumber(ARGV[1 + math.min(fails, steps)])
redis.call('HSET', KEYS[1], 'next', tonumber(ARGV[1]) + wait, 'busy', 0)
redis.call('EXPIRE', KEYS[1], 86400)
return fails
"""
_BACKOFF_STEPS = tuple(backoff(n) for n in range(1, FREE_FAILURES + 8))


@dataclass(frozen=True)
class User:
    """One newsroom account (without its password hash).

    ``role`` is ``admin`` (every role on every site) or the account's main role; ``site_roles`` gives its
    role on each site it works on (None: an account of before sites, ``role`` on every site).
    """

    email: str
    role: str
    disabled: bool
    created: float
    last_login: float | None
    site_roles: dict[str, str] | None = None

    @property
    def admin(self) -> bool:
        """An administrator: every role on every site, and the accounts."""
        return not self.disabled and self.role == "admin"

    def has_role(self, *roles: str, site: str | None = None) -> bool:
        """True when the account may act as any of ``roles``: on ``site``, or on some site when None."""
        if self.disabled:
            return False
        if self.role == "admin":
            return True
        if self.site_roles is None:
            return self.role in roles
        if site is None:
            return any(role in roles for role in self.site_roles.values())
        return self.site_roles.get(site) in roles

    def sites_for(self, *roles: str) -> builtins.list[str] | None:
        """The sites where the account has one of ``roles`` (None: every site)."""
        if self.disabled:
            return []
        if self.role == "admin" or self.site_roles is None:
            return None if self.role == "admin" or self.role in roles else []
        return sorted(site for site, role in self.site_roles.items() if role in roles)


def parse_site_roles(value: str | None) -> dict[str, str] | None:
    """``kabar=editor,warta=ops`` → ``{"kabar": "editor", "warta": "ops"}`` (None for a missing field)."""
    if value is None:
        return None
    out: dict[str, str] = {}
    for part in value.split(","):
        site, _, role = part.partition("=")
        if site and role in ROLES and role != "admin":
            out[site] = role
    return out


def format_site_roles(roles: Mapping[str, str]) -> str:
    """The stored form of a site → role mapping."""
    return ",".join(f"{site}={role}" for site, role in sorted(roles.items()))


def _account(email: str) -> str:
    """The name an account's throttle and known networks go by (whether or not the account exists)."""
    return (email or "").strip().lower()[:254]


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

    def __init__(self, r: redis.Redis, keys: Keys, default_site: str = DEFAULT_SITE_ID) -> None:
        self.r = r
        self.keys = keys
        #: The site of an editor or ops account created without naming one.
        self.default_site = default_site

    # -- accounts -------------------------------------------------------------------------

    def create(
        self,
        email: str,
        password: str,
        role: str = "editor",
        *,
        sites: Iterable[str] = (),
        now: float | None = None,
    ) -> User:
        """A new account with ``role`` on each of ``sites`` (none named: the default site; an admin: every
        site); Conflict when it exists."""
        email = normalize_email(email)
        if role not in ROLES:
            raise ValidationError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        chosen = sorted(set(sites)) or [self.default_site]
        check_password(password)
        now = time.time() if now is None else now
        mapping = {
            "email": email,
            "role": role,
            "sites": "" if role == "admin" else format_site_roles(dict.fromkeys(chosen, role)),
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
            site_roles=None if data["role"] == "admin" else parse_site_roles(data.get("sites")),
        )

    def grant(self, email: str, site: str, role: str) -> User:
        """Give an account ``role`` on ``site`` (an editor or ops role; admins have every site already)."""
        user = self.get(email)
        if role not in ("editor", "ops"):
            raise ValidationError("a site role is editor or ops")
        if user.role == "admin":
            raise ValidationError(f"{user.email} is an admin: every site already")
        roles = dict(user.site_roles or {})
        roles[site] = role
        self.r.hset(self.keys.user(user.email), "sites", format_site_roles(roles))
        return self.get(user.email)

    def revoke(self, email: str, site: str) -> User:
        """Take an account's role on ``site`` away (its other sites stay)."""
        user = self.get(email)
        roles = dict(user.site_roles or {})
        roles.pop(site, None)
        self.r.hset(self.keys.user(user.email), "sites", format_site_roles(roles))
        return self.get(user.email)

    def adopt_legacy(self, default_site: str) -> int:
        """Give every account of before sites its role on ``default_site`` only; returns how many."""
        moved = 0
        for user in self.list():
            if user.role != "admin" and user.site_roles is None:
                self.r.hset(self.keys.user(user.email), "sites", format_site_roles({default_site: user.role}))
                moved += 1
        return moved

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

    def set_password(self, email: str, password: str, *, keep_session: str | None = None) -> int:
        """Replace an account's password and end its sessions (but ``keep_session``); returns its epoch."""
        user = self.get(email)
        hashed = _hasher.hash(check_password(password))
        key = self.keys.user(user.email)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, "hash", hashed)
        pipe.hincrby(key, "epoch", 1)
        pipe.delete(self.keys.login_throttle(user.email))
        epoch = int(pipe.execute()[1])
        if keep_session and self.r.get(self.keys.web_session(keep_session)):
            self.r.set(self.keys.web_session(keep_session), f"{user.email}|{epoch}", keepttl=True)
        return epoch

    # -- login ----------------------------------------------------------------------------

    def _address_key(self, address: str) -> str:
        return self.keys.login_failures(f"addr:{address or 'unknown'}")

    def locked_for(self, email: str, address: str) -> int:
        """Seconds until a login from ``address`` (a client network) is accepted again (0: not locked)."""
        key = self._address_key(address)
        pipe = self.r.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        if count is not None and int(count) >= MAX_FAILURES:
            return int(ttl) if int(ttl) > 0 else LOCKOUT_WINDOW
        return 0

    def known_network(self, email: str, address: str, now: float | None = None) -> bool:
        """True when the account logged in from ``address`` (a client network) in the last KNOWN_DAYS days."""
        now = time.time() if now is None else now
        seen = self.r.zscore(self.keys.login_known(_account(email)), address or "unknown")
        return seen is not None and now - float(seen) < KNOWN_DAYS * 86400

    def authenticate(self, email: str, password: str, address: str, *, now: float | None = None) -> User:
        """The account when the password matches; AuthError when not.

        :class:`LoginLocked` when ``address`` (the client network) failed too often, and
        :class:`LoginThrottled` when the account's next try must wait (both before any argon2 work).
        """
        now = time.time() if now is None else now
        wait = self.locked_for(email, address)
        if wait:
            raise LoginLocked(
                f"too many failed logins; try again in {max(1, (wait + 59) // 60)} minute(s)",
                retry_after=wait,
            )
        account = _account(email)
        throttle = self.keys.login_throttle(account)
        known = self.known_network(account, address, now)
        if not known:
            wait = int(self.r.eval(_CLAIM_CHECK, 1, throttle, repr(now), CHECK_HOLD))
            if wait:
                raise LoginThrottled(
                    f"this account had failed logins: try again in {wait} s", retry_after=wait
                )
        # The check releases the account (a failure spaces the next try out, a success clears it); a
        # process dying mid-check leaves it held for CHECK_HOLD seconds at most.
        return self._check(email, password, address, account, throttle, now)

    def _check(
        self, email: str, password: str, address: str, account: str, throttle: str, now: float
    ) -> User:
        key = self.keys.user(email.strip())
        stored = self.r.hmget(key, "hash", "disabled") if email.strip() else [None, None]
        hashed, disabled = stored[0], stored[1]
        ok = False
        try:
            ok = _hasher.verify(hashed or _DUMMY_HASH, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or hashed is None or disabled == "1":
            pipe = self.r.pipeline(transaction=True)
            address_key = self._address_key(address)
            pipe.incr(address_key)
            # NX: the window starts at the first failure and is not extended by later ones.
            pipe.expire(address_key, LOCKOUT_WINDOW, nx=True)
            pipe.eval(_FAILED_CHECK, 1, throttle, repr(now), *_BACKOFF_STEPS)
            pipe.execute()
            raise AuthError("wrong email or password, or the account is disabled")
        known_key = self.keys.login_known(account)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(throttle)
        pipe.zadd(known_key, {address or "unknown": now})
        pipe.zremrangebyscore(known_key, "-inf", now - KNOWN_DAYS * 86400)
        pipe.expire(known_key, KNOWN_DAYS * 86400)
        pipe.hset(key, "last_login", repr(now))
        if _hasher.check_needs_rehash(hashed):
            pipe.hset(key, "hash", _hasher.hash(password))
        pipe.execute()
        return self.get(email)

    def open_session(self, email: str, ttl: int = SESSION_TTL) -> str:
        """A new random session token for ``email`` (a fresh one at every login: no fixation)."""
        token = secrets.token_urlsafe(32)
        epoch = int(self.r.hget(self.keys.user(email), "epoch") or 0)
        self.r.set(self.keys.web_session(token), f"{email}|{epoch}", ex=ttl)
        return token

    def session_user(self, token: str) -> User | None:
        """The enabled account behind a session token, or None (also once its password changed)."""
        if not token or len(token) > 100:
            return None
        value = self.r.get(self.keys.web_session(token))
        if not value:
            return None
        email, _, epoch = value.rpartition("|") if "|" in value else (value, "", "0")
        current = self.r.hget(self.keys.user(email), "epoch") or "0"
        if epoch != current:
            self.r.delete(self.keys.web_session(token))  # ended by a password change
            return None
        user = self.find(email)
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
