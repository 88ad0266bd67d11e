"""Settings: one typed object built from the environment, shared by site, workers and CLI.

Every variable is documented in ``.env.example``; one line each here with its
coercer and default. Nothing reads ``os.environ`` anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from notifier.errors import ConfigError

T = TypeVar("T")

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: What ``NOTIFIER_LOG_LEVEL`` accepts (``debug`` adds RQ's own lines and full tracebacks on a terminal).
LOG_LEVELS = ("debug", "info", "warning", "error")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _bool_or_auto(value: str) -> bool | None:
    """``auto`` (None: decided per process, see :func:`workers.logging.wants_json`) or a boolean."""
    return None if value.strip().lower() == "auto" else _bool(value)


def _log_level(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return lowered


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _rate(value: str) -> str:
    """A rate limit like ``30/minute`` or ``5 per second`` (checked with the ``limits`` parser)."""
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError as exc:
        raise ValueError(f"not a rate limit like 30/minute: {value!r}") from exc
    return value.strip()


def parse_quiet_hours(value: str) -> tuple[int, int] | None:
    """Parse ``22-6`` (local hours, end exclusive) or an empty string for none."""
    value = value.strip()
    if not value:
        return None
    start, _, end = value.partition("-")
    try:
        hours = (int(start), int(end))
    except ValueError:
        raise ValueError(f"quiet hours must be two hours 0-23 like 22-6, got {value!r}") from None
    if not all(0 <= h <= 23 for h in hours) or hours[0] == hours[1]:
        raise ValueError(f"quiet hours must be two different hours 0-23 like 22-6, got {value!r}")
    return hours


#: Host names no push service can reach a person at: Apple answers 403 BadJwtToken for a ``sub`` there.
UNREACHABLE_HOSTS = ("localhost",)
UNREACHABLE_SUFFIXES = (".localhost", ".local", ".invalid", ".internal", ".localdomain")


def vapid_subject_problem(subject: str) -> str:
    """Why ``subject`` is no usable VAPID ``sub`` (a reachable ``mailto:`` or ``https:`` URL), or ''."""
    if subject.startswith("mailto:"):
        address = subject[len("mailto:") :].split("?", 1)[0]
        local, at, host = address.rpartition("@")
        if not at or not local or not host or any(ch in address for ch in " <>,"):
            return "must be mailto:someone@your-domain (one address)"
    elif subject.startswith("https:"):
        try:
            host = urlsplit(subject).hostname or ""
        except ValueError:
            host = ""
        if not host:
            return "must be an https: URL with a host"
    else:
        return "must be a mailto: or https: URL (Apple rejects anything else)"
    host = host.lower().rstrip(".")
    if "." not in host or host in UNREACHABLE_HOSTS or host.endswith(UNREACHABLE_SUFFIXES):
        return (
            f"names {host!r}, a host no push service can reach you at (Apple answers 403 BadJwtToken): "
            "use an address or page at your real domain"
        )
    return ""


@dataclass(frozen=True)
class Settings:
    """Configuration of one process; see ``.env.example`` for each field's meaning."""

    env: str = "development"
    redis_url: str | None = None
    redis_prefix: str = "notifier:"
    data_dir: Path = Path("var")
    secret_key: str = ""
    vapid_private_key: str | None = None
    vapid_private_key_file: Path | None = None
    vapid_subject: str = "mailto:push@example.com"
    push_hosts: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_window: int = 300
    webhook_mode: str = "auto"
    webhook_topics: tuple[str, ...] = ()
    site_name: str = "Kabar Kini"
    public_url: str = "http://127.0.0.1:8000"
    site_domains: tuple[str, ...] = ()
    timezone: str = "Asia/Jakarta"
    batch_size: int = 2000
    concurrency: int = 4096
    per_origin_concurrency: int = 2048
    window_min: int = 64
    http2: bool = True
    batches_in_flight: int = 16
    send_timeout: float = 10.0
    max_attempts: int = 5
    retry_base: float = 1.0
    ca_file: Path | None = None
    reject_pause_threshold: int = 50
    reject_pause_ratio: float = 0.9
    reject_pause_sample: int = 200
    quarantine_rejections: int = 3
    gone_breaker_min: int = 20
    gone_breaker_sample: int = 200
    gone_breaker_share: float = 0.3
    gone_breaker_factor: float = 5.0
    breaker_cooldown: float = 300.0
    breaker_cooldown_max: float = 3600.0
    breaker_probe_sample: int = 10
    quarantine_days: int = 7
    long_hold_after: int = 600
    unreachable_after: int = 10
    reader_budget: int = 30
    freq_cap_per_hour: int = 4
    quiet_hours: tuple[int, int] | None = None
    feed_poll_seconds: int = 60
    feed_burst: int = 3
    feed_timeout: float = 10.0
    feed_max_bytes: int = 2_000_000
    #: JSON log lines (True), readable coloured lines (False), or None ("auto"): readable on a terminal
    #: in development, JSON everywhere else.
    log_json: bool | None = None
    log_level: str = "info"
    #: The process's name in readable lines (``notifier up`` names its children site, worker-1, sim).
    log_tag: str = ""
    rate_limits: bool = True
    rate_subscribe: str = "1000/minute;20000/day"
    rate_subscribe_global: str = "1000/second;1000000/day"
    rate_events: str = "10/minute"
    rate_events_refused: str = "120/minute"
    rate_login: str = "10/minute"
    trusted_proxies: int = 0
    worker_maintenance: int = 60
    worker_ttl: int = 60
    redis_failover_wait: float = 30.0
    topics_file: Path | None = None
    sites_file: Path | None = None

    @property
    def production(self) -> bool:
        """True when running with ``NOTIFIER_ENV=production``."""
        return self.env == "production"

    @property
    def effective_redis_url(self) -> str:
        """The Redis URL to connect to (the local default when none is configured)."""
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def vapid_key_path(self) -> Path:
        """Where the VAPID private key PEM lives when it is kept in a file."""
        return self.vapid_private_key_file or self.data_dir / "vapid_private.pem"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from an environment mapping (``os.environ`` by default)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        errors: list[str] = []

        def read(name: str, attr: str, coerce: Callable[[str], Any]) -> None:
            raw = env.get(name)
            if raw is None or (raw == "" and coerce is not str):
                return
            try:
                values[attr] = coerce(raw)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")

        read("NOTIFIER_ENV", "env", str)
        read("REDIS_URL", "redis_url", str)
        read("NOTIFIER_REDIS_PREFIX", "redis_prefix", str)
        read("NOTIFIER_DATA_DIR", "data_dir", Path)
        read("SECRET_KEY", "secret_key", str)
        read("VAPID_PRIVATE_KEY", "vapid_private_key", str)
        read("VAPID_PRIVATE_KEY_FILE", "vapid_private_key_file", Path)
        read("VAPID_SUBJECT", "vapid_subject", str)
        read("NOTIFIER_PUSH_HOSTS", "push_hosts", _list)
        read("NOTIFIER_WEBHOOK_SECRET", "webhook_secret", str)
        read("NOTIFIER_WEBHOOK_WINDOW", "webhook_window", int)
        read("NOTIFIER_WEBHOOK_MODE", "webhook_mode", str)
        read("NOTIFIER_WEBHOOK_TOPICS", "webhook_topics", _list)
        read("NOTIFIER_SITE_NAME", "site_name", str)
        read("NOTIFIER_PUBLIC_URL", "public_url", str)
        read("NOTIFIER_SITE_DOMAINS", "site_domains", _list)
        read("NOTIFIER_TIMEZONE", "timezone", str)
        read("NOTIFIER_BATCH_SIZE", "batch_size", int)
        read("NOTIFIER_CONCURRENCY", "concurrency", int)
        read("NOTIFIER_PER_ORIGIN_CONCURRENCY", "per_origin_concurrency", int)
        read("NOTIFIER_WINDOW_MIN", "window_min", int)
        read("NOTIFIER_HTTP2", "http2", _bool)
        read("NOTIFIER_BATCHES_IN_FLIGHT", "batches_in_flight", int)
        read("NOTIFIER_SEND_TIMEOUT", "send_timeout", float)
        read("NOTIFIER_MAX_ATTEMPTS", "max_attempts", int)
        read("NOTIFIER_RETRY_BASE", "retry_base", float)
        read("NOTIFIER_CA_FILE", "ca_file", Path)
        read("NOTIFIER_REJECT_PAUSE_THRESHOLD", "reject_pause_threshold", int)
        read("NOTIFIER_REJECT_PAUSE_RATIO", "reject_pause_ratio", float)
        read("NOTIFIER_REJECT_PAUSE_SAMPLE", "reject_pause_sample", int)
        read("NOTIFIER_QUARANTINE_REJECTIONS", "quarantine_rejections", int)
        read("NOTIFIER_GONE_BREAKER_MIN", "gone_breaker_min", int)
        read("NOTIFIER_GONE_BREAKER_SAMPLE", "gone_breaker_sample", int)
        read("NOTIFIER_GONE_BREAKER_SHARE", "gone_breaker_share", float)
        read("NOTIFIER_GONE_BREAKER_FACTOR", "gone_breaker_factor", float)
        read("NOTIFIER_BREAKER_COOLDOWN", "breaker_cooldown", float)
        read("NOTIFIER_BREAKER_COOLDOWN_MAX", "breaker_cooldown_max", float)
        read("NOTIFIER_BREAKER_PROBE_SAMPLE", "breaker_probe_sample", int)
        read("NOTIFIER_QUARANTINE_DAYS", "quarantine_days", int)
        read("NOTIFIER_LONG_HOLD_AFTER", "long_hold_after", int)
        read("NOTIFIER_UNREACHABLE_AFTER", "unreachable_after", int)
        read("NOTIFIER_READER_BUDGET", "reader_budget", int)
        read("NOTIFIER_FREQ_CAP_PER_HOUR", "freq_cap_per_hour", int)
        read("NOTIFIER_QUIET_HOURS", "quiet_hours", parse_quiet_hours)
        read("NOTIFIER_FEED_POLL_SECONDS", "feed_poll_seconds", int)
        read("NOTIFIER_FEED_BURST", "feed_burst", int)
        read("NOTIFIER_FEED_TIMEOUT", "feed_timeout", float)
        read("NOTIFIER_FEED_MAX_BYTES", "feed_max_bytes", int)
        read("NOTIFIER_LOG_JSON", "log_json", _bool_or_auto)
        read("NOTIFIER_LOG_LEVEL", "log_level", _log_level)
        read("NOTIFIER_LOG_TAG", "log_tag", lambda value: value.strip()[:16])
        read("NOTIFIER_RATE_LIMITS", "rate_limits", _bool)
        read("NOTIFIER_RATE_SUBSCRIBE", "rate_subscribe", _rate)
        read("NOTIFIER_RATE_SUBSCRIBE_GLOBAL", "rate_subscribe_global", _rate)
        read("NOTIFIER_RATE_EVENTS", "rate_events", _rate)
        read("NOTIFIER_RATE_EVENTS_REFUSED", "rate_events_refused", _rate)
        read("NOTIFIER_RATE_LOGIN", "rate_login", _rate)
        read("NOTIFIER_TRUSTED_PROXIES", "trusted_proxies", int)
        read("NOTIFIER_WORKER_MAINTENANCE", "worker_maintenance", int)
        read("NOTIFIER_WORKER_TTL", "worker_ttl", int)
        read("NOTIFIER_REDIS_FAILOVER_WAIT", "redis_failover_wait", float)
        read("NOTIFIER_TOPICS_FILE", "topics_file", Path)
        read("NOTIFIER_SITES_FILE", "sites_file", Path)
        if errors:
            raise ConfigError("invalid configuration: " + "; ".join(errors))
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that cannot work, with a message naming the variable."""
        if self.env not in {"development", "production", "test"}:
            raise ConfigError(f"NOTIFIER_ENV must be development, production or test, not {self.env!r}")
        problem = vapid_subject_problem(self.vapid_subject)
        if problem:
            raise ConfigError(f"VAPID_SUBJECT {problem}, not {self.vapid_subject!r}")
        if self.production and len(self.secret_key) < 16:
            raise ConfigError("SECRET_KEY must be set to at least 16 random characters in production")
        for name, value in (
            ("NOTIFIER_BATCH_SIZE", self.batch_size),
            ("NOTIFIER_CONCURRENCY", self.concurrency),
            ("NOTIFIER_PER_ORIGIN_CONCURRENCY", self.per_origin_concurrency),
            ("NOTIFIER_WINDOW_MIN", self.window_min),
            ("NOTIFIER_BATCHES_IN_FLIGHT", self.batches_in_flight),
            ("NOTIFIER_MAX_ATTEMPTS", self.max_attempts),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.window_min > self.per_origin_concurrency:
            raise ConfigError(
                f"NOTIFIER_WINDOW_MIN ({self.window_min}) must not exceed "
                f"NOTIFIER_PER_ORIGIN_CONCURRENCY ({self.per_origin_concurrency})"
            )
        if self.webhook_mode not in ("auto", "review"):
            raise ConfigError(f"NOTIFIER_WEBHOOK_MODE must be auto or review, not {self.webhook_mode!r}")
        if self.webhook_window < 1:
            raise ConfigError(f"NOTIFIER_WEBHOOK_WINDOW must be at least 1 second, got {self.webhook_window}")
        if self.feed_burst < 0 or self.feed_max_bytes < 1024 or self.feed_timeout <= 0:
            raise ConfigError(
                "NOTIFIER_FEED_BURST must be >= 0, NOTIFIER_FEED_MAX_BYTES >= 1024 "
                "and NOTIFIER_FEED_TIMEOUT > 0"
            )
        if not 0 <= self.trusted_proxies <= 5:
            raise ConfigError(
                "NOTIFIER_TRUSTED_PROXIES is the number of proxies in front of the site (0-5), "
                f"not {self.trusted_proxies}"
            )
        if self.redis_failover_wait < 0:
            raise ConfigError(
                f"NOTIFIER_REDIS_FAILOVER_WAIT must be 0 or more seconds, got {self.redis_failover_wait}"
            )
        for name, share in (
            ("NOTIFIER_REJECT_PAUSE_RATIO", self.reject_pause_ratio),
            ("NOTIFIER_GONE_BREAKER_SHARE", self.gone_breaker_share),
        ):
            if not 0 < share <= 1:
                raise ConfigError(f"{name} must be a share between 0 and 1, got {share}")
        if min(self.reject_pause_threshold, self.reject_pause_sample, self.quarantine_rejections) < 1:
            raise ConfigError(
                "NOTIFIER_REJECT_PAUSE_THRESHOLD, NOTIFIER_REJECT_PAUSE_SAMPLE and "
                "NOTIFIER_QUARANTINE_REJECTIONS must be at least 1"
            )
        if min(self.gone_breaker_min, self.gone_breaker_sample, self.gone_breaker_factor) < 1:
            raise ConfigError(
                "NOTIFIER_GONE_BREAKER_MIN, NOTIFIER_GONE_BREAKER_SAMPLE and NOTIFIER_GONE_BREAKER_FACTOR "
                "must be at least 1"
            )
        if self.breaker_cooldown < 0 or self.breaker_cooldown_max < 0:
            raise ConfigError(
                "NOTIFIER_BREAKER_COOLDOWN and NOTIFIER_BREAKER_COOLDOWN_MAX are seconds, 0 (only an "
                f"operator closes a breaker) or more, got {self.breaker_cooldown} and "
                f"{self.breaker_cooldown_max}"
            )
        if not 1 <= self.breaker_probe_sample <= 1000:
            raise ConfigError(
                "NOTIFIER_BREAKER_PROBE_SAMPLE is a number of messages from 1 to 1000, "
                f"got {self.breaker_probe_sample}"
            )
        if self.long_hold_after < 0:
            raise ConfigError(
                f"NOTIFIER_LONG_HOLD_AFTER must be 0 (off) or more seconds, got {self.long_hold_after}"
            )
        for name, value in (
            ("NOTIFIER_UNREACHABLE_AFTER", self.unreachable_after),
            ("NOTIFIER_READER_BUDGET", self.reader_budget),
        ):
            if not 0 <= value <= 255:
                raise ConfigError(f"{name} must be a number of pushes from 0 (off) to 255, got {value}")
        if self.send_timeout <= 0:
            raise ConfigError(f"NOTIFIER_SEND_TIMEOUT must be positive, got {self.send_timeout}")
