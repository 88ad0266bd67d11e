"""The OpenAPI 3 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Only operations whose route is registered in the running app are served, so the
description never promises a route this deployment lacks (the CMS webhook is a
separate blueprint). ``tests/security/test_fuzz.py`` drives every served operation
with schemathesis: no input may produce a 5xx or store anything when refused.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from notifier.campaigns import BODY_MAX, TITLE_MAX, TTL_MAX, URGENCIES, URL_MAX
from notifier.endpoints import MAX_ENDPOINT_LENGTH
from notifier.subscriptions import LANGS, MAX_KEY_CHARS, MAX_TOPICS

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

PREFIX = "/api/v1"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json_body(ref: str, *, required: bool = True) -> dict[str, Any]:
    return {
        "required": required,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _ok(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


BAD = _error("Invalid input; `message` says what is wrong")
TOO_LARGE = _error("The body is larger than the route accepts")
MEDIA = _error("The body is not application/json")
SUBSCRIBE_RATE = {
    **_error(
        "Too many new subscriptions from this network (an IPv4 address, an IPv6 /64) or for the whole "
        "site; a known endpoint is never refused. Retry after `Retry-After` seconds"
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
RECEIPT_RATE = {
    **_error(
        "One receipt token repeated too often, or too many refused receipts from this network (genuine "
        "receipts are never limited per address). Retry after `Retry-After` seconds"
    ),
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
UNAUTHORIZED = _error("Missing or invalid API token")
NOT_FOUND = _error("No such subscription or campaign")

TOPICS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_TOPICS,
    "uniqueItems": True,
    "items": {"type": "string", "pattern": "^[a-z0-9-]{1,32}$"},
    "description": "Topic slugs from GET /topics; an empty list or none follows everything",
}
ENDPOINT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "uri",
    "maxLength": MAX_ENDPOINT_LENGTH,
    "description": "The push service URL the browser gave; only known push services (or NOTIFIER_PUSH_HOSTS)",
}
URL_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "uri",
    "pattern": "^https?://",
    "maxLength": URL_MAX,
}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "notifier API",
        "version": "1",
        "description": (
            "Web push for a news site: readers' browsers subscribe, the newsroom and CMS create campaigns, "
            'service workers report receipts. Errors are JSON `{"error", "message"}`.'
        ),
    },
    "servers": [{"url": PREFIX}],
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "`notifier token create NAME`"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            },
            "Subscription": {
                "type": "object",
                "required": ["endpoint", "keys"],
                "properties": {
                    "endpoint": ENDPOINT_SCHEMA,
                    "expirationTime": {"type": "integer", "nullable": True, "minimum": 0},
                    "keys": {
                        "type": "object",
                        "required": ["p256dh", "auth"],
                        "properties": {
                            "p256dh": {
                                "type": "string",
                                "maxLength": MAX_KEY_CHARS,
                                "description": "base64url uncompressed P-256 point (65 bytes)",
                            },
                            "auth": {
                                "type": "string",
                                "maxLength": MAX_KEY_CHARS,
                                "description": "base64url, 16 bytes",
                            },
                        },
                    },
                    "topics": TOPICS_SCHEMA,
                    "lang": {"type": "string", "enum": list(LANGS)},
                    "applicationServerKey": {
                        "type": "string",
                        "maxLength": 200,
                        "description": (
                            "base64url public key the browser subscribed with (PushSubscription.options): "
                            "when it is one of the site's VAPID keys, the subscription is bound to it"
                        ),
                    },
                    "replaces": {
                        **ENDPOINT_SCHEMA,
                        "description": (
                            "the endpoint of the subscription this one replaces (pushsubscriptionchange, "
                            "a new VAPID key): it takes that one's place, id, topics and language"
                        ),
                    },
                },
            },
            "SubscriptionState": {
                "type": "object",
                "required": ["id", "topics", "lang"],
                "properties": {
                    "id": {"type": "string"},
                    "topics": {"type": "array", "items": {"type": "string"}},
                    "lang": {"type": "string", "enum": list(LANGS)},
                    "replaced": {"type": "boolean", "description": "true when it took another one's place"},
                },
            },
            "TopicsChange": {
                "type": "object",
                "required": ["endpoint", "topics"],
                "properties": {"endpoint": ENDPOINT_SCHEMA, "topics": TOPICS_SCHEMA},
            },
            "EndpointOnly": {
                "type": "object",
                "required": ["endpoint"],
                "properties": {"endpoint": ENDPOINT_SCHEMA},
            },
            "CampaignInput": {
                "type": "object",
                "required": ["title", "body", "url"],
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX},
                    "body": {"type": "string", "minLength": 1, "maxLength": BODY_MAX},
                    "url": URL_SCHEMA,
                    "image": URL_SCHEMA,
                    "icon": URL_SCHEMA,
                    "topics": TOPICS_SCHEMA,
                    "breaking": {"type": "boolean"},
                    "ttl": {"type": "integer", "minimum": 60, "maximum": TTL_MAX},
                    "urgency": {"type": "string", "enum": list(URGENCIES)},
                    "story": {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,32}$"},
                    "send_at": {
                        "oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}],
                        "description": "unix seconds or ISO 8601 with a zone; omitted: now",
                    },
                },
            },
            "CampaignAccepted": {
                "type": "object",
                "required": ["id", "state"],
                "properties": {
                    "id": {"type": "string"},
                    "state": {"type": "string"},
                    "send_at": {"type": "number", "nullable": True},
                },
            },
            "Campaign": {
                "type": "object",
                "required": ["id", "state", "counters"],
                "properties": {
                    "id": {"type": "string"},
                    "state": {"type": "string"},
                    "title": {"type": "string"},
                    "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "progress": {"type": "number"},
                },
            },
            "Receipt": {
                "type": "object",
                "required": ["type", "cid", "sid", "rt"],
                "properties": {
                    "type": {"type": "string", "enum": ["shown", "clicked"]},
                    "cid": {"type": "string", "maxLength": 64},
                    "sid": {"type": "string", "maxLength": 64},
                    "rt": {
                        "type": "string",
                        "maxLength": 64,
                        "description": "receipt token from the push payload",
                    },
                },
            },
            "Article": {
                "type": "object",
                "required": ["guid", "title", "url"],
                "properties": {
                    "guid": {"type": "string", "minLength": 1, "maxLength": 200},
                    "title": {"type": "string", "minLength": 1},
                    "summary": {"type": "string"},
                    "url": URL_SCHEMA,
                    "image": URL_SCHEMA,
                    "categories": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "CMS section names, mapped onto topics",
                    },
                    "breaking": {"type": "boolean"},
                    "published_at": {
                        "oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]
                    },
                },
            },
        },
    },
    "paths": {
        "/vapid-public-key": {
            "get": {
                "operationId": "vapidPublicKey",
                "summary": "The VAPID public key for pushManager.subscribe",
                "responses": {
                    "200": {
                        "description": "base64url uncompressed P-256 point",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["publicKey"],
                                    "properties": {"publicKey": {"type": "string"}},
                                }
                            }
                        },
                    }
                },
            }
        },
        "/topics": {
            "get": {
                "operationId": "topics",
                "summary": "Topics readers can follow",
                "responses": {
                    "200": {
                        "description": "slug and names",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["topics"],
                                    "properties": {
                                        "topics": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "required": ["slug"],
                                                "properties": {
                                                    "slug": {"type": "string"},
                                                    "id": {"type": "string"},
                                                    "en": {"type": "string"},
                                                },
                                            },
                                        }
                                    },
                                }
                            }
                        },
                    }
                },
            }
        },
        "/subscriptions": {
            "post": {
                "operationId": "subscribe",
                "summary": "Store (or update) a browser's PushSubscription",
                "requestBody": _json_body("Subscription"),
                "responses": {
                    "201": _ok("Stored", "SubscriptionState"),
                    "200": _ok("Known endpoint updated", "SubscriptionState"),
                    "400": BAD,
                    "413": TOO_LARGE,
                    "415": MEDIA,
                    "429": SUBSCRIBE_RATE,
                },
            },
            "get": {
                "operationId": "subscriptionStatus",
                "summary": "Topics and language stored for an endpoint",
                "parameters": [
                    {"name": "endpoint", "in": "query", "required": True, "schema": ENDPOINT_SCHEMA},
                ],
                "responses": {"200": _ok("Stored state", "SubscriptionState"), "400": BAD, "404": NOT_FOUND},
            },
            "patch": {
                "operationId": "changeTopics",
                "summary": "Replace the topics of a stored subscription",
                "requestBody": _json_body("TopicsChange"),
                "responses": {
                    "200": _ok("Changed", "SubscriptionState"),
                    "400": BAD,
                    "404": NOT_FOUND,
                    "413": TOO_LARGE,
                    "415": MEDIA,
                },
            },
            "delete": {
                "operationId": "unsubscribe",
                "summary": "Forget a subscription (204 also when it was not stored)",
                "requestBody": _json_body("EndpointOnly"),
                "responses": {
                    "204": {"description": "Forgotten"},
                    "400": BAD,
                    "413": TOO_LARGE,
                    "415": MEDIA,
                },
            },
        },
        "/campaigns": {
            "post": {
                "operationId": "createCampaign",
                "summary": "Create a campaign and send it now or at send_at",
                "security": [{"bearer": []}],
                "requestBody": _json_body("CampaignInput"),
                "responses": {
                    "202": _ok("Accepted, scheduled", "CampaignAccepted"),
                    "400": BAD,
                    "401": UNAUTHORIZED,
                    "413": TOO_LARGE,
                    "415": MEDIA,
                },
            }
        },
        "/campaigns/{cid}": {
            "get": {
                "operationId": "showCampaign",
                "summary": "State, counters and progress of a campaign",
                "security": [{"bearer": []}],
                "parameters": [{"name": "cid", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("The campaign", "Campaign"), "401": UNAUTHORIZED, "404": NOT_FOUND},
            }
        },
        "/campaigns/{cid}/cancel": {
            "post": {
                "operationId": "cancelCampaign",
                "summary": "Cancel a campaign that has not finished",
                "security": [{"bearer": []}],
                "parameters": [{"name": "cid", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _ok("Cancelled", "Campaign"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": _error("Already finished"),
                },
            }
        },
        "/events": {
            "post": {
                "operationId": "receipt",
                "summary": "A shown/clicked receipt from the service worker, counted once",
                "requestBody": _json_body("Receipt"),
                "responses": {
                    "202": {
                        "description": "Counted (or a repeat, counted: false)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["counted"],
                                    "properties": {"counted": {"type": "boolean"}},
                                }
                            }
                        },
                    },
                    "400": BAD,
                    "404": NOT_FOUND,
                    "413": TOO_LARGE,
                    "415": MEDIA,
                    "429": RECEIPT_RATE,
                },
            }
        },
        "/articles": {
            "post": {
                "operationId": "articleWebhook",
                "summary": "CMS webhook: a published article becomes a campaign (once per guid)",
                "description": (
                    "The raw body is signed: `X-Notifier-Signature: sha256=<hex HMAC-SHA256(secret, "
                    "timestamp + '.' + body)>` with the unix time in `X-Notifier-Timestamp`."
                ),
                "parameters": [
                    {
                        "name": "X-Notifier-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                    },
                    {
                        "name": "X-Notifier-Timestamp",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                    },
                ],
                "requestBody": _json_body("Article"),
                "responses": {
                    "201": {"description": "Campaign created: `{status, campaign, state}`"},
                    "200": {"description": "Duplicate: this guid or URL was pushed before"},
                    "400": BAD,
                    "401": _error("Missing, wrong or stale signature"),
                    "413": TOO_LARGE,
                    "415": MEDIA,
                    "503": _error("NOTIFIER_WEBHOOK_SECRET is not set"),
                },
            }
        },
    },
}


def _flask_rule(path: str) -> str:
    """``/campaigns/{cid}`` → ``/api/v1/campaigns/<cid>``."""
    return PREFIX + re.sub(r"\{(\w+)\}", r"<\1>", path)


def served_spec() -> dict[str, Any]:
    """The description, limited to the operations this app actually routes."""
    routed: dict[str, set[str]] = {}
    for rule in current_app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        routed.setdefault(path, set()).update(m.lower() for m in rule.methods or ())
    spec = copy.deepcopy(SPEC)
    for path in list(spec["paths"]):
        methods = routed.get(_flask_rule(path), set())
        operations = spec["paths"][path]
        for method in list(operations):
            if method not in methods:
                del operations[method]
        if not operations:
            del spec["paths"][path]
    return spec


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 description of this API."""
    return jsonify(served_spec())
