"""Tests share helpers through tests/factories.py (or fixtures), never by importing another test module."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def test_no_test_imports_a_test_module_or_a_conftest() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("tests.") and _is_test_module(name):
                    offenders.append(f"{path.relative_to(TESTS.parent)}:{node.lineno} imports {name}")
    assert offenders == []


def test_the_checker_sees_a_violation() -> None:
    sample = "from tests.web.test_api_subscriptions import make_sub\nfrom tests.conftest import wait_for\n"
    tree = ast.parse(sample)
    found = [
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and _is_test_module(n.module or "")
    ]
    assert found == ["tests.web.test_api_subscriptions", "tests.conftest"]
