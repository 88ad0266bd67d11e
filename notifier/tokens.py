"""API tokens for machines (the CMS, scripts). Only the SHA-256 of a token is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

import redis

from notifier.errors import Conflict, ValidationError
from notifier.keys import Keys

TOKEN_PREFIX = "ntk_"  # noqa: S105 - a marker of our tokens, not a secret


def digest(token: str) -> str:
    """SHA-256 hex of a token (tokens carry 256 random bits, so a fast hash is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Create, check and revoke API tokens."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    def create(self, name: str, role: str = "editor", *, sites: Sequence[str] = ()) -> str:
        """A new token for ``name`` (limited to ``sites`` when given); the clear text is returned once and
        never stored."""
        name = name.strip()
        if not name or len(name) > 64 or not all(ch.isalnum() or ch in "-_.@" for ch in name):
            raise ValidationError("a token name is 1-64 letters, digits, '-', '_', '.' or '@'")
        if role not in ("editor", "ops", "admin"):
            raise ValidationError("role must be editor, ops or admin")
        if self.r.hexists(self.keys.tokens, name):
            raise Conflict(f"a token named {name!r} exists; revoke it first")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        d = digest(token)
        pipe = self.r.pipeline(transaction=True)
        record = {
            "name": name,
            "role": role,
            "created": int(time.time()),
            "sites": ",".join(sorted(set(sites))),
        }
        pipe.hset(self.keys.token(d), mapping=record)
        pipe.hset(self.keys.tokens, name, d)
        pipe.execute()
        return token

    def check(self, token: str) -> dict[str, str] | None:
        """The token's record (name, role) when it is valid, else None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        d = digest(token)
        record = self.r.hgetall(self.keys.token(d))
        if not record or not hmac.compare_digest(self.r.hget(self.keys.tokens, record["name"]) or "", d):
            return None
        return record

    def names(self) -> list[str]:
        """Names of the tokens that exist."""
        return sorted(self.r.hkeys(self.keys.tokens))

    def revoke(self, name: str) -> bool:
        """Revoke the token called ``name``."""
        d = self.r.hget(self.keys.tokens, name)
        if not d:
            return False
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.keys.token(d))
        pipe.hdel(self.keys.tokens, name)
        pipe.execute()
        return True


def token_sites(record: Mapping[str, str]) -> list[str] | None:
    """The sites a token may act on (None: every site; a token of before sites is one of these)."""
    sites = [s for s in (record.get("sites") or "").split(",") if s]
    return sites or None
