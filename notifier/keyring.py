"""VAPID key rotation: every site's keys over time, shared by every process and host through Redis.

A browser's subscription is bound to the VAPID key it subscribed with: a push signed with any other key
is refused (403). A leaked or lost key would strand every reader bound to it, so a site's key can be
**rotated**: ``notifier vapid rotate`` makes a new key current for new subscriptions, while each
subscription keeps being signed with its own key (its key id is in its record); the pages and the embed
move a reader bound to an old key to the current one on their next visit (one reader, never two: the new
subscription *replaces* the old one). Once no reader is left on an old key, ``notifier vapid retire``
drops it (refused while readers use it, unless forced: those readers then get nothing until they visit).

The key a site is configured with (``VAPID_PRIVATE_KEY[_FILE]`` or the site's ``vapid_key_file``) is the
ring's first key. Keys made by rotation are stored in Redis (``vapid:keys:{site}``), their private part
encrypted with AES-256-GCM under a key derived from ``SECRET_KEY`` (in development without one, from the
deployment's configured key), so every process on every host signs with them without copying files; a
Redis dump alone does not give the private keys away. Processes re-read the ring when ``vapid:version``
moves, at most every :data:`REFRESH` seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from notifier.crypto import b64url_decode, b64url_encode
from notifier.errors import ConfigError, Conflict, NotFound
from notifier.keys import Keys
from notifier.vapid import VapidKey, generate_private_key

#: Seconds between two looks at ``vapid:version`` in one process.
REFRESH = 5.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyInfo:
    """One key of a site's ring, for the CLI and ops."""

    site: str
    key_id: str
    public_key: str
    created: float | None  # None: the configured key (its age is the deployment's)
    current: bool
    retired: bool
    configured: bool


def ring_secret(secret_key: str, deployment: VapidKey) -> bytes:
    """The AES key that encrypts rotated private keys (derived from SECRET_KEY, else the deployment key)."""
    seed = secret_key.encode() or deployment.private_key.private_numbers().private_value.to_bytes(32, "big")
    return hashlib.sha256(b"notifier vapid keyring\x00" + seed).digest()


class KeyRing:
    """The VAPID keys of every site: the configured one and those rotated in, cached in this process."""

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        configured: Mapping[str, VapidKey],
        *,
        secret: bytes,
        subject: str,
        refresh: float = REFRESH,
    ) -> None:
        self.r = r
        self.keys = keys
        self.configured = dict(configured)
        self.subject = subject
        self._aead = AESGCM(secret)
        self.refresh = refresh
        self._lock = threading.Lock()
        self._rotated: dict[str, dict[str, tuple[VapidKey, float]]] = {}
        self._current: dict[str, str] = {}
        self._retired: dict[str, set[str]] = {}
        self._version: str | None = None
        self._checked = float("-inf")
        self._missed = float("-inf")

    # -- reading ------------------------------------------------------------------------------

    def _load(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked < self.refresh:
            return
        with self._lock:
            self._checked = time.monotonic()
            try:
                version = self.r.get(self.keys.vapid_version)
                if version == self._version and not force:
                    return
                sites = sorted(self.configured)
                pipe = self.r.pipeline(transaction=False)
                for site in sites:
                    pipe.hgetall(self.keys.vapid_keys(site))
                    pipe.get(self.keys.vapid_current(site))
                    pipe.smembers(self.keys.vapid_retired(site))
                replies = pipe.execute()
            except redis.RedisError:
                # The keys known so far stay in use; the next look tries again.
                log.warning("VAPID key ring not refreshed: Redis failed", exc_info=True)
                return
            for i, site in enumerate(sites):
                stored, current, retired = replies[3 * i : 3 * i + 3]
                known = self._rotated.setdefault(site, {})
                for key_id, raw in stored.items():
                    if key_id in known:
                        continue
                    entry = json.loads(raw)
                    if not entry.get("private"):
                        continue  # retired: its private part is gone
                    known[key_id] = (self._decrypt(site, key_id, entry["private"]), float(entry["created"]))
                for key_id in [k for k in known if k not in stored or k in retired]:
                    del known[key_id]
                self._current[site] = current or ""
                self._retired[site] = set(retired)
            self._version = version

    def reload(self) -> None:
        """Read the ring again now (every process does by itself within :data:`REFRESH` seconds)."""
        self._load(force=True)

    def current(self, site: str) -> VapidKey:
        """The key new readers of ``site`` subscribe with (its configured key until a rotation)."""
        self._load()
        key_id = self._current.get(site, "")
        found = self._rotated.get(site, {}).get(key_id)
        if found is not None:
            return found[0]
        if site not in self.configured:
            raise NotFound(f"no site {site!r}")
        return self.configured[site]

    def signing_key(self, site: str, key_id: str) -> VapidKey | None:
        """The key to sign a push to a reader of ``site`` bound to ``key_id``; None when it is retired.

        A record without a key id (stored before ids were kept) is signed with the site's current key.
        """
        self._load()
        if not key_id:
            return self.current(site)
        found = self._lookup(site, key_id)
        if found is None and time.monotonic() - self._missed > 1.0:
            # A key rotated in moments ago (a reader subscribed with it before this process looked again).
            self._missed = time.monotonic()
            self._load(force=True)
            found = self._lookup(site, key_id)
        return found

    def _lookup(self, site: str, key_id: str) -> VapidKey | None:
        if key_id in self._retired.get(site, set()):
            return None
        found = self._rotated.get(site, {}).get(key_id)
        if found is not None:
            return found[0]
        configured = self.configured.get(site)
        if configured is not None and configured.key_id == key_id:
            return configured
        # A key of another site (a reader moved between sites) or one this ring never had.
        for other in self._rotated.values():
            if key_id in other:
                return other[key_id][0]
        for key in self.configured.values():
            if key.key_id == key_id:
                return key
        return None

    def find(self, site: str, public_key: str) -> VapidKey | None:
        """The site's key whose public key is ``public_key`` (what a browser subscribed with), if any."""
        self._load()
        wanted = public_key.rstrip("=")
        for attempt in (0, 1):
            for key, _ in self._rotated.get(site, {}).values():
                if key.public_key_b64.rstrip("=") == wanted:
                    return key
            configured = self.configured.get(site)
            if configured is not None and configured.public_key_b64.rstrip("=") == wanted:
                return configured
            if attempt or time.monotonic() - self._missed <= 1.0:
                break
            # Perhaps a key rotated in moments ago, which this process has not read yet.
            self._missed = time.monotonic()
            self._load(force=True)
        return None

    def keys_of(self, site: str) -> list[KeyInfo]:
        """Every key of ``site``'s ring, oldest first (retired ones included)."""
        self._load(force=True)
        current = self.current(site)
        configured = self.configured[site]
        retired = self._retired.get(site, set())
        out = [
            KeyInfo(site, configured.key_id, configured.public_key_b64, None, current is configured,
                    configured.key_id in retired, True)
        ]  # fmt: skip
        stored = self.r.hgetall(self.keys.vapid_keys(site))
        for key_id, raw in sorted(stored.items(), key=lambda item: json.loads(item[1])["created"]):
            entry = json.loads(raw)
            out.append(
                KeyInfo(site, key_id, entry["public"], float(entry["created"]), current.key_id == key_id,
                        key_id in retired or not entry.get("private"), False)
            )  # fmt: skip
        return out

    # -- changing -----------------------------------------------------------------------------

    def rotate(self, site: str, *, now: float | None = None) -> VapidKey:
        """Make a new key current for ``site``'s new readers; every older key keeps signing for its own."""
        if site not in self.configured:
            raise NotFound(f"no site {site!r}")
        private = generate_private_key()
        key = VapidKey(private, self.subject)
        der = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        entry = {
            "created": time.time() if now is None else now,
            "public": key.public_key_b64,
            "private": self._encrypt(site, key.key_id, der),
        }
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.vapid_keys(site), key.key_id, json.dumps(entry))
        pipe.set(self.keys.vapid_current(site), key.key_id)
        pipe.incr(self.keys.vapid_version)
        pipe.execute()
        self._load(force=True)
        return key

    def retire(self, site: str, key_id: str) -> KeyInfo:
        """Stop signing with one of ``site``'s keys (the caller has checked no reader needs it).

        The current key cannot be retired (rotate first). A rotated key's private part is deleted; the
        configured key is only marked (remove it from the configuration to be rid of it).
        """
        infos = {info.key_id: info for info in self.keys_of(site)}
        info = infos.get(key_id)
        if info is None:
            raise NotFound(f"site {site!r} has no VAPID key {key_id!r}; its keys: {', '.join(infos)}")
        if info.current:
            raise Conflict(f"{key_id} is the current key of site {site!r}: rotate to a new key first")
        pipe = self.r.pipeline(transaction=True)
        if not info.configured:
            raw = self.r.hget(self.keys.vapid_keys(site), key_id)
            entry = json.loads(raw) if raw else {"created": time.time(), "public": info.public_key}
            entry.pop("private", None)
            entry["retired"] = time.time()
            pipe.hset(self.keys.vapid_keys(site), key_id, json.dumps(entry))
        pipe.sadd(self.keys.vapid_retired(site), key_id)
        pipe.incr(self.keys.vapid_version)
        pipe.execute()
        self._load(force=True)
        return KeyInfo(**{**info.__dict__, "retired": True})

    # -- the private parts at rest ------------------------------------------------------------

    def _encrypt(self, site: str, key_id: str, der: bytes) -> str:
        nonce = os.urandom(12)
        return b64url_encode(nonce + self._aead.encrypt(nonce, der, f"{site}|{key_id}".encode()))

    def _decrypt(self, site: str, key_id: str, text: str) -> VapidKey:
        raw = b64url_decode(text)
        try:
            der = self._aead.decrypt(raw[:12], raw[12:], f"{site}|{key_id}".encode())
        except InvalidTag as exc:
            raise ConfigError(
                f"cannot decrypt VAPID key {key_id} of site {site!r}: SECRET_KEY differs from the one it was "
                "stored with"
            ) from exc
        private = serialization.load_der_private_key(der, password=None)
        return VapidKey(private, self.subject)  # type: ignore[arg-type]
