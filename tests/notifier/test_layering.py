"""The house's floors hold: imports only point down, and nothing imports the package above it.

From the ground up: the domain ``notifier``; ``workers`` and ``notifier_simulator``
(each stands on the domain only); ``web`` (the domain, and ``workers`` for its
enqueue helpers and RQ's registries); the command line ``notifier_cli`` and
``bench`` on top. Read from the source (every ``import``, also inside functions)
and proven again by importing every domain module in a fresh interpreter.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import notifier

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("notifier", "workers", "notifier_simulator", "web", "notifier_cli", "bench")
#: What each package may import of the project's packages (besides itself).
ALLOWED: dict[str, set[str]] = {
    "notifier": set(),
    "workers": {"notifier"},
    "notifier_simulator": {"notifier"},
    "web": {"notifier", "workers"},
    "bench": {"notifier", "workers", "notifier_simulator", "web"},
    "notifier_cli": {"notifier", "workers", "notifier_simulator", "web", "bench"},
}
THIRD_PARTY_BANNED = {"notifier": {"flask", "rq", "werkzeug", "gunicorn"}}


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found += [
                (node.lineno, f"{base}.{alias.name}" if alias.name != "*" else base) for alias in node.names
            ]
    return found


def test_each_package_imports_only_the_floors_below_it() -> None:
    wrong: list[str] = []
    for package in PACKAGES:
        others = set(PACKAGES) - {package} - ALLOWED[package]
        banned = THIRD_PARTY_BANNED.get(package, set())
        for path in _modules(package):
            for line, name in _imports(path):
                top = name.split(".")[0]
                if top in others or top in banned:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "imports running up or sideways:\n" + "\n".join(wrong)


def test_no_module_imports_its_own_package_init() -> None:
    """A blueprint takes the context from ``web.context``, never from the factory's ``web/__init__``."""
    wrong: list[str] = []
    for package in PACKAGES:
        for path in _modules(package):
            if path.name in ("__init__.py", "__main__.py"):  # the package itself, and its program entry
                continue
            parent = ".".join(path.relative_to(ROOT).parent.parts)
            submodules = {p.stem for p in path.parent.glob("*.py")} | {
                p.name for p in path.parent.iterdir() if (p / "__init__.py").exists()
            }
            for line, name in _imports(path):
                head, _, leaf = name.rpartition(".")
                if name == parent or (head == parent and leaf not in submodules):
                    wrong.append(
                        f"{path.relative_to(ROOT)}:{line} imports {name} from its package's __init__"
                    )
    assert not wrong, "\n".join(wrong)


def test_no_imports_by_name_at_run_time() -> None:
    """``__import__`` and ``importlib.import_module`` hide arrows from every reader of the code."""
    wrong: list[str] = []
    for package in PACKAGES:
        for path in _modules(package):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                    if name in ("__import__", "import_module"):
                        wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {name}")
    assert not wrong, "\n".join(wrong)


def test_importing_every_notifier_module_pulls_in_no_flask_or_rq() -> None:
    modules = [m.name for m in pkgutil.walk_packages(notifier.__path__, "notifier.")]
    assert "notifier.delivery" in modules and "notifier.subscriptions.store" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted({*PACKAGES, 'flask', 'rq'} - {'notifier'})!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"notifier imports {out.stdout.strip()}"


def test_the_checker_sees_a_violation() -> None:
    """The source reader resolves relative and in-function imports (else the tests above prove nothing)."""
    sample = ROOT / "notifier" / "_layering_probe.py"
    sample.write_text("def f():\n    from web.context import ctx\n    from . import keys\n", encoding="utf-8")
    try:
        names = [name for _, name in _imports(sample)]
    finally:
        sample.unlink()
    assert names == ["web.context.ctx", "notifier.keys"]
