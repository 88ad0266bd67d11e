"""JSON errors for the API: ``{"error": code, "message": why}`` with the right status."""

from __future__ import annotations

import json
from typing import Any

import redis
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from notifier.errors import AuthError, Conflict, Forbidden, NotFound, NotifierError, ValidationError


def json_response(data: Any, status: int = 200) -> Response:
    """``data`` as JSON, byte for byte what ``jsonify`` writes (compact, sorted keys, final newline).

    Built directly: ``jsonify`` looks up the app's JSON provider and its settings on every call.
    """
    body = json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n"
    return Response(body, status=status, mimetype="application/json")


def json_error(status: int, error: str, message: str, **extra: Any) -> Response:
    """A JSON error response."""
    return json_response({"error": error, "message": message, **extra}, status)


def status_for(exc: NotifierError) -> int:
    """HTTP status of a domain error."""
    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 500


def read_json_body(limit: int) -> Any:
    """Parse the request's JSON body, refusing a wrong type, an oversized or malformed body.

    Raises :class:`BodyRefused` carrying the response to send.
    """
    mimetype = request.mimetype
    if mimetype != "application/json":
        raise BodyRefused(
            json_error(
                415 if mimetype else 400,
                "unsupported_media_type" if mimetype else "invalid",
                f"Content-Type must be application/json, not {mimetype or 'missing'}",
            )
        )
    length = request.content_length
    if length is not None and length > limit:
        raise BodyRefused(json_error(413, "too_large", f"the body is {length} bytes; at most {limit}"))
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise BodyRefused(json_error(413, "too_large", f"the body is larger than {limit} bytes"))
    return parse_json_bytes(raw)


def _no_constant(name: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity, which are no JSON and no time, count or size."""
    raise ValueError(f"{name} is not a JSON value")


def parse_json_bytes(raw: bytes) -> Any:
    """Decode a JSON body already read and size-checked; BodyRefused says why when it is not JSON text."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BodyRefused(json_error(400, "malformed_json", f"the body is not valid JSON: {exc}")) from exc
    except RecursionError as exc:
        raise BodyRefused(
            json_error(400, "malformed_json", "the body nests arrays or objects too deeply")
        ) from exc
    if b"\\u" not in raw:
        # Valid UTF-8 cannot hold a surrogate, so one can only come from a \uXXXX escape: none, no check.
        return data
    try:
        # JSON lets "\ud800" escape a lone surrogate, which is no Unicode text: Redis, HMAC and
        # hashing would all fail to encode it later, so refuse it here once for every route.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BodyRefused(
            json_error(
                400, "invalid_unicode", "the body contains a lone surrogate (\\ud800-\\udfff), not text"
            )
        ) from exc
    return data


class BodyRefused(Exception):
    """The request body was refused; ``response`` says why."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.get_data(as_text=True))
        self.response = response


#: Seconds a client is asked to wait before repeating what Redis could not serve (a failover takes 6-10 s).
REDIS_RETRY_AFTER = 5


def redis_unavailable(exc: Exception) -> Response:
    """503 with ``Retry-After`` while Redis is unreachable, failing over, or read-only; never a 500.

    A reader's subscribe is idempotent, so the browser (or the widget) repeating it is safe.
    """
    message = "the database did not answer (a failover or a restart in progress); try again in a few seconds"
    machine = request.path.startswith(("/api/", "/healthz", "/readyz", "/metrics"))
    if machine or request.accept_mimetypes.best == "application/json":
        response = json_error(503, "unavailable", message)
    else:
        response = Response(
            f"<!doctype html><html lang=en><meta charset=utf-8><title>Unavailable</title>"
            f"<p>Service unavailable: {message}.</p></html>",
            status=503,
            mimetype="text/html",
        )
    response.headers["Retry-After"] = str(REDIS_RETRY_AFTER)
    return response


def _api_unrouted(exc: HTTPException) -> Response | HTTPException:
    """Under ``/api/`` a path no route matches is a JSON refusal too (``/api/v1/campaigns/``, a stray id)."""
    if not request.path.startswith("/api/"):
        return exc
    code = exc.code or 404
    name = "not_found" if code == 404 else "method_not_allowed"
    return json_error(code, name, f"no API route {request.method} {request.path[:200]}")


def register(app: Flask) -> None:
    """App-wide handlers: a Redis outage answers 503, whatever blueprint the request reached; an
    unrouted ``/api/`` path answers JSON."""
    for error in (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
        app.register_error_handler(error, redis_unavailable)
    app.register_error_handler(RouteNotFound, _api_unrouted)
    app.register_error_handler(MethodNotAllowed, _api_unrouted)
