"""Structured request logs: one JSON line per request (method, path, status, duration, request id).

Only the path is logged, never the query string, headers or cookies, so tokens,
``Authorization`` values and session cookies cannot reach the log.

The line is written from one ``after_request`` hook (the start time is taken by a thin
WSGI wrapper, before Flask builds the request context), and the record is handed to the
logger's handlers directly: the caller's file and line, which no request line shows, are
not looked up on every request.

On a development terminal (``NOTIFIER_LOG_JSON=auto``) the same records become one readable line
each (``GET /newsroom/ 200 12 ms``, see :mod:`workers.logging`); :func:`setup_site_logging` gives the
site's other loggers (errors of a view, werkzeug's) the same form.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

from flask import Flask, Response, request

from workers.logging import JsonFormatter, make_handler

#: The logger every site process writes its request lines to.
LOGGER = "notifier.web.requests"
#: A request id from the proxy is kept only when it looks like one (no log injection).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
#: WSGI environ key holding the request's start (``time.perf_counter()``).
STARTED = "notifier.request_started"
_MESSAGE = "%s %s %s %.1fms"


class RequestJsonFormatter(logging.Formatter):
    """Serialise a request record (its ``fields`` extra) as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        data = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": "web",
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        return json.dumps(data, ensure_ascii=False)


def new_request_id() -> str:
    """32 random hex digits (as many as a ``uuid4().hex``, without building a UUID)."""
    return os.urandom(16).hex()


def request_id_of(environ: dict[str, Any]) -> str:
    """The proxy's ``X-Request-ID`` when it looks like one, else a new id."""
    sent = environ.get("HTTP_X_REQUEST_ID", "")
    return sent if sent and _REQUEST_ID.match(sent) else new_request_id()


def log_request(
    logger: logging.Logger,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    request_id: str,
    endpoint: str | None,
) -> None:
    """Write one request line (handed to the handlers directly: no caller lookup, no stack walk)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration_ms, 2),
        "request_id": request_id,
        "endpoint": endpoint or "",
    }
    record = logger.makeRecord(
        LOGGER,
        logging.INFO,
        __file__,
        0,
        _MESSAGE,
        (method, path, status, duration_ms),
        None,
        "_log",
        {"fields": fields},
    )
    logger.handle(record)


def init_request_logging(
    app: Flask,
    *,
    json_lines: bool | None = True,
    stream: IO[str] | None = None,
    production: bool = False,
    tag: str = "site",
) -> logging.Logger:
    """Log every request of ``app`` and echo ``X-Request-ID``.

    ``json_lines``: JSON lines (True), readable lines (False), or None to decide by the stream
    (JSON unless it is a terminal in development).
    """
    logger = logging.getLogger(LOGGER)
    if not any(getattr(h, "_notifier_requests", False) for h in logger.handlers):
        stream = stream or sys.stderr
        handler = make_handler(json_lines, component="web", tag=tag, production=production, stream=stream)
        if isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(RequestJsonFormatter())
        handler._notifier_requests = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    wsgi_app = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ.setdefault(STARTED, time.perf_counter())  # the subscribe fast path may have stamped it
        return wsgi_app(environ, start_response)

    app.wsgi_app = timed  # type: ignore[method-assign]

    @app.after_request
    def _log(response: Response) -> Response:
        environ = request.environ
        started = environ.get(STARTED)
        duration = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        request_id = request_id_of(environ)
        headers = response.headers
        if "X-Request-ID" not in headers:
            headers["X-Request-ID"] = request_id
        log_request(
            logger, request.method, request.path, response.status_code, duration, request_id, request.endpoint
        )
        return response

    return logger


def setup_site_logging(
    json_lines: bool | None,
    *,
    production: bool = False,
    level: int = logging.INFO,
    stream: IO[str] | None = None,
    tag: str = "site",
) -> logging.Handler:
    """For ``notifier serve``: the site's other loggers (view errors, werkzeug, the domain) in its form.

    Not done by the app factory: a test process keeps its loggers as pytest set them.
    """
    handler = make_handler(
        json_lines,
        component="web",
        tag=tag,
        production=production,
        stream=stream,
        level=level,
    )
    for name in ("web", "notifier", "werkzeug"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_notifier_site", False)]
        handler._notifier_site = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    # The request lines have their own handler (init_request_logging).
    logging.getLogger(LOGGER).propagate = False
    return handler
