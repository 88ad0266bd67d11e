"""Log lines of the service's processes: JSON for machines, one readable coloured line for people.

JSON lines (:class:`JsonFormatter`) carry the job id and campaign id they were written under; they
are what production, journald, pipes and files get. On a terminal in development
(``NOTIFIER_LOG_JSON=auto``, the default) each event is one line instead (:class:`ConsoleHandler`):
time, a coloured tag naming the process (``site``, ``worker-1``, ``sim``: ``notifier up`` hands each
child its tag in ``NOTIFIER_LOG_TAG``), and the message; an error ends with its cause. The children
of ``notifier up`` inherit its terminal, so each one finds out by itself (``isatty`` on its stderr).

RQ's own bookkeeping (registries cleaned, scheduler locks, "Job OK", "result is kept for 600
seconds") is demoted to debug in both forms (:class:`RQChatterFilter`); its warnings and errors stay.
"""

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

from rich.console import Console
from rich.text import Text

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


#: The variable naming a process in readable lines (``Settings.log_tag``; ``notifier up`` sets it per child).
TAG_ENV = "NOTIFIER_LOG_TAG"
_TAG_STYLES = {"site": "bold cyan", "sim": "bold blue", "up": "bold white"}
_WORKER_STYLES = ("bold magenta", "bold yellow", "bold green", "bold bright_magenta", "bold bright_yellow")
_LEVEL_BADGES = {logging.WARNING: ("warn ", "yellow"), logging.ERROR: ("error", "bold red")}
_RQ_WORKER_PREFIX = re.compile(r"^Worker [^\s:]+(?: \[PID \d+\])?: ")
_TRACEBACK = "Traceback (most recent call last):"


def wants_json(setting: bool | None, *, production: bool, stream: IO[str] | None = None) -> bool:
    """JSON lines or readable ones: ``setting`` when set, else JSON unless on a development terminal."""
    if setting is not None:
        return setting
    if production:
        return True
    stream = stream or sys.stderr
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return True


def tag_style(tag: str) -> str:
    """The colour of a process tag: fixed for the site and simulator, one per worker number."""
    if tag in _TAG_STYLES:
        return _TAG_STYLES[tag]
    number = tag.rsplit("-", 1)[-1]
    index = int(number) - 1 if number.isdigit() and int(number) > 0 else 0
    return _WORKER_STYLES[index % len(_WORKER_STYLES)]


def _cause(record: logging.LogRecord) -> tuple[str, str, str]:
    """(first line of the message, the error's cause in one line, the full traceback or "")."""
    message = _strip_colour(record.getMessage())
    first, _, rest = message.partition("\n")
    trace = ""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        trace = "".join(traceback.format_exception(*record.exc_info))
        frames = traceback.extract_tb(exc.__traceback__)
        where = (
            f" ({_short_path(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name})"
            if frames
            else ""
        )
        return first, f"{type(exc).__name__}: {exc}{where}", trace
    if _TRACEBACK in rest:
        # RQ writes a failed job's traceback into the message: its last line names the exception.
        trace = rest[rest.index(_TRACEBACK) :]
        lines = [line for line in trace.splitlines() if line.strip()]
        where = ""
        for line in reversed(lines):
            found = re.match(r'\s*File "([^"]+)", line (\d+), in (\S+)', line)
            if found:
                where = f" ({_short_path(found[1])}:{found[2]} in {found[3]})"
                break
        return first, (lines[-1].strip() if lines else "") + where, trace
    return first, "", ""


def _short_path(path: str) -> str:
    """A source path from the package root (``workers/jobs.py``), not the whole of this machine's path."""
    parts = path.replace("\\", "/").split("/")
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("site-packages", "dist-packages"):
            return "/".join(parts[i + 1 :])
    anchors = ("notifier", "workers", "web", "notifier_cli", "notifier_simulator", "bench", "tests")
    found = [len(parts) - 1 - parts[::-1].index(a) for a in anchors if a in parts[:-1]]
    return "/".join(parts[min(found) :]) if found else parts[-1]


class ConsoleFormatter(logging.Formatter):
    """One readable line per record: ``12:03:04 worker-1  campaign 7 done: …``, styled for a terminal.

    :meth:`line` builds the styled :class:`rich.text.Text`; :meth:`format` is its plain text. Request
    records of the site (their ``fields`` extra) read ``GET /newsroom/ 200 12 ms``.
    """

    def __init__(self, tag: str, *, debug: bool = False) -> None:
        super().__init__()
        self.tag = tag
        self.debug = debug

    def line(self, record: logging.LogRecord) -> Text:
        """The record as one styled line (a debug run adds the full traceback of an error below it)."""
        text = Text()
        text.append(time.strftime("%H:%M:%S", time.localtime(record.created)), style="dim")
        text.append(" ")
        text.append(f"{self.tag:<9}", style=tag_style(self.tag))
        text.append(" ")
        level = record.levelno
        badge = _LEVEL_BADGES.get(logging.ERROR if level >= logging.ERROR else level)
        if badge:
            text.append(badge[0], style=badge[1])
            text.append(" ")
        elif level < logging.INFO:
            text.append("debug", style="dim")
            text.append(" ")
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and "status" in fields:
            self._request(text, fields)
            return text
        first, cause, trace = _cause(record)
        first = _RQ_WORKER_PREFIX.sub("", redact(first))
        text.append(first, style="dim" if level < logging.INFO else "")
        if cause:
            text.append(" — ", style="dim")
            text.append(redact(cause), style="red" if level >= logging.ERROR else "yellow")
        if trace and self.debug:
            text.append("\n" + redact(trace.rstrip()), style="dim")
        return text

    @staticmethod
    def _request(text: Text, fields: dict[str, Any]) -> None:
        status = int(fields.get("status") or 0)
        path = str(fields.get("path", ""))
        quiet = status < 400 and (
            path.startswith("/static/") or path in ("/healthz", "/readyz", "/favicon.ico")
        )
        colour = (
            "green" if status < 300 else "cyan" if status < 400 else "yellow" if status < 500 else "bold red"
        )
        text.append(f"{fields.get('method', '')} ", style="dim" if quiet else "bold")
        text.append(path, style="dim" if quiet else "")
        text.append(" ")
        text.append(str(status), style=colour)
        text.append(f" {float(fields.get('duration_ms') or 0):.0f} ms", style="dim")

    def format(self, record: logging.LogRecord) -> str:
        """The line without styles."""
        return self.line(record).plain


class ConsoleHandler(logging.Handler):
    """Writes :class:`ConsoleFormatter` lines through ``rich`` (colours when the stream is a terminal)."""

    def __init__(self, tag: str, stream: IO[str] | None = None, *, debug: bool = False) -> None:
        super().__init__()
        self.formatter_ = ConsoleFormatter(tag, debug=debug)
        self.setFormatter(self.formatter_)
        self.console = Console(file=stream or sys.stderr, soft_wrap=True, highlight=False, emoji=False)

    def emit(self, record: logging.LogRecord) -> None:
        """Print one line (never raises: a broken terminal must not stop a send)."""
        try:
            self.console.print(self.formatter_.line(record), markup=False)
        except Exception:  # logging's own contract: report, never raise
            self.handleError(record)


class RQChatterFilter(logging.Filter):
    """RQ's lines below warning become debug: dropped, or kept as debug lines when ``keep`` is true."""

    def __init__(self, keep: bool = False) -> None:
        super().__init__()
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        """False for RQ's informational lines unless debug lines are wanted."""
        if record.levelno >= logging.WARNING or not record.name.startswith("rq"):
            return True
        if not self.keep:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def make_handler(
    json_lines: bool | None,
    *,
    component: str,
    tag: str,
    production: bool = False,
    stream: IO[str] | None = None,
    level: int = logging.INFO,
) -> logging.Handler:
    """This process's handler: JSON or readable lines (see :func:`wants_json`), RQ chatter demoted."""
    stream = stream or sys.stderr
    handler: logging.Handler
    if wants_json(json_lines, production=production, stream=stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter(component))
    else:
        handler = ConsoleHandler(tag, stream, debug=level <= logging.DEBUG)
    handler.addFilter(RQChatterFilter(keep=level <= logging.DEBUG))
    handler.setLevel(level)
    return handler


def setup_worker_logging(
    json_lines: bool | None = True,
    stream: IO[str] | None = None,
    level: int = logging.INFO,
    *,
    production: bool = False,
    tag: str | None = None,
) -> logging.Handler:
    """Send RQ's and our loggers to one handler on stderr (RQ then skips its own coloured handler).

    ``json_lines``: True for JSON, False for readable lines, None to decide by the stream
    (:func:`wants_json`). Returns the handler.
    """
    handler = make_handler(
        json_lines,
        component="worker",
        tag=tag or "worker",
        production=production,
        stream=stream,
        level=level,
    )
    handler._notifier_json = True  # type: ignore[attr-defined]
    for name in ("rq", "notifier", "workers"):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_notifier_json", False)]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler
