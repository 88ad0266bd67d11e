"""notifier: self-hosted web push for news publishers.

The domain package, the ground floor: settings, Redis keys and stores, sites,
subscriptions, campaigns, articles and feeds, RFC 8291/8292 crypto and sending,
delivery, stats. It imports neither Flask nor RQ nor any package above it
(``web``, ``workers``, ``notifier_simulator``, ``notifier_cli`` and ``bench``
depend on it, never the reverse; tests/notifier/test_layering.py proves it).
"""

#: The version of the whole distribution, written here only (pyproject.toml reads it).
__version__ = "0.1.0"
