"""The domain package imports neither Flask nor RQ (web and workers depend on it, never the reverse)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import notifier


def test_importing_every_notifier_module_pulls_in_no_flask_or_rq() -> None:
    modules = [m.name for m in pkgutil.walk_packages(notifier.__path__, "notifier.")]
    assert "notifier.delivery" in modules and "notifier.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'rq', 'web', 'workers'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"notifier imports {out.stdout.strip()}"
