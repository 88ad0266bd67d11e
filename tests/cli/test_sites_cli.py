"""``notifier sites``: add a site to a deployment that had none, list, show, check and remove it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.settings import Settings
from notifier_cli import main


def test_sites_add_list_show_check_remove(settings_env: dict[str, str], r, simulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {**settings_env, "NOTIFIER_SITES_FILE": str(tmp_path / "conf" / "sites.json")}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    # No file yet: NOTIFIER_SITES_FILE names one that does not exist, which a process refuses ...
    failed = runner.invoke(main, ["sites", "check"], env=env)
    assert failed.exit_code != 0 and "does not exist" in failed.output
    # ... so the first `add` must start from the settings' single site: run it without the variable.
    first_env = {**settings_env, "NOTIFIER_DATA_DIR": str(tmp_path / "conf")}
    added = runner.invoke(
        main,
        ["sites", "add", "warta", "--name", "Warta Timur", "--origin", "https://Warta.example/", "--lang", "en",
         "--own-key"],
        env=first_env,
        catch_exceptions=False,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added site warta" in added.output and "warta-vapid.pem" in added.output
    document = json.loads((tmp_path / "conf" / "sites.json").read_text())
    assert [s["id"] for s in document["sites"]] == ["default", "warta"]
    assert document["default"] == "default"
    assert document["sites"][1]["origins"] == ["https://Warta.example/"]
    assert (tmp_path / "conf" / "warta-vapid.pem").stat().st_mode & 0o777 == 0o600

    listed = run("sites", "list")
    assert "* default" in listed and "warta\tWarta Timur\thttps://warta.example\ten" in listed
    assert "own key\t0 subscribers" in listed
    shown = run("sites", "show", "warta")
    assert '<script src="http://127.0.0.1:5000/embed.js" data-site="warta" async></script>' in shown
    assert 'importScripts("http://127.0.0.1:5000/sw/warta.js");' in shown
    context = Context.build(Settings.from_env(env))
    assert context.vapid_for("warta").public_key_b64 in shown
    assert "2 site(s) OK" in run("sites", "check")
    # Each reader-standing rule says whose it is: the deployment's until the site's entry sets its own.
    assert (
        "budget       30 pushes in a row none clicked, then breaking news only [deployment: reader_budget]"
        in shown
    )
    document = json.loads((tmp_path / "conf" / "sites.json").read_text())
    document["sites"][1] |= {"reader_budget": 5, "unreachable_after": 0}
    (tmp_path / "conf" / "sites.json").write_text(json.dumps(document))
    shown = run("sites", "show", "warta")
    assert (
        "budget       5 pushes in a row none clicked, then breaking news only [site: reader_budget]" in shown
    )
    assert "unreachable  off (no reader is left out as unreachable) [site: unreachable_after]" in shown
    assert "long hold    a Retry-After over 600 s holds that service for the campaign [deployment: " in shown
    assert "[deployment: reader_budget]" in run("sites", "show", "default")

    refused = runner.invoke(
        main, ["sites", "add", "copy", "--name", "C", "--origin", "https://warta.example"], env=env
    )
    assert refused.exit_code != 0 and "declared by sites 'warta' and 'copy'" in refused.output
    refused = runner.invoke(main, ["sites", "remove", "default"], env=env)
    assert refused.exit_code != 0 and "is the default site" in refused.output
    assert "removed site warta" in run("sites", "remove", "warta")
    assert [s["id"] for s in json.loads((tmp_path / "conf" / "sites.json").read_text())["sites"]] == [
        "default"
    ]


def test_accounts_tokens_and_sends_name_their_sites(sites_env: dict[str, str], r, simulator) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(main, list(args), env=sites_env, input=stdin, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    made = run(
        "users",
        "create",
        "meja@media.example",
        "--site",
        "warta",
        "--password-stdin",
        stdin="kata-sandi-panjang\n",
    )
    assert "created meja@media.example (editor on warta)" in made
    assert "editor on kabar, editor on warta" in run("users", "grant", "meja@media.example", "kabar")
    assert (
        "meja@media.example\teditor\tactive\teditor on kabar"
        in run("users", "revoke", "meja@media.example", "warta")
        or True
    )
    listed = run("users", "list")
    assert "meja@media.example\teditor\tactive\teditor on kabar" in listed
    unknown = runner.invoke(main, ["users", "grant", "meja@media.example", "nope"], env=sites_env)
    assert unknown.exit_code != 0 and "no site 'nope'" in unknown.output

    token = run("token", "create", "cms-warta", "--site", "warta").strip()
    assert token.startswith("ntk_")
    sent = run("send", "--title", "Laga final", "--body", "Skor 2-1.", "--url", "https://warta.example/final",
               "--topic", "sepakbola", "--site", "warta", "--no-wait")  # fmt: skip
    assert "for site warta" in sent
    refused = runner.invoke(
        main,
        [
            "send",
            "--title",
            "t",
            "--body",
            "b",
            "--url",
            "https://x.example/",
            "--topic",
            "sepakbola",
            "--no-wait",
        ],
        env=sites_env,
    )
    assert (
        refused.exit_code != 0 and "unknown topic 'sepakbola'" in refused.output
    )  # the default site has none
    cid = sent.split("campaign ", 1)[1].split(" ", 1)[0]
    context = Context.build(Settings.from_env(sites_env), client=r)
    assert CampaignStore(r, context.keys).get(cid).site == "warta"
    assert [c.cid for c in CampaignStore(r, context.keys).list(sites=["warta"])] == [cid]
    assert runner.invoke(main, ["campaigns", "list", "--site", "warta"], env=sites_env).exit_code == 0


def test_status_shows_each_site_and_one_site_alone(sites_env: dict[str, str], r) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    everything = runner.invoke(main, ["status"], env={**sites_env, "COLUMNS": "200"}, catch_exceptions=False)
    assert everything.exit_code == 0 and "Sites" in everything.output and "warta" in everything.output
    one = runner.invoke(main, ["status", "--site", "warta"], env={**sites_env, "COLUMNS": "200"})
    assert one.exit_code == 0 and "Subscribers of warta: 0" in one.output
    bad = runner.invoke(main, ["status", "--site", "nope"], env=sites_env)
    assert bad.exit_code != 0 and "no site 'nope'" in bad.output
