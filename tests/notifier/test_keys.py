"""Key names: the Lua scripts name keys exactly as :class:`notifier.keys.Keys` does."""

from __future__ import annotations

import re
from pathlib import Path

import redis

from notifier.keys import RECORDS_PER_LIST, Keys, lua_key_functions

ROOT = Path(__file__).resolve().parents[2]


def _lua(r: redis.Redis, call: str, prefix: str) -> list[str]:
    reply = r.eval(lua_key_functions() + f"\nreturn {{{call}}}", 0, prefix)
    return [str(part) for part in reply]


def test_the_lua_key_functions_build_the_same_names_as_keys(r: redis.Redis) -> None:
    keys = Keys("site-a:")
    p = keys.prefix
    for n in (0, 1, RECORDS_PER_LIST - 1, RECORDS_PER_LIST, 5 * RECORDS_PER_LIST + 17):
        key, pos = keys.subs_record(n)
        assert _lua(r, f"subs_record_key(ARGV[1], {n})", p) == [key, str(pos)]
        assert key == keys.subs_records(n // RECORDS_PER_LIST)
    assert _lua(r, "subs_index_key(ARGV[1], 70)", p) == [keys.subs_index(70)]
    assert _lua(r, "subs_topic_key(ARGV[1], 'politik')", p) == [keys.subs_topic("politik")]
    assert _lua(r, "subs_daily_key(ARGV[1], 'added')", p) == [keys.subs_daily("added")]
    for name in ("subs_index_meta", "subs_seq", "subs_live", "subs_quarantined", "subs_failures"):
        assert _lua(r, f"{name}_key(ARGV[1])", p) == [getattr(keys, name)]
    assert _lua(r, "subs_first_failure_key(ARGV[1])", p) == [keys.subs_first_failure]


def test_no_module_spells_a_key_name_outside_keys_py() -> None:
    """Key names and the records-per-list are spelled in notifier/keys.py only (docs and tests may name them)."""
    spelled = re.compile(r"""["'](subs|campaign|metrics|tmp|ratelimit):|:(reserved|held|audience)["']""")
    offenders = []
    for package in ("notifier", "web", "workers", "notifier_cli", "notifier_simulator", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "notifier" / "keys.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "``" in line or line.lstrip().startswith("#"):
                    continue  # documentation may name keys
                if spelled.search(line) or re.search(r"[/%] ?128\b", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
