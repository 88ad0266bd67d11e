"""VAPID (RFC 8292): the site's key pair and the signed JWTs that identify it to push services."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from notifier.crypto import b64url_decode, b64url_encode
from notifier.errors import ConfigError
from notifier.settings import Settings
from notifier.sites import Sites

#: A JWT is valid for 12 hours (RFC 8292 allows at most 24 h) ...
JWT_LIFETIME = 12 * 3600
#: ... and is replaced about an hour before it expires, so no request carries one about to lapse.
JWT_RENEW_BEFORE = 3600


@dataclass
class VapidKey:
    """The site's VAPID key pair and a per-origin cache of signed JWTs."""

    private_key: ec.EllipticCurvePrivateKey
    subject: str
    _jwts: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def public_key_bytes(self) -> bytes:
        """The 65-byte uncompressed P-256 public point."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @cached_property
    def public_key_b64(self) -> str:
        """The public key as browsers want it for ``applicationServerKey``."""
        return b64url_encode(self.public_key_bytes)

    @cached_property
    def key_id(self) -> str:
        """A short, stable identifier of this key (stored with each subscription)."""
        return self.public_key_b64[:16]

    def jwt_for(self, endpoint: str, now: float | None = None) -> str:
        """A signed JWT for the endpoint's origin, reused until about an hour before expiry."""
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = time.time() if now is None else now
        cached = self._jwts.get(origin)
        if cached and cached[1] - JWT_RENEW_BEFORE > now:
            return cached[0]
        with self._lock:
            exp = int(now) + JWT_LIFETIME
            token = sign_jwt(self.private_key, {"aud": origin, "exp": exp, "sub": self.subject})
            self._jwts[origin] = (token, float(exp))
            return token

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        """The ``Authorization`` header value for a push to ``endpoint``."""
        return f"vapid t={self.jwt_for(endpoint, now)}, k={self.public_key_b64}"


def sign_jwt(private_key: ec.EllipticCurvePrivateKey, claims: dict[str, object]) -> str:
    """An ES256 JWT (raw r||s signature) over ``claims``."""
    header = b64url_encode(json.dumps({"typ": "JWT", "alg": "ES256"}, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}".encode()
    der = private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{header}.{body}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A new P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write the key as PEM readable by its owner only (0600), refusing to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))


def parse_private_key(text: str, *, source: str) -> ec.EllipticCurvePrivateKey:
    """Read a P-256 private key from PEM, or from base64url of the raw 32-byte scalar or DER."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the VAPID private key in {source} is malformed: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(f"the VAPID private key in {source} is not a P-256 (prime256v1) EC key")
    return key


def load_vapid_key(settings: Settings, *, generate: bool = False) -> VapidKey:
    """Load the configured VAPID key; with ``generate``, create the key file if none exists.

    Raises :class:`ConfigError` with a clear message when the key is missing or
    malformed, so that a process fails at start-up rather than at its first send.
    """
    if settings.vapid_private_key:
        key = parse_private_key(settings.vapid_private_key, source="VAPID_PRIVATE_KEY")
        return VapidKey(key, settings.vapid_subject)
    path = settings.vapid_key_path
    if not path.exists():
        if not generate:
            raise ConfigError(
                f"no VAPID private key: set VAPID_PRIVATE_KEY or create {path} with `notifier vapid generate`"
            )
        write_private_key(path, generate_private_key())
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the VAPID key file {path}: {exc}") from exc
    return VapidKey(parse_private_key(text, source=str(path)), settings.vapid_subject)


def load_site_keys(sites: Sites, deployment: VapidKey) -> dict[str, VapidKey]:
    """Each site's VAPID key: its own key file, or the deployment's key. ConfigError for a bad file."""
    keys: dict[str, VapidKey] = {}
    loaded: dict[str, VapidKey] = {}
    for site in sites:
        if site.vapid_key_file is None:
            keys[site.id] = deployment
            continue
        path = str(site.vapid_key_file.resolve())
        if path not in loaded:
            try:
                text = site.vapid_key_file.read_text()
            except OSError as exc:
                raise ConfigError(f"site {site.id!r}: cannot read its VAPID key file {path}: {exc}") from exc
            key = parse_private_key(text, source=f"site {site.id!r} key file {path}")
            loaded[path] = VapidKey(key, deployment.subject)
        keys[site.id] = loaded[path]
    return keys
