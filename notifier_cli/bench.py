"""``notifier bench``: the end-to-end fan-out benchmark (code in ``bench/`` of the source tree).

The benchmark ships with the source tree, not with the installed package (it
drives the checkout's own processes and writes ``bench/README.md``), so the
command puts the project root on ``sys.path`` before importing it, and says
so plainly when it runs from an installed wheel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


def _sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter("sizes must be positive")
    return sizes


def _latencies(value: str) -> tuple[int, ...]:
    try:
        found = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated milliseconds, got {value!r}") from None
    if not found or min(found) < 0 or max(found) > 7500:
        raise click.BadParameter("latencies must be between 0 and 7500 ms (the tail at 8x stays under 60 s)")
    return found


def _schemes(value: str, *, https: bool) -> tuple[str, ...]:
    found = tuple(part.strip() for part in value.split(",") if part.strip())
    if not found or set(found) - {"http", "https"} or len(set(found)) != len(found):
        raise click.BadParameter(f"expected http and/or https, got {value!r}", param_hint="--latency-schemes")
    return tuple(scheme for scheme in found if https or scheme == "http")


@click.command("bench")
@click.option("--sizes", default="10000,100000", show_default=True, help="Audience sizes, comma separated.")
@click.option("--workers", "worker_counts", default="1,2", show_default=True, help="Worker process counts.")
@click.option(
    "--https/--no-https",
    default=True,
    show_default=True,
    help="Also run over HTTPS (trusted self-signed CA).",
)
@click.option(
    "--https-size", type=int, default=0, help="Audience of the HTTPS campaign (default: the largest size)."
)
@click.option(
    "--planning-size", type=int, default=1_000_000, show_default=True, help="Planning-only run (0 skips)."
)
@click.option(
    "--wrk-seconds", type=int, default=20, show_default=True, help="wrk duration per endpoint (0 skips)."
)
@click.option("--naive-seconds", type=float, default=10.0, show_default=True, help="Bound of the naive loop.")
@click.option(
    "--naive-https-limit", type=int, default=400, show_default=True, help="Messages of the naive HTTPS loop."
)
@click.option(
    "--async-seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="Bound of the webpush_async baseline.",
)
@click.option(
    "--encrypt-seconds", type=float, default=5.0, show_default=True, help="Bound of the encryption-only run."
)
@click.option(
    "--latency/--no-latency",
    "latency_section",
    default=True,
    show_default=True,
    help="Run the latency section (the campaign at each of --latency-ms, HTTP and HTTPS/HTTP2).",
)
@click.option(
    "--latency-size",
    type=click.IntRange(min=1),
    default=None,
    help="Audience of the latency section (default: the largest size).",
)
@click.option(
    "--latency-ms",
    default="0,20,60,150",
    show_default=True,
    help="Push-service latencies (ms); 0 is always run.",
)
@click.option(
    "--latency-schemes",
    default="http,https",
    show_default=True,
    help="Schemes of the latency section (https: TLS with HTTP/2 by ALPN); --no-https drops https.",
)
@click.option(
    "--latency-tail",
    type=click.FloatRange(0.0, 1.0),
    default=0.05,
    show_default=True,
    help="Share of answers in the latency tail.",
)
@click.option(
    "--latency-tail-factor",
    type=click.FloatRange(min=1.0),
    default=8.0,
    show_default=True,
    help="The tail's answers take this many times the latency.",
)
@click.option(
    "--million",
    "million_section",
    is_flag=True,
    help="Also send one whole campaign to a million subscribers, create to done (minutes; ~0.5 GB of Redis).",
)
@click.option(
    "--million-size",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Audience of the --million campaign.",
)
@click.option(
    "--million-reference",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="The smaller campaign whose worker RSS the --million one is compared with.",
)
@click.option(
    "--node/--no-node",
    default=True,
    show_default=True,
    help="Run the npm web-push peer over HTTPS (needs Node.js and npm; npm ci into bench/node once).",
)
@click.option("--node-seconds", type=float, default=10.0, show_default=True, help="Bound of the npm peer.")
@click.option("--node-limit", type=int, default=60_000, show_default=True, help="Messages of the npm peer.")
@click.option(
    "--verify-fraction", type=float, default=0.02, show_default=True, help="Share the simulator decrypts."
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON result (default bench/results/latest.json).",
)
@click.option(
    "--readme/--no-readme", default=True, show_default=True, help="Write the table into bench/README.md."
)
@click.option("--quiet", is_flag=True, help="No progress bars; print only the JSON result path.")
def bench(
    sizes: str,
    worker_counts: str,
    https: bool,
    https_size: int,
    planning_size: int,
    wrk_seconds: int,
    naive_seconds: float,
    naive_https_limit: int,
    async_seconds: float,
    encrypt_seconds: float,
    latency_section: bool,
    latency_size: int | None,
    latency_ms: str,
    latency_schemes: str,
    latency_tail: float,
    latency_tail_factor: float,
    million_section: bool,
    million_size: int,
    million_reference: int,
    node: bool,
    node_seconds: float,
    node_limit: int,
    verify_fraction: float,
    output: Path | None,
    readme: bool,
    quiet: bool,
) -> None:
    """Fan a real campaign out through Redis, RQ workers and the push simulator; compare with baselines."""
    if not (ROOT / "bench" / "runner.py").exists():
        raise click.ClickException(
            "notifier bench runs from a source checkout: it needs bench/ beside the installed packages, "
            f"and {ROOT / 'bench'} does not exist. Clone the repository and run `notifier bench` there."
        )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from rich.console import Console

    from bench.baselines import node_available
    from bench.latency import LatencyOptions
    from bench.million import MillionOptions
    from bench.runner import README, RESULTS, Options, markdown, run

    audience = _sizes(sizes)
    latencies = _latencies(latency_ms)
    if latency_tail_factor * max(latencies) > 60_000:
        raise click.BadParameter("the tail must stay under 60 s", param_hint="--latency-tail-factor")

    if https and node and not node_available():
        raise click.ClickException(
            "the npm web-push peer needs Node.js and npm on the PATH: install them (apt-get install nodejs "
            "npm), or leave the peer out with --no-node"
        )
    schemes = _schemes(latency_schemes, https=https)
    options = Options(
        sizes=audience,
        worker_counts=_sizes(worker_counts),
        latency=LatencyOptions(
            size=(latency_size or max(audience)) if latency_section and schemes else 0,
            latencies_ms=latencies,
            tail_fraction=latency_tail,
            tail_factor=latency_tail_factor,
            schemes=schemes,
        ),
        million=MillionOptions(
            size=million_size if million_section else 0, reference=min(million_reference, million_size)
        ),
        https=https,
        https_size=https_size,
        planning_size=planning_size,
        wrk_seconds=wrk_seconds,
        naive_seconds=naive_seconds,
        naive_https_limit=naive_https_limit,
        async_seconds=async_seconds,
        encrypt_seconds=encrypt_seconds,
        node=node,
        node_seconds=node_seconds,
        node_limit=node_limit,
        verify_fraction=verify_fraction,
        output=output or RESULTS / "latest.json",
        readme=README if readme else None,
    )
    console = None if quiet else Console()
    result = run(options, console)
    if quiet:
        click.echo(str(options.output))
        return
    console = Console()
    console.print(markdown(result))
    console.print(f"ratios: {json.dumps(result['ratios'])}")
    console.print(f"result: {options.output}")
