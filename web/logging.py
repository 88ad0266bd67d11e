"""Structured request logs: one JSON line per request (method, path, status, duration, request id).

Only the path is logged, never the query string, headers or cookies, so tokens,
``Authorization`` values and session cookies cannot reach the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import IO

from flask import Flask, Response, g, request

#: The logger every site process writes its request lines to.
LOGGER = "notifier.web.requests"
#: A request id from the proxy is kept only when it looks like one (no log injection).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


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


def init_request_logging(
    app: Flask, *, json_lines: bool = True, stream: IO[str] | None = None
) -> logging.Logger:
    """Log every request of ``app`` (JSON lines unless ``json_lines`` is false) and echo ``X-Request-ID``."""
    logger = logging.getLogger(LOGGER)
    if not any(getattr(h, "_notifier_requests", False) for h in logger.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(RequestJsonFormatter() if json_lines else logging.Formatter("%(message)s"))
        handler._notifier_requests = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex

    @app.after_request
    def _log(response: Response) -> Response:
        started = g.get("request_started")
        duration = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers.setdefault("X-Request-ID", request_id)
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration, 2),
            "request_id": request_id,
            "endpoint": request.endpoint or "",
        }
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            duration,
            extra={"fields": fields},
        )
        return response

    return logger
