"""The ``notifier`` command: the composition root. Every subcommand reads the same environment.

It stands above every other package (the domain ``notifier``, ``web``, ``workers``,
``notifier_simulator``, ``bench``) and is imported by none of them. Each area's
commands live in their own module; this one only assembles the group. Heavy
imports (Flask, RQ's worker, the simulator, the benchmark) stay inside the
commands that run them, so ``notifier send`` does not load a web framework.
"""

from __future__ import annotations

import click

from notifier_cli import (
    bench,
    campaigns,
    credentials,
    data,
    doctor,
    feeds,
    processes,
    services,
    sites,
    status,
    users,
)


@click.group()
@click.version_option(package_name="notifier")
def main() -> None:
    """notifier: self-hosted web push for news publishers."""


for command in (
    credentials.vapid,  # vapid generate|list|rotate|retire
    credentials.token,  # token create|revoke|list
    campaigns.send,  # send (create a campaign and follow it)
    campaigns.campaigns,  # campaigns list|show|cancel|resume
    processes.worker,
    processes.serve,
    processes.simulator,
    processes.up,  # the whole stack for a newcomer
    status.status,  # status [--watch] (queues, workers, campaigns, subscribers)
    services.services,  # services list|resume|held|restore|release (breakers, held deletions)
    doctor.doctor,  # doctor SUBSCRIPTION (our sender and pywebpush, one message each, compared)
    feeds.feeds,  # feeds add|list|remove|poll
    sites.sites,  # sites list|show|add|remove|check
    bench.bench,  # the end-to-end fan-out benchmark (from a checkout)
    users.users,  # users create|list|disable|enable|password
    data.export_command,  # export [--out FILE] (JSON lines)
    data.import_command,  # import FILE
):
    main.add_command(command)
