"""An endpoint with blanks or control characters inside is refused, whatever the character (Unicode too)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.endpoints import canonical_endpoint
from notifier.errors import UnsafeEndpoint

BASE = "https://fcm.googleapis.com/fcm/send/"


def _blank_or_control(text: str) -> bool:
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)


@given(inside=st.text(min_size=1, max_size=20))
def test_blanks_and_controls_inside_are_refused_and_nothing_else_is(inside: str) -> None:
    endpoint = BASE + inside + "tail"
    if _blank_or_control(inside):
        with pytest.raises(UnsafeEndpoint, match="blanks or control characters"):
            canonical_endpoint(endpoint)
    else:
        assert canonical_endpoint(endpoint).startswith(BASE)


@pytest.mark.parametrize("char", ["\u00a0", "\u2028", "\u3000", "\x85", "\x1f", "\x7f", "\t", " "])
def test_unicode_blanks_and_controls_are_refused(char: str) -> None:
    with pytest.raises(UnsafeEndpoint):
        canonical_endpoint(BASE + "device" + char + "123")


def test_surrounding_blanks_are_stripped() -> None:
    assert canonical_endpoint(" \n" + BASE + "device-1\n") == BASE + "device-1"
