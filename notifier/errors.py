"""One exception tree for the domain.

::

    NotifierError
    ├── ConfigError                 settings or VAPID key unusable (fail at start-up)
    ├── ValidationError             bad input from a reader, editor, CMS or CLI (→ 400)
    │   ├── PayloadTooLarge         the encrypted record would not fit 4096 bytes
    │   └── UnsafeEndpoint          endpoint aimed at a private/loopback/unknown host
    ├── NotFound                    no such subscription / campaign / user / site (→ 404)
    ├── Forbidden                   known, but not for this origin or account (→ 403)
    ├── Conflict                    state does not allow it (cancel a finished campaign) (→ 409)
    └── AuthError                   bad credentials, token or signature (→ 401)
        └── LoginLocked             too many failed logins (notifier.users)

The web layer turns these into answers (``web/errors.py``: JSON for the API, pages for the
newsroom); the command line prints their message.

A push service's answer is not an exception: a batch gets a thousand answers at once,
and each is one :class:`notifier.sending.Outcome` whose ``kind`` is a typed
:class:`notifier.sending.OutcomeKind` (sent, gone, rejected, retry, deferred, failed),
classified once in :mod:`notifier.sending.outcomes`, at the boundary that speaks HTTP.
``OutcomeKind.retryable`` is the retryable / non-retryable split that GOV.UK Notify's
provider clients express with exception classes.
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


class Forbidden(NotifierError):
    """The caller is known but may not do this: an origin no site declares, an editor of another site."""

    code = "forbidden"


class Conflict(NotifierError):
    """The object exists but its state does not allow the operation."""

    code = "conflict"


class AuthError(NotifierError):
    """Missing or wrong credentials."""

    code = "unauthorized"
