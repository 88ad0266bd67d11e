"""One exception tree for the domain.

::

    NotifierError
    ├── ConfigError                 settings or VAPID key unusable (fail at start-up)
    ├── ValidationError             bad input from a reader, editor, CMS or CLI (→ 400)
    │   ├── PayloadTooLarge         the encrypted record would not fit 4096 bytes
    │   └── UnsafeEndpoint          endpoint aimed at a private/loopback/unknown host
    ├── NotFound                    no such subscription / campaign / user (→ 404)
    ├── Conflict                    state does not allow it (cancel a finished campaign) (→ 409)
    ├── AuthError                   bad credentials, token or signature (→ 401)
    └── PushError                   a push service answered something other than success
        ├── PushGone                404/410: the subscription is dead, delete it
        ├── PushRejected            400/401/403/413: never retried
        ├── PushRetryLater          429/503 (Retry-After) or other 5xx/timeouts
        └── PushFailed              retries exhausted

Outcomes of a push are classified once, in :mod:`notifier.sending`, at the
boundary that speaks HTTP; the rest of the code handles these classes.
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error this package raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(NotifierError):
    """The configuration cannot work; raised at start-up, never at first send."""

    code = "config_error"


class ValidationError(NotifierError):
    """Input that is refused, with a message saying what is wrong."""

    code = "invalid"


class PayloadTooLarge(ValidationError):
    """The notification payload would not fit one encrypted record."""

    code = "payload_too_large"


class UnsafeEndpoint(ValidationError):
    """A push endpoint that this server must never POST to."""

    code = "unsafe_endpoint"


class NotFound(NotifierError):
    """The object asked for does not exist."""

    code = "not_found"


class Conflict(NotifierError):
    """The object exists but its state does not allow the operation."""

    code = "conflict"


class AuthError(NotifierError):
    """Missing or wrong credentials."""

    code = "unauthorized"


class PushError(NotifierError):
    """A push service answered with something other than success."""

    code = "push_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PushGone(PushError):
    """404/410: the subscription no longer exists at the push service."""

    code = "gone"


class PushRejected(PushError):
    """400/401/403/413: the push service refuses the message; retrying cannot help."""

    code = "rejected"


class PushRetryLater(PushError):
    """429/5xx/timeout: try again, after ``retry_after`` seconds when the service said so."""

    code = "retry"

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PushFailed(PushError):
    """Retries exhausted."""

    code = "failed"
