"""notifier: self-hosted web push for news publishers.

The domain package: settings, Redis keys and stores, subscriptions, campaigns,
RFC 8291/8292 crypto and sending, the push service simulator. It imports
neither Flask nor RQ (``web`` and ``workers`` depend on it, never the reverse).
"""

__version__ = "0.1.0"
