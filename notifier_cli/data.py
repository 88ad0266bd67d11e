"""``notifier export`` and ``notifier import``: subscriptions as JSON lines, with progress bars."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from notifier.errors import NotifierError
from notifier.transfer import export_to, import_lines
from notifier_cli.common import load_context

#: Refused lines printed in full; the rest are counted.
SHOW_REFUSED = 50


def _progress():  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr (stdout may carry the export itself)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=False,
    )  # fmt: skip


@click.command("export")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")  # fmt: skip
@click.option("--site", "site_id", default=None, help="Only this site's subscriptions (default: every site).")
def export_command(out: Path | None, site_id: str | None) -> None:
    """Write every subscription as JSON lines (PushSubscription.toJSON() + topics, lang, browser, site)."""

    c = load_context()
    try:
        site = c.site(site_id).id if site_id else None
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    total = c.subscriptions.count(site=site)
    with _progress() as progress:
        task = progress.add_task("export", total=total)
        if out is None:
            n = export_to(c, sys.stdout, progress=lambda k: progress.advance(task, k), site=site)
        else:
            tmp = out.with_name(out.name + ".part")
            with tmp.open("w", encoding="utf-8") as handle:
                n = export_to(c, handle, progress=lambda k: progress.advance(task, k), site=site)
            tmp.replace(out)  # a half-written export never takes the real name
    click.echo(f"exported {n} subscriptions" + (f" to {out}" if out else ""), err=True)


@click.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--site", "site_id", default=None, help="The site of lines that name none (default: the default)."
)
def import_command(source: Path, site_id: str | None) -> None:
    """Store subscriptions from a JSON lines file; refused lines are listed with their numbers."""

    c = load_context()
    try:
        site = c.site(site_id).id if site_id else None
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    # Bytes, not text: one line that is not UTF-8 is refused by number; it must not end the import.
    with source.open("rb") as handle:
        total = sum(1 for _ in handle)
    with source.open("rb") as handle, _progress() as progress:
        task = progress.add_task("import", total=total)
        report = import_lines(c, handle, progress=lambda k: progress.advance(task, k), site=site)
    for number, reason in report.refused[:SHOW_REFUSED]:
        click.echo(f"line {number}: refused: {reason}", err=True)
    if len(report.refused) > SHOW_REFUSED:
        click.echo(f"... and {len(report.refused) - SHOW_REFUSED} more refused lines", err=True)
    click.echo(
        f"imported {report.stored} subscriptions ({report.created} new, {report.updated} updated), "
        f"refused {len(report.refused)} lines"
    )
    if report.refused:
        sys.exit(1)
