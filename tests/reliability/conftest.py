"""Helpers for fault tests: bulk subscriptions, campaigns, fast abandoned-job detection, timed reports."""

from __future__ import annotations
