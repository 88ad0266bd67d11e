"""A small WebDriver BiDi client for Firefox (stock Firefox ESR, which Playwright cannot drive).

:func:`launch_firefox` starts ``firefox-esr --headless --remote-debugging-port 0`` with a fresh profile whose
``user.js`` holds the given prefs; Firefox picks a free port and writes it to ``WebDriverBiDiServer.json`` in
the profile. :class:`BiDi` speaks the protocol over ``websockets``' synchronous client: one command at a time,
events buffered in :attr:`BiDi.events`. Remote values (``script.evaluate`` results) come back as Python
values.

    with launch_firefox("/usr/bin/firefox-esr", prefs) as firefox, BiDi.connect(firefox.ws_url) as bidi:
        bidi.new_session()
        context = bidi.top_context()
        bidi.navigate(context, "http://127.0.0.1:5000/")
        assert bidi.evaluate(context, "document.title") == "..."
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

#: Seconds to wait for Firefox to listen, and for one BiDi command to answer.
STARTUP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0


class BiDiError(Exception):
    """A command answered with an error (``type: "error"``), or the connection failed."""

    def __init__(self, method: str, error: str, message: str, stacktrace: str = "") -> None:
        super().__init__(f"{method}: {error}: {message}")
        self.method = method
        self.error = error
        self.message = message
        self.stacktrace = stacktrace


class ScriptError(Exception):
    """The page's script threw (or its promise rejected): ``script.evaluate`` gave ``type: "exception"``."""

    def __init__(self, details: Mapping[str, Any]) -> None:
        super().__init__(str(details.get("text") or details))
        self.details = details


def serialize(value: Any) -> dict[str, Any]:
    """A Python value as a BiDi ``LocalValue`` (arguments to ``script.callFunction``)."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return {"type": "number", "value": "NaN"}
        if isinstance(value, float) and math.isinf(value):
            return {"type": "number", "value": "Infinity" if value > 0 else "-Infinity"}
        return {"type": "number", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, list | tuple):
        return {"type": "array", "value": [serialize(item) for item in value]}
    if isinstance(value, Mapping):
        return {"type": "object", "value": [[str(key), serialize(item)] for key, item in value.items()]}
    raise TypeError(f"cannot pass {type(value).__name__} to the browser")


_SPECIAL_NUMBERS = {"NaN": math.nan, "-0": -0.0, "Infinity": math.inf, "-Infinity": -math.inf}


def deserialize(remote: Mapping[str, Any]) -> Any:
    """A BiDi ``RemoteValue`` as a Python value; kinds without a Python equivalent stay as the raw dict."""
    kind = remote.get("type")
    if kind in {"undefined", "null"}:
        return None
    if kind in {"string", "boolean", "bigint"}:
        return int(remote["value"]) if kind == "bigint" else remote["value"]
    if kind == "number":
        value = remote["value"]
        return _SPECIAL_NUMBERS[value] if isinstance(value, str) else value
    if kind in {"array", "set"} and "value" in remote:
        return [deserialize(item) for item in remote["value"]]
    if kind in {"object", "map"} and "value" in remote:
        return {
            (key if isinstance(key, str) else json.dumps(deserialize(key))): deserialize(item)
            for key, item in remote["value"]
        }
    if kind == "date":
        return remote["value"]
    return dict(remote)


class BiDi:
    """A WebDriver BiDi session over one WebSocket; commands are sent and answered one at a time."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @classmethod
    def connect(cls, url: str, timeout: float = 10.0) -> BiDi:
        """Open the WebSocket (``ws://host:port/session``)."""
        # Entered as a context manager: websockets 17.1+ deprecates using connect() directly.
        connection = connect(url, open_timeout=timeout, max_size=None, compression=None)
        return cls(connection.__enter__())

    def __enter__(self) -> BiDi:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the WebSocket (the browser process is the launcher's to stop)."""
        self.connection.close()

    def command(
        self, method: str, params: Mapping[str, Any] | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> Any:
        """Send one command and return its ``result``; events that arrive meanwhile go to :attr:`events`."""
        command_id = next(self._ids)
        self.connection.send(json.dumps({"id": command_id, "method": method, "params": dict(params or {})}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BiDiError(method, "timeout", f"no answer within {timeout} s")
            try:
                raw = self.connection.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                raise BiDiError(method, "connection closed", str(exc)) from exc
            message = json.loads(raw)
            if message.get("type") == "event":
                self.events.append(message)
                continue
            if message.get("id") != command_id:
                continue  # an answer to an earlier command that timed out here
            if message.get("type") == "error":
                raise BiDiError(
                    method,
                    message.get("error", "error"),
                    message.get("message", ""),
                    message.get("stacktrace", ""),
                )
            return message.get("result")

    # -- the commands the tests use ----------------------------------------------------------------

    def new_session(self, capabilities: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``session.new``; returns the matched capabilities."""
        result = self.command("session.new", {"capabilities": dict(capabilities or {})})
        return dict(result.get("capabilities", {}))

    def end_session(self) -> None:
        """``session.end``."""
        self.command("session.end")

    def subscribe(self, *events: str) -> None:
        """``session.subscribe`` to events (e.g. ``log.entryAdded``); they collect in :attr:`events`."""
        self.command("session.subscribe", {"events": list(events)})

    def top_context(self) -> str:
        """The id of the first top-level browsing context (the initial tab)."""
        tree = self.command("browsingContext.getTree", {"maxDepth": 0})
        contexts = tree.get("contexts") or []
        if not contexts:
            raise BiDiError("browsingContext.getTree", "no such frame", "the browser has no open tab")
        return str(contexts[0]["context"])

    def navigate(
        self, context: str, url: str, wait: str = "complete", timeout: float = COMMAND_TIMEOUT
    ) -> str:
        """``browsingContext.navigate`` and wait for the page (``none``, ``interactive`` or ``complete``)."""
        result = self.command(
            "browsingContext.navigate", {"context": context, "url": url, "wait": wait}, timeout
        )
        return str(result.get("url", url))

    def _value(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        result = self.command(method, params, timeout)
        if result.get("type") == "exception":
            raise ScriptError(result.get("exceptionDetails") or {})
        return deserialize(result.get("result") or {"type": "undefined"})

    def evaluate(
        self, context: str, expression: str, *, await_promise: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> Any:
        """``script.evaluate`` in the page; the (awaited) result as a Python value."""
        params = {
            "expression": expression,
            "target": {"context": context},
            "awaitPromise": await_promise,
            "resultOwnership": "none",
        }
        return self._value("script.evaluate", params, timeout)

    def call_function(
        self,
        context: str,
        declaration: str,
        *args: Any,
        await_promise: bool = True,
        timeout: float = COMMAND_TIMEOUT,
    ) -> Any:
        """``script.callFunction`` with Python arguments; the (awaited) result as a Python value."""
        params = {
            "functionDeclaration": declaration,
            "arguments": [serialize(arg) for arg in args],
            "target": {"context": context},
            "awaitPromise": await_promise,
            "resultOwnership": "none",
        }
        return self._value("script.callFunction", params, timeout)

    def drain(self, timeout: float = 0.2) -> None:
        """Read events that arrived since the last command into :attr:`events` (stops after ``timeout`` s)."""
        while True:
            try:
                raw = self.connection.recv(timeout=timeout)
            except (TimeoutError, ConnectionClosed):
                return
            message = json.loads(raw)
            if message.get("type") == "event":
                self.events.append(message)

    def console(self) -> list[str]:
        """Text of the ``log.entryAdded`` events received so far (needs :meth:`subscribe`)."""
        self.drain()
        lines = []
        for event in self.events:
            if event.get("method") == "log.entryAdded":
                entry = event.get("params", {})
                lines.append(f"[{entry.get('level')}] {entry.get('text')}")
        return lines


# -- Firefox ---------------------------------------------------------------------------------------

FIREFOX = "/usr/bin/firefox-esr"


def firefox_prefs(push_server_url: str) -> dict[str, bool | int | str]:
    """Prefs for a headless, offline, automated profile whose push service is the simulator."""
    return {
        # Push through the simulator's WebSocket (ws:// needs the testing pref; PushService.sys.mjs).
        "dom.push.enabled": True,
        "dom.push.serverURL": push_server_url,
        "dom.push.testing.allowInsecureServerURL": True,
        # Needed although true is the default: the Remote Agent's recommended prefs (RecommendedPreferences
        # .sys.mjs) set it to false at start-up unless the profile has a user value, which user.js gives.
        "dom.push.connection.enabled": True,
        "dom.push.requestTimeout": 20_000,
        # Reconnect half a second after the push server closed the socket (default 5 s, doubling).
        "dom.push.retryBaseInterval": 500,
        "dom.push.loglevel": "Debug",
        # Notifications: granted for every site; shown by Firefox's own alert window, not a desktop daemon.
        "permissions.default.desktop-notification": 1,
        "alerts.useSystemBackend": False,
        "dom.webnotifications.requireuserinteraction": False,
        # Service workers on http://127.0.0.1 (potentially trustworthy anyway), with no idle kill mid-test.
        "dom.serviceWorkers.enabled": True,
        "dom.serviceWorkers.testing.enabled": True,
        # BiDi only (no CDP); the Remote Agent's recommended automation prefs stay on, under ours.
        "remote.active-protocols": 1,
        # A quiet, offline profile.
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "browser.startup.page": 0,
        "browser.aboutwelcome.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.healthreport.uploadEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "toolkit.telemetry.enabled": False,
        "app.update.enabled": False,
        "app.update.disabledForTesting": True,
        "app.normandy.enabled": False,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "browser.search.update": False,
        "extensions.update.enabled": False,
        "network.proxy.type": 0,
        "network.manage-offline-status": False,
        "network.connectivity-service.enabled": False,
        "network.captive-portal-service.enabled": False,
        "services.settings.server": "http://127.0.0.1:1/",
        # Chrome console messages (PushService logs) to stdout, captured in the log file.
        "devtools.console.stdout.chrome": True,
        "devtools.console.stdout.content": True,
    }


def user_js(prefs: Mapping[str, bool | int | str]) -> str:
    """Prefs in ``user.js`` syntax (JSON literals are valid pref values)."""
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())


@dataclass
class Firefox:
    """A running Firefox: its process (leader of its own process group), profile and stderr log."""

    process: subprocess.Popen[bytes]
    profile: Path
    log: Path
    ws_url: str = ""
    _log_file: Any = field(default=None, repr=False)

    def output_tail(self, lines: int = 80) -> str:
        """The last lines Firefox wrote to stdout/stderr (for failure reports)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, keep_log: bool = False) -> None:
        """Kill Firefox's whole process group (content processes too), and delete the profile."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # Children that outlived the leader are still in the group.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        shutil.rmtree(self.profile, ignore_errors=True)
        if not keep_log:
            self.log.unlink(missing_ok=True)

    def __enter__(self) -> Firefox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def launch_firefox(
    binary: str,
    prefs: Mapping[str, bool | int | str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> Firefox:
    """Start headless Firefox (fresh profile, BiDi on a free port); return once BiDi listens."""
    # Short path: profile locks and sockets dislike long temporary paths.
    profile = Path(tempfile.mkdtemp(prefix="nt-firefox-"))
    (profile / "user.js").write_text(user_js(prefs))
    log_path = log or profile.with_name(profile.name + ".log")
    log_file = open(log_path, "wb")  # held open while Firefox runs; stop() closes it
    process_env = {**os.environ, "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1", **(env or {})}
    process = subprocess.Popen(
        [binary, "--headless", "--no-remote", "--new-instance", "--remote-debugging-port", "0",
         "--profile", str(profile), "about:blank"],
        stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=process_env,
        start_new_session=True,
    )  # fmt: skip
    firefox = Firefox(process, profile, log_path, _log_file=log_file)
    server_file = profile / "WebDriverBiDiServer.json"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Firefox exited with {process.returncode}:\n{firefox.output_tail()}")
            try:
                server = json.loads(server_file.read_text())
            except (OSError, ValueError):
                server = None
            if server and server.get("ws_port"):
                firefox.ws_url = f"ws://{server.get('ws_host') or '127.0.0.1'}:{server['ws_port']}/session"
                return firefox
            if time.monotonic() > deadline:
                raise RuntimeError(f"Firefox did not start BiDi within {timeout} s:\n{firefox.output_tail()}")
            time.sleep(0.05)
    except BaseException:
        firefox.stop(keep_log=log is not None)
        raise


@contextmanager
def diagnosed(firefox: Firefox, bidi: BiDi, simulator: Any, workers: Any) -> Iterator[None]:
    """On failure, print what Firefox, the page, the simulator and the worker said (CI shows stdout then)."""
    try:
        yield
    except BaseException:
        print("---- Firefox output (tail) ----")
        print(firefox.output_tail(120))
        print("---- page console ----")
        print("\n".join(bidi.console()[-40:]))
        print("---- simulator stats ----")
        print(simulator.stats())
        print("---- worker log (tail) ----")
        print(workers.logs()[-3000:])
        raise
