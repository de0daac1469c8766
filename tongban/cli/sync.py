"""``tongban node sync``, ``tongban serve-sync`` and the ``run`` commands: the sync link and
the services from the command line.

Directories are opened by :func:`tongban.homes.open_home`; everything else is
:mod:`sync.link.transport` and :mod:`sync.link.agent`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from core.errors import ErrorCode, TongbanError, error_text
from sync.link.agent import Agent
from sync.link.endpoint import ParentServer
from sync.link.session import Summary
from sync.link.transport import LinkSettings, SyncResult, sync_once
from tongban.cli.refusals import refuse
from tongban.homes import OpenedHome, open_home, upstreams


def summary_line(result: SyncResult) -> str:
    summary = result.summary
    rejected = ", ".join(f"{code}×{n}" for code, n in sorted(summary.rejected.items())) or "none"
    return (
        f"synced with {result.parent} at {result.endpoint} in {result.seconds:.1f} s:"
        f" {summary.up} records up, {summary.down} down; rejected: {rejected};"
        f" files {summary.files_up} up, {summary.files_down} down ({summary.file_bytes_sent} bytes sent)"
    )


@click.command("sync")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--once", is_flag=True, help="Run one session and exit (non-zero on failure).")
@click.option("--endpoint", help="Sync with this parent endpoint instead of [sync] parent.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for any message.")
def sync_command(directory: Path, once: bool, endpoint: str | None, timeout: float) -> None:
    """Sync a node with its parent: one session, or sessions every [sync] interval."""
    try:
        if once:
            _once(directory, endpoint, timeout)
        else:
            _forever(directory, endpoint, timeout)
    except TongbanError as exc:
        refuse(exc)


def _once(directory: Path, endpoint: str | None, timeout: float) -> None:
    with open_home(directory) as opened:
        if endpoint:
            opened.settings = LinkSettings(
                parent=endpoint,
                files_up_kbit=opened.settings.files_up_kbit,
                files_budget=opened.settings.files_budget,
            )
        bar = _ProgressBar()
        result = sync_once(opened, upstreams(opened), timeout=timeout, progress=bar.update)
        bar.close()
    for where, outcome in result.attempts:
        if outcome != "ok":
            click.echo(f"  {where}: {outcome}: {error_text(ErrorCode(outcome), 'en')}", err=True)
    if not result.ok:
        assert result.error is not None
        raise result.error
    click.echo(summary_line(result))
    for fork in result.summary.forks:
        click.echo(f"  warning: {ErrorCode.CHAIN_FORK.value} at {fork}")


class _ProgressBar:
    """A progress bar on a terminal once a catch-up is long enough to be worth one."""

    THRESHOLD = 2_000

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def update(self, summary: Summary, estimate: int) -> None:
        moved = summary.up + summary.down
        if self.bar is None:
            if estimate < self.THRESHOLD or not sys.stderr.isatty():
                return
            self.bar = click.progressbar(length=estimate, label="syncing", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(max(0, moved - self.done))
        self.done = moved

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _forever(directory: Path, endpoint: str | None, timeout: float) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def opener() -> OpenedHome:
        opened = open_home(directory)
        if endpoint:
            opened.settings = LinkSettings(
                parent=endpoint,
                interval=opened.settings.interval,
                files_up_kbit=opened.settings.files_up_kbit,
                files_budget=opened.settings.files_budget,
            )
        return opened

    agent = Agent(opener, lambda o: upstreams(o), timeout=timeout)
    try:
        while not stop.is_set():
            result = agent.tick()
            if result is not None:
                click.echo(
                    summary_line(result) if result.ok else f"sync failed: {result.error}", err=not result.ok
                )
            stop.wait(1.0)
    finally:
        agent.close()


@click.command("serve-sync")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--listen", help="Endpoint to bind, tcp://host:port (default: [sync] listen).")
def serve_command(directory: Path, listen: str | None) -> None:
    """Serve the sync endpoint of a town or of central for its children, until stopped."""
    try:
        with open_home(directory) as probe:
            bind = listen or probe.settings.listen
    except TongbanError as exc:
        refuse(exc)
    if not bind:
        raise click.UsageError("no endpoint: pass --listen or set [sync] listen")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with ParentServer(lambda: open_home(directory), bind) as server:
        click.echo(f"serving sync for {directory} at {server.endpoint}", err=True)
        while not stop.is_set() and server.alive:
            stop.wait(0.5)
    if not server.alive and not stop.is_set():
        sys.exit(3)


def _run(directory: Path, listen: str | None, only: str | None) -> None:
    from tongban.processes import plan_for

    try:
        plan_for(directory, listen, only)  # refuse here, before the process is replaced
    except TongbanError as exc:
        refuse(exc)
    args = [sys.executable, "-m", "tongban.run", str(directory)]
    if listen:
        args += ["--listen", listen]
    if only:
        args += ["--only", only]
    os.execv(sys.executable, args)


@click.command("run")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--listen", help="HOST:PORT of the clerk web service (default: [web] listen).")
@click.option("--only", type=click.Choice(["web", "sync"]), help="Only the web or only the sync services.")
def node_run(directory: Path, listen: str | None, only: str | None) -> None:
    """Run the node's services in the foreground: web, sync agent, and a town's sync endpoint."""
    _run(directory, listen, only)


@click.command("run")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--listen", help="HOST:PORT of the operator web service (default: [web] listen).")
@click.option(
    "--only",
    type=click.Choice(["web", "sync", "broker"]),
    help="Only the web, only the sync services, or only the department link ([amqp] uri).",
)
def central_run(directory: Path, listen: str | None, only: str | None) -> None:
    """Run central's services in the foreground: operator web, sync endpoint, heartbeat, department link."""
    _run(directory, listen, only)


@click.command("run")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--listen", help="HOST:PORT of the department desk (default: [web] listen).")
@click.option(
    "--only", type=click.Choice(["web", "broker"]), help="Only the desk, or only the link to central."
)
def department_run(directory: Path, listen: str | None, only: str | None) -> None:
    """Run a department's services in the foreground: its desk and its link to central."""
    _run(directory, listen, only)
