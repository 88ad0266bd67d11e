"""A bare Flask endpoint: the same request shape as the subscribe API, minus validation and Redis.

It is the reference the subscribe API's throughput is compared with (same
gunicorn settings, same wrk script, same run).
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/api/v1/subscriptions")
def subscribe() -> tuple[Response, int]:
    """Parse the JSON body and answer 201, as the real endpoint does when it is new."""
    data = json.loads(request.get_data())
    return Response(
        json.dumps({"id": "bare", "topics": data.get("topics", []), "lang": "id"}),
        mimetype="application/json",
    ), 201
