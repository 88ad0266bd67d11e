"""Fixtures for end-to-end tests: the real app on a free port, and Debian's Chromium driven by Playwright.

``live_server`` runs ``create_app(context=...)`` in a werkzeug server thread, bound to the test Redis
through the ``context`` fixture; ``start_live_server`` does the same for any other context.
``chromium_context`` launches a persistent Chromium profile (incognito contexts refuse push), and
``launch_chromium`` opens more of them, e.g. with another ``user_agent``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from notifier.context import Context
from notifier_simulator import SimulatorServer
from tests.e2e.bidi import FIREFOX, BiDi, Firefox, firefox_prefs, launch_firefox
from tests.factories import CHROMIUM, CHROMIUM_ARGS, LiveServer, browser_or_skip


@contextmanager
def run_live_server(context: Context, test_config: dict[str, Any] | None = None) -> Iterator[LiveServer]:
    """Serve ``create_app(test_config, context=context)`` on a free loopback port until the block ends."""
    from web import create_app

    app = create_app({"TESTING": True, **(test_config or {})}, context=context)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, context, server)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def start_live_server() -> Iterator[Callable[..., LiveServer]]:
    """Start live servers for given contexts; all are stopped after the test."""
    stack: list[AbstractContextManager[LiveServer]] = []

    def start(context: Context, test_config: dict[str, Any] | None = None) -> LiveServer:
        manager = run_live_server(context, test_config)
        server = manager.__enter__()
        stack.append(manager)
        return server

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def live_server(context: Context, start_live_server: Callable[..., LiveServer]) -> LiveServer:
    """The app on a free port, against the test Redis."""
    return start_live_server(context)


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Any]:
    """The Playwright driver (sync API), once per test module.

    Not per session: the sync API keeps its event loop marked as running in the main
    thread while it is open, and later tests that run their own loop (the sender,
    the simulator's clients) would then fail with "another loop is running".
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def launch_chromium(playwright_instance: Any) -> Iterator[Callable[..., Any]]:
    """Launch persistent Chromium contexts, each with a fresh profile; all are closed after the test.

    Keyword arguments go to ``launch_persistent_context`` (``user_agent=``, ``viewport=``, ...).
    """
    executable = browser_or_skip(CHROMIUM)
    contexts: list[Any] = []
    profiles: list[Path] = []

    def launch(**options: Any) -> Any:
        # Short paths: Chromium's profile sockets and locks dislike pytest's long temporary paths.
        profile = Path(tempfile.mkdtemp(prefix="nt-chromium-"))
        profiles.append(profile)
        options.setdefault("viewport", {"width": 1280, "height": 900})
        browser_context = playwright_instance.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            **options,
        )
        browser_context.set_default_timeout(10_000)
        contexts.append(browser_context)
        return browser_context

    yield launch
    for browser_context in contexts:
        browser_context.close()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def chromium_context(launch_chromium: Callable[..., Any]) -> Any:
    """A persistent Chromium context with a fresh profile (push needs a non-incognito profile)."""
    return launch_chromium()


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[Any]:
    """A publisher's static site on its own port (tests/e2e/publisher.py), stopped after the test."""
    from tests.e2e.publisher import start_publisher

    site = start_publisher(tmp_path / "publisher")
    yield site
    site.stop()


@pytest.fixture
def firefox(simulator: SimulatorServer, tmp_path: Path) -> Iterator[Firefox]:
    """Headless Firefox ESR whose push service is the simulator; killed and its profile deleted after."""
    binary = browser_or_skip(FIREFOX)
    # System access: the tests reach Firefox's own notification window (chrome scope) to click it.
    browser = launch_firefox(
        binary,
        firefox_prefs(simulator.ws_url),
        log=tmp_path / "firefox.log",
        env={"MOZ_REMOTE_ALLOW_SYSTEM_ACCESS": "1"},
    )
    try:
        yield browser
    finally:
        browser.stop(keep_log=True)


@pytest.fixture
def bidi(firefox: Firefox) -> Iterator[BiDi]:
    """A BiDi session on that Firefox, with the page console collected."""
    try:
        client = BiDi.connect(firefox.ws_url)
    except BaseException:
        print(firefox.output_tail(120))
        raise
    try:
        client.new_session({"alwaysMatch": {"acceptInsecureCerts": True}})
        client.subscribe("log.entryAdded")
    except BaseException:
        print(firefox.output_tail(120))
        client.close()
        raise
    try:
        yield client
    finally:
        client.close()
