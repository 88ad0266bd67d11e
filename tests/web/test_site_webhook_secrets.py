"""Each site's CMS signs the webhook with that site's own secret, and the signature decides the site.

``notifier sites webhook-secret`` gives a site its secret; a body naming another site under it is a
403, the deployment's ``NOTIFIER_WEBHOOK_SECRET`` still signs for the default site (and any site
without a secret of its own), never for a site that has one.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.errors import ConfigError
from notifier.settings import Settings
from notifier.sites import load_sites
from notifier_cli import main as cli
from web.cms import sign


def signed(client: Any, secret: str, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    headers = {"X-Notifier-Timestamp": stamp, "X-Notifier-Signature": sign(secret, stamp, raw)}
    return client.post("/api/v1/articles", data=raw, headers=headers, content_type="application/json")


def article(n: int, **fields: Any) -> dict[str, Any]:
    return {"guid": f"cms-{n}", "title": f"Berita {n}", "url": f"https://warta.example/{n}", **fields}


def app_client(env: dict[str, str], r: Any) -> tuple[Any, Context]:
    from web import create_app

    context = Context.build(Settings.from_env(env), client=r)
    return create_app({"TESTING": True}, context=context).test_client(), context


def test_the_signature_decides_the_site(sites_env: dict[str, str], r: Any) -> None:
    runner = CliRunner(env=sites_env)
    made = runner.invoke(cli, ["sites", "webhook-secret", "warta"])
    assert made.exit_code == 0, made.output
    warta_secret = made.output.splitlines()[1]
    path = Path(sites_env["NOTIFIER_SITES_FILE"]).parent / "warta-webhook.secret"
    assert path.read_text().strip() == warta_secret and len(warta_secret) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = json.loads(Path(sites_env["NOTIFIER_SITES_FILE"]).read_text())["sites"][1]
    assert entry["webhook_secret_file"] == "warta-webhook.secret"
    assert "its own secret" in runner.invoke(cli, ["sites", "show", "warta"]).output
    assert "NOTIFIER_WEBHOOK_SECRET" in runner.invoke(cli, ["sites", "show", "kabar"]).output
    again = runner.invoke(cli, ["sites", "webhook-secret", "warta"])
    assert again.exit_code == 1 and "--new replaces it" in again.output

    client, context = app_client(sites_env, r)
    deployment = context.settings.webhook_secret
    store = CampaignStore(context.redis, context.keys)
    # Warta's secret: warta's article, whether or not the body names the site.
    named = signed(client, warta_secret, article(1, site="warta"))
    assert named.status_code == 201 and named.get_json()["site"] == "warta"
    unnamed = signed(client, warta_secret, article(2))
    assert unnamed.status_code == 201 and unnamed.get_json()["site"] == "warta"
    assert store.get(unnamed.get_json()["campaign"]).site == "warta"
    # A body naming kabar, signed with warta's secret, is refused: warta's CMS cannot push to kabar.
    crossed = signed(client, warta_secret, article(3, site="kabar"))
    assert crossed.status_code == 403 and crossed.get_json()["error"] == "wrong_site"
    assert "'warta'" in crossed.get_json()["message"]
    # The deployment's secret still signs for the default site, and no longer for warta.
    default = signed(client, deployment, article(4))
    assert default.status_code == 201 and default.get_json()["site"] == "kabar"
    assert signed(client, deployment, article(5, site="kabar")).status_code == 201
    refused = signed(client, deployment, article(6, site="warta"))
    assert refused.status_code == 403 and "has a webhook secret of its own" in refused.get_json()["message"]
    assert signed(client, "a-secret-nobody-has-0123", article(7)).status_code == 401
    titles = sorted((c.title, c.site) for c in store.list(0, 20))
    assert titles == [
        ("Berita 1", "warta"),
        ("Berita 2", "warta"),
        ("Berita 4", "kabar"),
        ("Berita 5", "kabar"),
    ]

    # A new secret replaces the old one; removing it gives warta back to the deployment's secret.
    renewed = runner.invoke(cli, ["sites", "webhook-secret", "warta", "--new"])
    assert renewed.exit_code == 0 and renewed.output.splitlines()[1] != warta_secret
    client, context = app_client(sites_env, r)
    assert signed(client, warta_secret, article(8)).status_code == 401
    assert signed(client, renewed.output.splitlines()[1], article(8)).get_json()["site"] == "warta"
    assert runner.invoke(cli, ["sites", "webhook-secret", "warta", "--remove"]).exit_code == 0
    assert not path.exists()
    client, context = app_client(sites_env, r)
    assert signed(client, deployment, article(9, site="warta")).status_code == 201


def test_only_site_secrets_and_no_deployment_secret(sites_env: dict[str, str], r: Any) -> None:
    env = {**sites_env, "NOTIFIER_WEBHOOK_SECRET": ""}
    client, _ = app_client(env, r)
    assert signed(client, "whatever-secret-000000", article(1)).status_code == 503
    made = CliRunner(env=env).invoke(cli, ["sites", "webhook-secret", "warta"])
    client, _ = app_client(env, r)
    # The default site has no secret at all: only warta can be pushed to, by warta's CMS.
    assert signed(client, made.output.splitlines()[1], article(2)).get_json()["site"] == "warta"
    assert signed(client, "whatever-secret-000000", article(3)).status_code == 401


def test_a_short_or_missing_secret_file_is_a_start_up_error(sites_env: dict[str, str]) -> None:
    path = Path(sites_env["NOTIFIER_SITES_FILE"])
    document = json.loads(path.read_text())
    document["sites"][1]["webhook_secret_file"] = "warta.secret"
    path.write_text(json.dumps(document))
    settings = Settings.from_env(sites_env)
    with pytest.raises(ConfigError, match=r"webhook secret file .*warta\.secret cannot be read"):
        load_sites(settings)
    (path.parent / "warta.secret").write_text("short\n")
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        load_sites(settings)
    result = CliRunner(env=sites_env).invoke(cli, ["sites", "check"])
    assert result.exit_code == 1 and "shorter than 16" in result.output


def test_an_article_without_topics_gets_its_own_sites_webhook_topics(
    settings_env: dict[str, str], r: Any, tmp_path: Path
) -> None:
    """``webhook_topics`` in a site entry: a signed article of site A that maps to none of A's topics goes to
    A's default topics, one of B to B's own; neither takes the deployment's NOTIFIER_WEBHOOK_TOPICS."""
    from tests.factories import TWO_SITES, write_sites

    document = json.loads(json.dumps(TWO_SITES))
    document["sites"][0]["webhook_topics"] = ["nasional", "teknologi"]
    document["sites"][1]["webhook_topics"] = ["sepakbola"]
    path = write_sites(tmp_path / "sites-topics", document)
    env = {**settings_env, "NOTIFIER_SITES_FILE": str(path), "NOTIFIER_WEBHOOK_TOPICS": "olahraga"}
    client, context = app_client(env, r)
    secret = context.settings.webhook_secret
    store = CampaignStore(context.redis, context.keys)

    def topics_of(response: Any, site: str) -> list[str]:
        assert response.status_code == 201, response.get_data(as_text=True)
        campaign = store.get(response.get_json()["campaign"])
        assert campaign.site == site
        return sorted(campaign.topics)

    kabar = {"guid": "kk-a", "title": "Sidang kabinet", "url": "https://www.kabarkini.example/a"}
    assert topics_of(signed(client, secret, kabar), "kabar") == ["nasional", "teknologi"]
    unmapped = {**kabar, "guid": "kk-b", "url": "https://www.kabarkini.example/b", "categories": ["Gaya"]}
    assert topics_of(signed(client, secret, unmapped), "kabar") == ["nasional", "teknologi"]
    warta = article(20, site="warta")
    assert topics_of(signed(client, secret, warta), "warta") == ["sepakbola"]
    # An article whose category is one of the site's topics goes there, not to the defaults.
    mapped = article(21, site="warta", categories=["Ekonomi"])
    assert topics_of(signed(client, secret, mapped), "warta") == ["ekonomi"]
