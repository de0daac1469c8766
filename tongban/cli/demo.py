"""``tongban demo init|start|stop``: a small demo network on this machine.

The network is :func:`tongban.demo.build_demo`'s; running it under supervisord is
:mod:`tongban.demo_run`'s.
"""

from __future__ import annotations

from pathlib import Path

import click

from core.clock import SystemClock
from node import config as node_config
from tongban import demo_run
from tongban.cli.refusals import refusals
from tongban.demo import build_demo

CLOCK = SystemClock()


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@refusals
def demo_init(directory: Path) -> None:
    """Create central, one town and two villages, enrolled, with the demo catalog."""
    build_demo(directory, CLOCK, echo=click.echo)


@click.command("start")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", default=8401, show_default=True, help="Port of the first node; the others follow.")
@click.option(
    "--sync-port", type=int, help="Port of central's sync endpoint, the town's next (default PORT+100)."
)
@refusals
def demo_start(directory: Path, port: int, sync_port: int | None) -> None:
    """Run every demo node (web and sync) and central's sync endpoint under supervisord."""
    nodes = []
    for offset, home in enumerate(sorted(p for p in directory.iterdir() if (p / "node.toml").is_file())):
        config = node_config.load(home)
        nodes.append((config.node.code, config.node.name, port + offset))
    demo_run.start(directory, nodes, sync_port or port + 100, echo=click.echo)


@click.command("stop")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def demo_stop(directory: Path) -> None:
    """Stop the demo's supervisord and every node it runs."""
    if directory.exists() and demo_run.stop(directory):
        click.echo("demo stopped")
    else:
        click.echo("the demo was not running")
