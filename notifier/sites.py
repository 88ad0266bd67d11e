"""Sites: the publications one deployment serves, each with its origins, topics, language and VAPID key.

A media group runs one notifier for several sites (``m.medcom.id`` and ``www.medcom.id`` are one
site with two origins; another title is another site). A push subscription belongs to the origin
whose page registered the service worker, so a site is first of all the set of origins its readers
subscribe from; requests from those origins (the embed, the service worker's receipts) are that
site's, and an origin no site declares is refused.

Sites are declared in a JSON file (``NOTIFIER_SITES_FILE``, else ``$NOTIFIER_DATA_DIR/sites.json``
when it exists; ``notifier sites add`` writes it)::

    {
      "default": "medcom",
      "sites": [
        {"id": "medcom", "name": "Medcom.id", "origins": ["https://m.medcom.id", "https://www.medcom.id"],
         "lang": "id", "topics_file": "medcom-topics.json", "vapid_key_file": "medcom-vapid.pem",
         "quiet_hours": "23-5", "freq_cap_per_hour": 6, "webhook_topics": ["nasional"],
         "domains": ["img.medcom.id"], "webhook_secret_file": "medcom-webhook.secret",
         "reader_budget": 20}
      ]
    }

A site may override the deployment's reader protection: ``timezone``, ``quiet_hours``,
``freq_cap_per_hour``, and the reader-standing rules ``unreachable_after``, ``reader_budget`` (pushes)
and ``long_hold_after`` (seconds) of ``NOTIFIER_UNREACHABLE_AFTER``, ``NOTIFIER_READER_BUDGET`` and
``NOTIFIER_LONG_HOLD_AFTER``; a field left out takes the deployment's value.

Without a file there is one site, ``default``, built from the settings of a single-site deployment
(``NOTIFIER_SITE_NAME``, the origin of ``NOTIFIER_PUBLIC_URL``, ``NOTIFIER_TOPICS_FILE``, the
deployment's VAPID key), so a deployment of before sites keeps working unchanged.

What the server itself may fetch for a site (compose prefill, the site's feeds) is that site's own
domains: the hosts of its origins plus the optional ``domains`` of its entry (``host`` or
``host:port``, e.g. a separate feeds or CDN host); the default site also keeps the deployment's
``NOTIFIER_SITE_DOMAINS``, which is all the implicit single site has (its origin is notifier's own).
A site's ``webhook_secret_file`` holds the secret its CMS signs the webhook with (the signature then
decides the site; the deployment's ``NOTIFIER_WEBHOOK_SECRET`` signs for the sites without one).
Relative paths in the file are relative to the file's folder. Every problem is reported at start-up,
all at once, naming the site and the field.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifier.errors import ConfigError, NotFound, ValidationError
from notifier.settings import Settings, parse_quiet_hours
from notifier.topics import Topic, load_topics, parse_topics

#: The id of the one site a deployment without a sites file serves (its existing data belongs to it).
DEFAULT_SITE_ID = "default"
#: Site ids: what a publisher types in ``data-site``, and part of Redis key names.
SITE_ID = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
#: Languages a site may default to (the reader can switch between them in the widget).
SITE_LANGS = ("id", "en")
NAME_MAX = 80
#: Fields a site entry may carry (anything else is a typo worth reporting).
FIELDS = frozenset(
    {
        "id",
        "name",
        "origins",
        "url",
        "lang",
        "topics",
        "topics_file",
        "vapid_key_file",
        "timezone",
        "quiet_hours",
        "freq_cap_per_hour",
        "webhook_topics",
        "domains",
        "webhook_secret_file",
        "unreachable_after",
        "reader_budget",
        "long_hold_after",
    }
)
#: The shortest webhook secret a site may have (``notifier sites webhook-secret`` makes 43 characters).
WEBHOOK_SECRET_MIN = 16
#: Per-site overrides of the deployment's reader-standing rules: (field, setting, largest value).
#: The two counts of pushes fit the u8 run counters of ``MARK_SENT``; the hold is seconds.
STANDING_FIELDS = (
    ("unreachable_after", "NOTIFIER_UNREACHABLE_AFTER", 255),
    ("reader_budget", "NOTIFIER_READER_BUDGET", 255),
    ("long_hold_after", "NOTIFIER_LONG_HOLD_AFTER", None),
)


def format_quiet_hours(hours: tuple[int, int] | None) -> str:
    """``22-6``, or the empty string for none (the form the settings and the sites file take)."""
    return "" if hours is None else f"{hours[0]}-{hours[1]}"


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_origin(value: Any) -> str:
    """``scheme://host[:port]`` in canonical form (lower case, no default port, no path), or ValidationError.

    Plain ``http`` is accepted for loopback hosts only: a push subscription needs a secure context,
    which on the public internet means https.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("an origin must be a string like https://www.example.com")
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not an origin: {exc}") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise ValidationError(f"{text!r} is not an origin: it needs https:// and a host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(f"{text!r} is not an origin: no path, query or user, just scheme://host[:port]")
    if scheme == "http" and not _loopback(host):
        raise ValidationError(
            f"{text!r} uses http: browsers allow push only in secure contexts, so a site's origin "
            "must be https (plain http is accepted for localhost and 127.0.0.1, for testing)"
        )
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalize_domain(value: Any) -> str:
    """``host`` or ``host:port`` as the guarded fetcher compares it (lower case), or ValidationError."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("a domain must be a host name like feeds.example.com (or host:port)")
    text = value.strip().lower()
    try:
        parts = urlsplit("//" + text)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a domain: {exc}") from exc
    if not parts.hostname or parts.path or parts.query or parts.fragment or "@" in text:
        raise ValidationError(f"{value!r} is not a domain: give host or host:port, no scheme or path")
    if port is not None and not 0 < port < 65536:
        raise ValidationError(f"{value!r} is not a domain: port {port} does not exist")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if port is None else f"{host}:{port}"


def origin_domain(origin: str) -> str:
    """The ``host[:port]`` of a canonical origin (what the fetcher compares a URL's authority with)."""
    return origin.split("://", 1)[1]


def origin_of_url(url: str) -> str:
    """The origin of an http(s) URL (no loopback rule: it names this deployment's own address)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (parts.scheme, port) in (("http", 80), ("https", 443)):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _relative(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` where it is inside it (how the sites file names its files)."""
    if base is not None and path.is_absolute():
        try:
            return str(path.relative_to(base))
        except ValueError:
            pass
    return str(path)


@dataclass(frozen=True)
class Site:
    """One publication: who its readers are (origins), what they follow (topics), how it sends."""

    id: str
    name: str
    origins: tuple[str, ...]
    topics: tuple[Topic, ...]
    lang: str = "id"
    #: The front page: where a notification without a usable URL leads.
    url: str = ""
    #: Its own VAPID private key (PEM); None: the deployment's key.
    vapid_key_file: Path | None = None
    #: Overrides of the deployment's reader protection; None: the deployment's setting.
    timezone: str | None = None
    quiet_hours: tuple[int, int] | None = None
    quiet_hours_set: bool = False
    freq_cap_per_hour: int | None = None
    #: Topics of a webhook or feed article matching none; None: the deployment's NOTIFIER_WEBHOOK_TOPICS.
    webhook_topics: tuple[str, ...] | None = None
    #: Hosts (``host[:port]``) besides its origins' that prefill and its feeds may fetch from.
    domains: tuple[str, ...] = ()
    #: The file of the secret its CMS signs webhook calls with, and that secret (None/"": the deployment's).
    webhook_secret_file: Path | None = None
    webhook_secret: str = field(default="", repr=False)
    #: Overrides of the deployment's NOTIFIER_UNREACHABLE_AFTER, NOTIFIER_READER_BUDGET and
    #: NOTIFIER_LONG_HOLD_AFTER (0: off for this site); None: the deployment's setting.
    unreachable_after: int | None = None
    reader_budget: int | None = None
    long_hold_after: int | None = None

    @property
    def topic_slugs(self) -> tuple[str, ...]:
        """Slugs of the site's topics, in order."""
        return tuple(t.slug for t in self.topics)

    def allows_origin(self, origin: str) -> bool:
        """True when ``origin`` (already canonical) is one of the site's."""
        return origin in self.origins

    def zone(self, settings: Settings) -> str:
        """The time zone of the site's quiet hours and schedules."""
        return self.timezone or settings.timezone

    def quiet(self, settings: Settings) -> tuple[int, int] | None:
        """The site's quiet hours (the deployment's unless the site sets its own, possibly none)."""
        return self.quiet_hours if self.quiet_hours_set else settings.quiet_hours

    def freq_cap(self, settings: Settings) -> int:
        """Non-breaking pushes per reader per hour (0: no cap)."""
        return settings.freq_cap_per_hour if self.freq_cap_per_hour is None else self.freq_cap_per_hour

    def unreachable(self, settings: Settings) -> int:
        """Pushes in a row shown by none after which a reader is unreachable (0: the rule is off)."""
        return settings.unreachable_after if self.unreachable_after is None else self.unreachable_after

    def budget(self, settings: Settings) -> int:
        """Pushes in a row clicked by none after which a reader gets breaking news only (0: no budget)."""
        return settings.reader_budget if self.reader_budget is None else self.reader_budget

    def long_hold(self, settings: Settings) -> int:
        """A push service's Retry-After longer than this many seconds holds it for the campaign (0: never)."""
        return settings.long_hold_after if self.long_hold_after is None else self.long_hold_after

    def standing_rules(self, settings: Settings) -> dict[str, int]:
        """The three rules in force for the site, by field name (what ``notifier sites show`` prints)."""
        return {
            "unreachable_after": self.unreachable(settings),
            "reader_budget": self.budget(settings),
            "long_hold_after": self.long_hold(settings),
        }

    def default_topics(self, settings: Settings) -> tuple[str, ...]:
        """Topics of an article that maps to none of the site's (empty: everyone)."""
        chosen = settings.webhook_topics if self.webhook_topics is None else self.webhook_topics
        known = set(self.topic_slugs)
        return tuple(t for t in chosen if t in known)

    def entry(self, base: Path | None = None) -> dict[str, Any]:
        """The site as an entry of the sites file (paths relative to ``base`` where they can be)."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "origins": list(self.origins)}
        if self.url:
            data["url"] = self.url
        data["lang"] = self.lang
        data["topics"] = [{"slug": t.slug, "id": t.name_id, "en": t.name_en} for t in self.topics]
        if self.vapid_key_file is not None:
            data["vapid_key_file"] = _relative(self.vapid_key_file, base)
        if self.timezone:
            data["timezone"] = self.timezone
        if self.quiet_hours_set:
            data["quiet_hours"] = format_quiet_hours(self.quiet_hours)
        if self.freq_cap_per_hour is not None:
            data["freq_cap_per_hour"] = self.freq_cap_per_hour
        if self.webhook_topics is not None:
            data["webhook_topics"] = list(self.webhook_topics)
        if self.domains:
            data["domains"] = list(self.domains)
        if self.webhook_secret_file is not None:
            data["webhook_secret_file"] = _relative(self.webhook_secret_file, base)
        for name, _setting, _top in STANDING_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass(frozen=True)
class Sites:
    """The deployment's sites, in declared order, with one default."""

    all: tuple[Site, ...]
    default_id: str
    #: The file they were read from (None: the implicit single site).
    source: Path | None = None
    _by_id: dict[str, Site] = field(init=False, repr=False, compare=False)
    _by_origin: dict[str, Site] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {s.id: s for s in self.all})
        object.__setattr__(self, "_by_origin", {o: s for s in self.all for o in s.origins})

    def __iter__(self) -> Iterator[Site]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    @property
    def default(self) -> Site:
        """The site of requests that name none (notifier's own pages, API clients of a single site)."""
        return self._by_id[self.default_id]

    @property
    def ids(self) -> tuple[str, ...]:
        """Every site id, in declared order."""
        return tuple(s.id for s in self.all)

    def find(self, site_id: str | None) -> Site | None:
        """The site with this id, or None."""
        return self._by_id.get(site_id) if isinstance(site_id, str) else None

    def get(self, site_id: str | None) -> Site:
        """The site with this id (the default one for None); NotFound naming the known ids otherwise."""
        if site_id is None or site_id == "":
            return self.default
        site = self.find(site_id)
        if site is None:
            shown = site_id[:40] if isinstance(site_id, str) else type(site_id).__name__
            raise NotFound(f"no site {shown!r}; sites: {', '.join(self.ids)}", code="unknown_site")
        return site

    def fetch_domains(self, site: Site, settings: Settings) -> tuple[str, ...]:
        """The domains the server may fetch from for ``site`` (prefill, its feeds, their redirects).

        A declared site's origins' hosts and its extra ``domains``; the default site also keeps the
        deployment's ``NOTIFIER_SITE_DOMAINS``, all the implicit single site has. notifier's own
        origin is never one by being a site's origin (its pages are no article to read, and the
        server must not be steered at itself): only by being listed in ``domains`` explicitly.
        """
        found: list[str] = []
        if self.source is not None:
            try:
                own = normalize_origin(origin_of_url(settings.public_url))
            except ValidationError:
                own = ""
            found += [origin_domain(o) for o in site.origins if o != own]
            found += site.domains
        if site.id == self.default_id:
            found += [d for d in (d.strip().lower().rstrip("/") for d in settings.site_domains) if d]
        return tuple(dict.fromkeys(found))

    def by_origin(self, origin: str) -> Site | None:
        """The site that declares ``origin`` (any form; it is normalised), or None."""
        found = self._by_origin.get(origin)
        if found is not None:
            return found
        try:
            return self._by_origin.get(normalize_origin(origin))
        except ValidationError:
            return None


def implicit_site(settings: Settings, topics: Sequence[Topic] | None = None) -> Site:
    """The one site of a deployment without a sites file, from its single-site settings.

    Its origin is notifier's own (its pages are the site's pages), when that can be a site's origin.
    """
    try:
        origins: tuple[str, ...] = (normalize_origin(origin_of_url(settings.public_url)),)
    except ValidationError:
        origins = ()  # plain http on a public host: its own pages still reach it as notifier's origin
    return Site(
        id=DEFAULT_SITE_ID,
        name=settings.site_name,
        origins=origins,
        topics=tuple(topics) if topics is not None else load_topics(settings.topics_file),
        lang="id",
        url=settings.public_url.rstrip("/") + "/",
    )


def sites_path(settings: Settings) -> Path:
    """Where the sites file is (or would be written by ``notifier sites add``)."""
    return settings.sites_file or settings.data_dir / "sites.json"


def load_sites(settings: Settings) -> Sites:
    """The configured sites: the sites file when there is one, else the implicit single site.

    Raises :class:`ConfigError` listing every problem of the file.
    """
    path = sites_path(settings)
    if settings.sites_file is None and not path.exists():
        return Sites((implicit_site(settings),), DEFAULT_SITE_ID)
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"NOTIFIER_SITES_FILE {path} does not exist (`notifier sites add` creates it)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the sites file {path} is not readable JSON: {exc}") from exc
    return parse_sites(raw, settings=settings, base=path.parent, source=path)


def _site_from(entry: Any, index: int, settings: Settings, base: Path, errors: list[str]) -> Site | None:
    where = f"sites[{index}]"
    if not isinstance(entry, dict):
        errors.append(f"{where} must be an object")
        return None
    site_id = entry.get("id")
    if not isinstance(site_id, str) or not SITE_ID.match(site_id):
        errors.append(
            f"{where}.id must be 1-32 lower-case letters, digits and dashes starting with a letter, "
            f"got {site_id!r}"
        )
        return None
    where = f"site {site_id!r}"
    start = len(errors)
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        errors.append(f"{where}: 'name' must be a non-empty string of at most {NAME_MAX} characters")
        name = site_id
    origins: list[str] = []
    raw_origins = entry.get("origins")
    if not isinstance(raw_origins, list):
        errors.append(f"{where}: 'origins' must be a list like [\"https://www.example.com\"]")
    else:
        for value in raw_origins:
            try:
                origin = normalize_origin(value)
            except ValidationError as exc:
                errors.append(f"{where}: {exc.message}")
                continue
            if origin not in origins:
                origins.append(origin)
    lang = entry.get("lang", "id")
    if lang not in SITE_LANGS:
        errors.append(f"{where}: 'lang' must be one of {', '.join(SITE_LANGS)}, not {lang!r}")
        lang = "id"
    topics: tuple[Topic, ...] = ()
    try:
        if "topics" in entry and "topics_file" in entry:
            raise ConfigError("give 'topics' or 'topics_file', not both")
        if "topics" in entry:
            topics = parse_topics(entry["topics"], source=f"{where} 'topics'")
        elif "topics_file" in entry:
            topics_file = entry["topics_file"]
            if not isinstance(topics_file, str) or not topics_file:
                raise ConfigError("'topics_file' must be a path")
            topics = load_topics(base / topics_file)
        else:
            topics = load_topics(settings.topics_file)
    except ConfigError as exc:
        errors.append(f"{where}: {exc.message}")
    url = entry.get("url", "")
    if url:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append(f"{where}: 'url' must be the site's http(s) front page")
            url = ""
    if not url and origins:
        url = origins[0] + "/"
    key_file: Path | None = None
    if entry.get("vapid_key_file") not in (None, "", "deployment"):
        value = entry["vapid_key_file"]
        if not isinstance(value, str):
            errors.append(f"{where}: 'vapid_key_file' must be a path")
        else:
            key_file = (base / value).resolve()
            if not key_file.exists():
                errors.append(
                    f"{where}: VAPID key file {key_file} does not exist "
                    f"(`notifier sites add {site_id} --own-key` creates one)"
                )
    timezone = entry.get("timezone")
    if timezone is not None:
        try:
            if not isinstance(timezone, str):
                raise ZoneInfoNotFoundError(str(timezone))
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"{where}: 'timezone' {timezone!r} is not an IANA time zone like Asia/Jakarta")
            timezone = None
    quiet: tuple[int, int] | None = None
    quiet_set = "quiet_hours" in entry
    if quiet_set:
        try:
            value = entry["quiet_hours"]
            if value is not None and not isinstance(value, str):
                raise ValueError("quiet hours must be a string like 22-6")
            quiet = parse_quiet_hours(value or "")
        except ValueError as exc:
            errors.append(f"{where}: 'quiet_hours': {exc}")
    cap = entry.get("freq_cap_per_hour")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        errors.append(f"{where}: 'freq_cap_per_hour' must be a whole number, 0 for no cap")
        cap = None
    webhook_topics: tuple[str, ...] | None = None
    if "webhook_topics" in entry:
        value = entry["webhook_topics"]
        slugs = {t.slug for t in topics}
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            errors.append(f"{where}: 'webhook_topics' must be a list of topic slugs")
        else:
            unknown_topics = [t for t in value if t not in slugs]
            if unknown_topics and topics:
                errors.append(f"{where}: 'webhook_topics' names unknown topics {', '.join(unknown_topics)}")
            webhook_topics = tuple(value)
    domains: list[str] = []
    raw_domains = entry.get("domains", [])
    if not isinstance(raw_domains, list):
        errors.append(f"{where}: 'domains' must be a list like [\"feeds.example.com\"]")
    else:
        for value in raw_domains:
            try:
                domain = normalize_domain(value)
            except ValidationError as exc:
                errors.append(f"{where}: 'domains': {exc.message}")
                continue
            if domain not in domains:
                domains.append(domain)
    secret_file: Path | None = None
    secret = ""
    if entry.get("webhook_secret_file") not in (None, ""):
        value = entry["webhook_secret_file"]
        if not isinstance(value, str):
            errors.append(f"{where}: 'webhook_secret_file' must be a path")
        else:
            secret_file = (base / value).resolve()
            try:
                secret = secret_file.read_text("utf-8").strip()
            except (OSError, UnicodeError) as exc:
                errors.append(
                    f"{where}: webhook secret file {secret_file} cannot be read ({type(exc).__name__}); "
                    f"`notifier sites webhook-secret {site_id} --new` writes one"
                )
            else:
                if len(secret) < WEBHOOK_SECRET_MIN:
                    errors.append(
                        f"{where}: the webhook secret in {secret_file} is shorter than "
                        f"{WEBHOOK_SECRET_MIN} characters"
                    )
    standing: dict[str, int | None] = {}
    for rule, setting, top in STANDING_FIELDS:
        value = entry.get(rule)
        standing[rule] = None
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < 0
            or (top is not None and value > top)
        ):
            unit = (
                f"a number of pushes from 0 (off) to {top}" if top is not None else "0 (off) or more seconds"
            )
            errors.append(
                f"{where}: {rule!r} must be {unit}, got {value!r} "
                f"(leave it out to use the deployment's {setting})"
            )
            continue
        standing[rule] = value
    if len(errors) > start:
        return None
    return Site(
        id=site_id,
        name=name.strip(),
        origins=tuple(origins),
        topics=topics,
        lang=lang,
        url=url,
        vapid_key_file=key_file,
        timezone=timezone,
        quiet_hours=quiet,
        quiet_hours_set=quiet_set,
        freq_cap_per_hour=cap,
        webhook_topics=webhook_topics,
        domains=tuple(domains),
        webhook_secret_file=secret_file,
        webhook_secret=secret,
        unreachable_after=standing["unreachable_after"],
        reader_budget=standing["reader_budget"],
        long_hold_after=standing["long_hold_after"],
    )


def parse_sites(raw: Any, *, settings: Settings, base: Path, source: Path | None = None) -> Sites:
    """Sites from the sites file's JSON document; ConfigError listing every problem."""
    label = str(source) if source is not None else "the sites file"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sites"), list):
        raise ConfigError(f'{label} must be an object {{"default": "<site id>", "sites": [...]}}')
    errors: list[str] = []
    sites: list[Site] = []
    for index, entry in enumerate(raw["sites"]):
        site = _site_from(entry, index, settings, base, errors)
        if site is None:
            continue
        if any(s.id == site.id for s in sites):
            errors.append(f"site {site.id!r} is declared twice")
            continue
        for origin in site.origins:
            owner = next((s for s in sites if origin in s.origins), None)
            if owner is not None:
                errors.append(
                    f"origin {origin} is declared by sites {owner.id!r} and {site.id!r}: "
                    "a reader's subscription belongs to one origin, so an origin belongs to one site"
                )
        sites.append(site)
    if not raw["sites"]:
        errors.append("no sites declared")
    extra = sorted(set(raw) - {"default", "sites"})
    if extra:
        errors.append(f"unknown top-level field(s) {', '.join(extra)}")
    default = raw.get("default")
    if default is None and sites:
        default = sites[0].id
    if sites and default not in {s.id for s in sites}:
        errors.append(f"'default' names {default!r}, which is not a declared site")
    if errors:
        raise ConfigError(f"{label}: " + "; ".join(errors))
    return Sites(tuple(sites), str(default), source)


def sites_document(sites: Sites, base: Path | None = None) -> dict[str, Any]:
    """The sites file's JSON document for ``sites``."""
    return {"default": sites.default_id, "sites": [s.entry(base) for s in sites]}


def write_sites_file(path: Path, document: Mapping[str, Any]) -> None:
    """Write the sites file atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sites-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # configuration, no secret: the site's and the workers' users read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
