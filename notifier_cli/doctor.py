"""``notifier doctor``: one message to a subscription through our sender and through pywebpush, compared.

The first thing to do when a push service starts refusing: if pywebpush (the reference
implementation of RFC 8291/8292 in Python) gets the same answer, the push service means
it (a dead subscription, a VAPID key it does not know, a rate limit); if the answers
differ, our sender's request is at fault. The doctor changes nothing stored: a ``gone``
answer deletes nothing, no counter moves.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import click
from cryptography.hazmat.primitives import serialization

from notifier.campaigns import campaign_payload_prefix, message_payload
from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.errors import NotFound, UnsafeEndpoint
from notifier.sending import Message, Sender, classify
from notifier.subscriptions import Subscription
from notifier.vapid import VapidKey
from notifier_cli.common import load_context

#: The notification tag of both messages: the device shows one notification, not two.
TAG = "notifier-doctor"
#: Seconds each sender may take.
TIMEOUT = 10.0
#: Exit status: both senders accepted; the answers differ (our sender is suspect); the service refused both.
EXIT_ACCEPTED, EXIT_DIFFERENT, EXIT_REFUSED = 0, 1, 2

#: What an answer both senders got usually means, by status.
CAUSES = {
    400: "the push service found the request malformed",
    401: "the push service does not accept our VAPID signature: check VAPID_PRIVATE_KEY and VAPID_SUBJECT",
    403: "the VAPID key is not the one this browser subscribed with (a key was changed or rotated), "
    "or VAPID_SUBJECT is refused",
    404: "the subscription is gone: the reader unsubscribed or the browser dropped it",
    410: "the subscription is gone: the reader unsubscribed or the browser dropped it",
    413: "the push service refuses a payload this large",
    429: "the push service is rate-limiting us: workers honour its Retry-After",
}


@dataclass
class Answer:
    """What one sender got back."""

    sender: str
    status: int
    kind: str
    retry_after: str
    detail: str
    milliseconds: int


def _payload(context: Context, sub: Subscription) -> bytes:
    prefix = campaign_payload_prefix(
        "notifier doctor",
        "A test message from the operators; it can be dismissed.",
        context.settings.public_url,
        "",
        "",
        TAG,
        "",  # no campaign: the service worker reports no receipt for it
    )
    return message_payload(prefix, sub.sid, "", int(time.time() * 1000))


def _ours(context: Context, vapid: VapidKey, message: Message) -> Answer:
    sender = Sender(context.settings, vapid, context.policy)

    async def send() -> Any:
        try:
            return await sender.send(message)
        finally:
            await sender.close()

    started = time.monotonic()
    outcome = asyncio.run(send())
    retry_after = "" if outcome.retry_after is None else f"{outcome.retry_after:g}"
    return Answer(
        "notifier", outcome.status, str(outcome.kind), retry_after, outcome.detail.strip(), _ms(started)
    )


def _pywebpush(vapid: VapidKey, sub: Subscription, message: Message) -> Answer:
    import requests
    from pywebpush import WebPushException, webpush

    class NoRedirects(requests.Session):
        """Never follows a redirect (it could point into a private network), as our sender does not."""

        def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            kwargs["allow_redirects"] = False
            return super().request(*args, **kwargs)

    info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
    headers = {"Urgency": message.urgency, "Topic": message.topic}
    started = time.monotonic()
    try:
        with NoRedirects() as session:
            response = webpush(
                info,
                data=message.payload.decode(),
                vapid_private_key=_der_b64(vapid),
                vapid_claims={"sub": vapid.subject},
                ttl=message.ttl,
                headers=headers,
                timeout=TIMEOUT,
                requests_session=session,
            )
    except WebPushException as exc:
        response = exc.response
        if response is None:
            return Answer("pywebpush", 0, "retry", "", str(exc)[:300], _ms(started))
    except requests.RequestException as exc:
        # A timeout or connection error, as our sender classifies it: try again later.
        return Answer("pywebpush", 0, "retry", "", f"{type(exc).__name__}: {exc}"[:300], _ms(started))
    assert not isinstance(response, str)
    retry_after = response.headers.get("Retry-After", "")
    kind, _ = classify(response.status_code, retry_after)
    detail = response.text[:300].strip() if response.status_code >= 300 else ""
    return Answer("pywebpush", response.status_code, str(kind), retry_after, detail, _ms(started))


def _der_b64(vapid: VapidKey) -> str:
    """The private key as pywebpush takes it in a string: base64url of its PKCS#8 DER."""
    der = vapid.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return b64url_encode(der)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def diagnose(context: Context, sub: Subscription, vapid: VapidKey) -> tuple[list[Answer], str, int]:
    """Send one message through each sender, both signed with ``vapid``; returns both answers, the verdict
    and the exit status."""
    message = Message(sub.sid, sub.endpoint, sub.p256dh, sub.auth, _payload(context, sub), 60, "normal", TAG)
    answers = [_ours(context, vapid, message), _pywebpush(vapid, sub, message)]
    ours, reference = answers
    if ours.kind == "sent" and reference.kind == "sent":
        return answers, "both accepted: the push service takes our messages", EXIT_ACCEPTED
    if ours.status == reference.status and ours.status:
        cause = CAUSES.get(ours.status, "the push service is failing" if ours.status >= 500 else "")
        verdict = f"the push service refuses both the same way (HTTP {ours.status}): it means it"
        return answers, verdict + (f"; {cause}" if cause else ""), EXIT_REFUSED
    verdict = (
        f"the answers differ (notifier: {ours.status or ours.detail[:60]}, pywebpush: "
        f"{reference.status or reference.detail[:60]}): our sender's request is suspect"
    )
    return answers, verdict, EXIT_DIFFERENT


def _find(context: Context, which: str) -> Subscription:
    store = context.subscriptions
    try:
        return store.get_by_endpoint(which) if "://" in which else store.get(which)
    except NotFound as exc:
        raise click.ClickException(f"no stored subscription {which[:80]!r}") from exc


@click.command("doctor")
@click.argument("subscription")
@click.option("--yes", is_flag=True, help="Do not ask before showing a test notification on that browser.")
@click.option("--json", "as_json", is_flag=True, help="Print the answers and the verdict as JSON.")
def doctor(subscription: str, yes: bool, as_json: bool) -> None:
    """Send one message to SUBSCRIPTION (its id or endpoint) through our sender and pywebpush; compare.

    Exit status 0: both accepted; 1: the answers differ (our sender is suspect); 2: the push service
    refused both the same way (the cause is printed). Nothing stored changes.
    """
    context = load_context()
    sub = _find(context, subscription)
    try:
        context.policy.check(sub.endpoint)
    except UnsafeEndpoint as exc:
        raise click.ClickException(f"this endpoint is never called: {exc.message}") from exc
    site = context.subscriptions.site_of(sub.sid) or context.sites.default_id
    # The key this reader subscribed with, as a campaign signs it (notifier.keyring): a rotated-out key
    # still signs for its readers until they move; a retired one signs for nobody.
    vapid = context.keyring.signing_key(site, sub.key_id)
    if vapid is None:
        raise click.ClickException(
            f"subscription {sub.sid} is bound to VAPID key {sub.key_id}, which is retired: no sender can "
            "sign for it (the reader moves to the current key on their next visit)"
        )
    service = urlsplit(sub.endpoint).hostname or "?"
    if not yes:
        click.confirm(
            f"Show a test notification on subscription {sub.sid} ({sub.browser}, {service})? "
            "It arrives twice, shown once (one tag)",
            abort=True,
        )
    answers, verdict, status = diagnose(context, sub, vapid)
    if as_json:
        click.echo(
            json.dumps({"subscription": sub.sid, "answers": [asdict(a) for a in answers], "verdict": verdict})
        )
    else:
        click.echo(f"subscription {sub.sid} at {service}, signed with VAPID key {vapid.key_id}")
        click.echo(f"{'':12} {'notifier':>12} {'pywebpush':>12}")
        for label, field in (("HTTP status", "status"), ("outcome", "kind"), ("Retry-After", "retry_after")):
            values = [str(getattr(a, field) or "-") for a in answers]
            click.echo(f"{label:12} {values[0]:>12} {values[1]:>12}")
        click.echo(f"{'time':12} {answers[0].milliseconds:>9} ms {answers[1].milliseconds:>9} ms")
        for answer in answers:
            if answer.detail:
                click.echo(f"{answer.sender} was told: {answer.detail}")
        click.echo(verdict)
    context.close()
    raise SystemExit(status)
