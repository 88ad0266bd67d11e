"""Every environment variable the settings read is documented in .env.example, and nothing else reads the environment."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_env_example() -> None:
    read = set(re.findall(r'read\("([A-Z_]+)"', (ROOT / "notifier" / "settings.py").read_text()))
    assert len(read) > 30
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read - documented == set(), "settings missing from .env.example"
    assert documented - read == set(), ".env.example documents variables nothing reads"


def test_only_settings_read_the_environment() -> None:
    offenders = []
    for path in [*ROOT.glob("notifier/**/*.py"), *ROOT.glob("web/**/*.py"), *ROOT.glob("workers/**/*.py")]:
        if path.name == "settings.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"os\.environ\.get|os\.getenv|environ\[\"(NOTIFIER|VAPID|REDIS|SECRET)", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
