"""JSON log lines for workers, each carrying the job id and campaign id it was written under."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

#: (job id, campaign id) of the job this worker is running, for every log line it writes meanwhile.
_CURRENT: ContextVar[tuple[str, str]] = ContextVar("notifier_job", default=("", ""))

# Credentials that must never reach a log: bearer tokens, VAPID JWTs, PEM private keys, cookies.
_SECRETS = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(vapid\s+t=)[A-Za-z0-9._-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)((?:^|[\s,;])k=)[A-Za-z0-9_-]{40,}"), r"\1[redacted]"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[redacted key]",
    ),
    (re.compile(r"(?i)((?:cookie|session|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    """``text`` with tokens, VAPID JWTs, private keys and cookie values replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def job_log_context(job_id: str, campaign_id: str) -> Iterator[None]:
    """Attach a job id and campaign id to log lines written inside the block."""
    token = _CURRENT.set((job_id, campaign_id))
    try:
        yield
    finally:
        _CURRENT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job and campaign ids, exception."""

    def __init__(self, component: str = "worker") -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record`` (secrets redacted)."""
        job_id, campaign_id = _CURRENT.get()
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": redact(_strip_colour(record.getMessage())),
        }
        job_id = getattr(record, "job_id", "") or job_id
        campaign_id = getattr(record, "campaign_id", "") or campaign_id
        if job_id:
            data["job_id"] = job_id
        if campaign_id:
            data["campaign_id"] = campaign_id
        if record.exc_info:
            data["exc"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(data, ensure_ascii=False)


_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _strip_colour(text: str) -> str:
    # RQ colours queue names and "Job OK" for terminals.
    return _COLOUR.sub("", text)


def setup_worker_logging(
    enabled: bool = True, stream: IO[str] | None = None, level: int = logging.INFO
) -> None:
    """Send RQ's and our loggers to one JSON handler on stderr (RQ then skips its coloured handler)."""
    if not enabled:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter("worker"))
    for name in ("rq", "notifier", "workers"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_notifier_json", False)]
        handler._notifier_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
