"""RFC 8292 (VAPID) checks as a push service makes them, with a cache so a reused JWT is verified once."""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from notifier.crypto import b64url_decode
from notifier.settings import vapid_subject_problem

#: RFC 8292 section 2: a push service may refuse an ``exp`` more than 24 hours ahead.
MAX_JWT_LIFETIME = 24 * 60 * 60
#: Clock skew allowed on top of the 24 hours, in seconds.
CLOCK_LEEWAY = 60
_CACHE_LIMIT = 50_000
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_CURVE = ec.SECP256R1()


class VapidError(Exception):
    """The request's VAPID credentials are missing or wrong; ``status`` is 401 or 403."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class _Verified:
    exp: int
    aud: str
    key: bytes


def parse_authorization(authorization: str | None, crypto_key: str | None) -> tuple[str, str]:
    """Split ``vapid t=, k=`` (or legacy ``WebPush <jwt>`` + ``Crypto-Key: p256ecdsa=``) into (jwt, key)."""
    if not authorization:
        raise VapidError("missing Authorization header (expected 'vapid t=<jwt>, k=<key>')")
    scheme, _, params = authorization.strip().partition(" ")
    scheme = scheme.lower()
    token: str | None = None
    key: str | None = None
    if scheme == "vapid":
        for part in params.split(","):
            name, _, value = part.strip().partition("=")
            name = name.strip().lower()
            if name == "t":
                token = value.strip()
            elif name == "k":
                key = value.strip()
    elif scheme == "webpush":
        token = params.strip()
        for part in (crypto_key or "").replace(",", ";").split(";"):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "p256ecdsa":
                key = value.strip().strip('"')
    else:
        raise VapidError(f"unsupported Authorization scheme {scheme!r}; expected 'vapid'")
    if not token:
        raise VapidError("Authorization has no JWT (t=)")
    if not key:
        raise VapidError("no VAPID public key (k= or Crypto-Key p256ecdsa=)")
    return token, key


@functools.lru_cache(maxsize=1024)
def parse_authorization_cached(authorization: str | None, crypto_key: str | None) -> tuple[str, str]:
    """:func:`parse_authorization`, remembered: a sender repeats the same header for hours."""
    return parse_authorization(authorization, crypto_key)


class VapidVerifier:
    """Verify VAPID JWTs (ES256 signature, ``aud``, ``exp``, ``sub``) and remember the good ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, str], _Verified] = {}
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self.verified = 0
        self.cache_hits = 0

    def clear(self) -> None:
        """Forget every cached verification and counter."""
        with self._lock:
            self._verified.clear()
            self._keys.clear()
            self.verified = 0
            self.cache_hits = 0

    def verify(self, token: str, key: str, audience: str, now: float) -> bytes:
        """Check one (jwt, key) pair for ``audience`` at time ``now``; return the raw 65-byte public key."""
        cached = self._verified.get((token, key))
        if cached is not None:
            self._check_claims_time(cached.exp, now)
            if cached.aud != audience:
                raise VapidError(f"JWT aud {cached.aud!r} does not match this push service {audience!r}")
            with self._lock:
                self.cache_hits += 1
            return cached.key
        raw_key, public = self._public_key(key)
        header_b64, _, rest = token.partition(".")
        claims_b64, _, signature_b64 = rest.partition(".")
        if not header_b64 or not claims_b64 or not signature_b64 or "." in signature_b64:
            raise VapidError("JWT must have three dot-separated parts")
        try:
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(signature_b64)
        except ValueError as exc:
            raise VapidError(f"JWT is not base64url JSON: {exc}") from None
        if not isinstance(header, dict) or header.get("alg") != "ES256":
            raise VapidError("JWT header alg must be ES256")
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            raise VapidError("JWT header typ must be JWT")
        if len(signature) != 64:
            raise VapidError(f"JWT signature must be 64 bytes (r||s), got {len(signature)}")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public.verify(der, f"{header_b64}.{claims_b64}".encode("ascii"), _ECDSA_SHA256)
        except InvalidSignature:
            raise VapidError("JWT signature does not verify with the given key (k)") from None
        if not isinstance(claims, dict):
            raise VapidError("JWT claims must be a JSON object")
        aud = claims.get("aud")
        if aud != audience:
            raise VapidError(f"JWT aud {aud!r} does not match this push service {audience!r}")
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise VapidError("JWT exp must be an integer (seconds since the epoch)")
        self._check_claims_time(exp, now)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise VapidError("JWT sub must be a mailto: or https: URI")
        if vapid_subject_problem(sub):
            # What web.push.apple.com answers for a subject at localhost, .local, .invalid ...
            raise VapidError(f"BadJwtToken: JWT sub {sub!r} is no reachable contact", status=403)
        with self._lock:
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[(token, key)] = _Verified(exp, aud, raw_key)
            self.verified += 1
        return raw_key

    @staticmethod
    def _check_claims_time(exp: int, now: float) -> None:
        if exp <= now:
            raise VapidError("JWT has expired (exp is in the past)")
        if exp > now + MAX_JWT_LIFETIME + CLOCK_LEEWAY:
            raise VapidError("JWT exp is more than 24 hours in the future (RFC 8292)")

    def _public_key(self, key: str) -> tuple[bytes, ec.EllipticCurvePublicKey]:
        try:
            raw = b64url_decode(key)
        except ValueError:
            raise VapidError("VAPID key (k) is not base64url") from None
        public = self._keys.get(key)
        if public is None:
            if len(raw) != 65 or raw[0] != 4:
                raise VapidError("VAPID key (k) must be a 65-byte uncompressed P-256 point")
            try:
                public = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, raw)
            except ValueError:
                raise VapidError("VAPID key (k) is not a point on P-256") from None
            with self._lock:
                if len(self._keys) >= _CACHE_LIMIT:
                    self._keys.clear()
                self._keys[key] = public
        return raw, public
